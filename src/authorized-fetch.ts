import { OAuthRefreshError } from './errors.js'
import type { ClientConfig } from './options.js'

/** Resolves a usable access token; `stale` names one the API just refused. */
export type TokenSource = (stale: string | undefined, signal: AbortSignal | undefined) => Promise<string>

const REDIRECT_STATUSES = [301, 302, 303, 307, 308]
const MAX_REDIRECTS = 20

const isStream = (body: BodyInit) => typeof (body as ReadableStream).getReader === 'function'

/** RFC 6750 §3.1: a challenge naming an error other than `invalid_token` is not cured by a new token. */
function wantsNewToken(response: Response): boolean {
  const error = /\berror="?([^",\s]+)/i.exec(response.headers.get('www-authenticate') ?? '')?.[1]
  return !error || error === 'invalid_token'
}

const asRequest = (input: Request | string | URL) => (input instanceof Request ? input : undefined)

function requestUrl(input: Request | string | URL): URL {
  const base = (globalThis as { location?: { href: string } }).location?.href
  try {
    return new URL(asRequest(input)?.url ?? String(input), base)
  } catch {
    throw new OAuthRefreshError('INVALID_URL', 'client.fetch needs an absolute URL here')
  }
}

/**
 * Creates `fetch` with the access token attached: on a 401 it gets a new token (shared with every
 * other caller) and replays the request once, when its body can be sent again.
 */
export function createAuthorizedFetch(config: ClientConfig, token: TokenSource) {
  const { headerName, headerParts, allowedOrigins } = config
  const send = config.endpoint.fetch
  // fetch drops Authorization on a cross-origin redirect, but keeps any other header.
  const customHeader = headerName.toLowerCase() !== 'authorization'

  /** Follows redirects by hand so a custom token header never reaches another origin. */
  async function followSameOrigin(input: Request | string | URL, init: RequestInit & { headers: Headers }, hops = 0): Promise<Response> {
    const response = await send(input, { ...init, redirect: 'manual' })
    if (response.type === 'opaqueredirect') {
      throw new OAuthRefreshError('REDIRECT_BLOCKED', `Cannot follow a redirect safely with "${headerName}" here`)
    }
    const location = response.headers.get('location')
    if (!REDIRECT_STATUSES.includes(response.status) || !location || hops >= MAX_REDIRECTS) return response
    const request = asRequest(input)
    const method = (init.method ?? request?.method ?? 'GET').toUpperCase()
    // As fetch does (Fetch standard, HTTP-redirect fetch): 303, and 301/302 after POST, become GET.
    const toGet = (response.status === 303 && method !== 'GET' && method !== 'HEAD') || (response.status < 303 && method === 'POST')
    const body = toGet ? null : init.body ?? request?.body ?? null
    // A stream (a Request's body is one) cannot be sent again: the caller gets the redirect.
    if (body !== null && isStream(body)) return response
    await response.body?.cancel()
    const from = requestUrl(input)
    const next = new URL(location, from)
    const nextInit = { ...init, method: toGet ? 'GET' : method, body, signal: init.signal ?? request?.signal ?? null }
    if (next.origin === from.origin) return followSameOrigin(next, nextInit, hops + 1)
    const headers = new Headers(init.headers)
    headers.delete(headerName)
    return send(next, { ...nextInit, headers })
  }

  function call(input: Request | string | URL, init: RequestInit | undefined, accessToken: string): Promise<Response> {
    const request = asRequest(input)
    const headers = new Headers(init?.headers ?? request?.headers)
    headers.set(headerName, headerParts.join(accessToken))
    const redirect = init?.redirect ?? request?.redirect ?? 'follow'
    if (!customHeader || redirect !== 'follow') return send(input, { ...init, headers })
    return followSameOrigin(input, { ...init, headers })
  }

  return async function authorizedFetch(input: Request | string | URL, init?: RequestInit): Promise<Response> {
    // Parsed only where needed: for allowedOrigins, and before a refresh is spent on a URL fetch
    // would refuse: a relative one with nothing to resolve it against (every absolute URL has a
    // colon), or one with credentials, which fetch's error would repeat.
    const url = allowedOrigins || (typeof input === 'string' ? !input.includes(':') || input.includes('@') : input instanceof URL) ? requestUrl(input) : undefined
    if (allowedOrigins && !allowedOrigins.has(url!.origin)) {
      throw new OAuthRefreshError('ORIGIN_NOT_ALLOWED', `${url!.origin} is not in "allowedOrigins"`)
    }
    if (url?.username || url?.password) throw new OAuthRefreshError('INVALID_URL', 'client.fetch got a URL with credentials')
    const request = asRequest(input)
    const signal = init?.signal ?? request?.signal
    // A stream can be sent once, and a Request's own body is a stream: its 401 is returned.
    const body = init?.body ?? request?.body
    const replayable = body == null || !isStream(body)
    const accessToken = await token(undefined, signal)
    const response = await call(input, init, accessToken)
    if (response.status !== 401 || !replayable || !wantsNewToken(response)) return response
    await response.body?.cancel()
    return call(input, init, await token(accessToken, signal))
  }
}
