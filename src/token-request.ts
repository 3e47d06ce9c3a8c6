import { basicCredentials } from './base64.js'
import { OAuthError, OAuthRefreshError, TokenRequestError } from './errors.js'
import { parseErrorResponse, parseTokenResponse, readLimitedText, type TokenAnswer, type TokenResponse } from './token-response.js'

/** How the client authenticates to the token endpoint (RFC 6749 §2.3.1). */
export type ClientAuthentication = 'auto' | 'basic' | 'body'

/** Bounded retries of transient token endpoint failures. */
export interface RetryOptions {
  /** Token requests at most, the first included. */
  attempts: number
  /** The backoff before the second attempt; it doubles after each, with full jitter. */
  baseDelayMs: number
  /** The longest wait between attempts; a longer `Retry-After` ends the retries. */
  maxDelayMs: number
}

/** Everything needed to send refresh requests to one token endpoint. */
export interface TokenEndpointConfig {
  tokenUrl: string
  /** The token URL's host, named by error messages. */
  host: string
  clientId: string
  clientSecret: string | undefined
  clientAuthentication: ClientAuthentication
  grantType: string
  scope: string | undefined
  headers: Record<string, string>
  body: Record<string, string>
  fetch: typeof fetch
  timeoutMs: number
  retry: RetryOptions
}

/** Sends refresh requests; remembers which client authentication method the server accepted. */
export interface TokenEndpoint {
  refresh(refreshToken: string, secrets: readonly (string | undefined)[]): Promise<TokenResponse>
  /**
   * Revokes `refreshToken` at `url` (RFC 7009) with the client authentication the token endpoint
   * accepted; resolves when the server confirmed it, throws its error otherwise.
   */
  revoke(url: string, refreshToken: string): Promise<void>
}

type Method = 'basic' | 'body' | 'none'

interface Failure {
  error: OAuthRefreshError
  /** The server may have processed the request (and rotated the refresh token). */
  inDoubt: boolean
  retryAfterMs?: number | undefined
}

// The server says it did not act on these, so repeating the request is safe.
const NOT_PROCESSED = [408, 429, 503]
// Failures before a byte was sent: undici's `cause.code`, or its `cause.message` for a port
// fetch blocks (Fetch standard, "bad port").
const NOT_SENT = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'bad port']

/** Whether `error` is the token endpoint's OAuth error `code`, e.g. `invalid_grant`. */
export const isOAuthError = (error: unknown, code: string): error is OAuthError => error instanceof OAuthError && error.error === code

/** Milliseconds from a `Retry-After` header, in seconds or as an HTTP date. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined
  const ms = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now
  return Number.isNaN(ms) ? undefined : Math.max(0, ms)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Calls `expire` after `ms` milliseconds unless the returned function is called first. A
 * process that was paused (a closed lid, a debugger, a frozen tab) resumes with its due timers
 * run before the I/O that arrived meanwhile is read, so the deadline waits one more turn: an
 * answer already received wins over it.
 */
export function deadline(ms: number, expire: () => void): () => void {
  let timer = setTimeout(() => (timer = setTimeout(expire)), ms)
  return () => clearTimeout(timer)
}

/** What became of one request: the status the endpoint answered, or how its answer was lost. */
const outcome = (error: OAuthRefreshError) =>
  error.status ? `answered ${error.status}${error instanceof OAuthError ? ` ${error.error}` : ''}` : `answer lost (${error.code === 'TIMEOUT' ? 'timeout' : 'connection closed'})`

function networkFailure(error: unknown, host: string): Failure {
  if (error instanceof TokenRequestError && error.code === 'TIMEOUT') return { error, inDoubt: true }
  if (error instanceof OAuthRefreshError) throw error
  const { code, message } = Object(Object(error).cause)
  const reason = typeof code === 'string' ? code : message === 'bad port' ? message : undefined
  return {
    error: new TokenRequestError('NETWORK_ERROR', `Token request to ${host} failed${reason ? `: ${reason}` : ''}`, { cause: error }),
    inDoubt: !NOT_SENT.includes(reason),
  }
}

/**
 * Creates the sender of refresh requests (RFC 6749 §6) for one token endpoint: client
 * authentication with exactly one method per request, a timeout per request, and bounded
 * retries of transient faults that never repeat a possibly processed request more than once.
 */
export function createTokenEndpoint(config: TokenEndpointConfig): TokenEndpoint {
  let remembered: Method = config.clientSecret === undefined ? 'none' : config.clientAuthentication === 'body' ? 'body' : 'basic'

  /** A refresh whose `first` request may have rotated the token, and whose retry ended in `last`. */
  const inDoubt = (first: OAuthRefreshError, last: OAuthRefreshError) =>
    new TokenRequestError(
      'REFRESH_IN_DOUBT',
      `Token endpoint ${config.host}: ${outcome(first)}${first === last ? '' : `, then ${outcome(last)}`}; the refresh token is kept, since the server may or may not have rotated it`,
      { cause: last, status: last.status },
    )

  function send(refreshToken: string, method: Method): Promise<TokenAnswer> {
    const body = new URLSearchParams(config.body)
    body.set('grant_type', config.grantType)
    body.set('refresh_token', refreshToken)
    if (config.scope) body.set('scope', config.scope)
    return post(config.tokenUrl, body, method)
  }

  /** POSTs `body` to `url` with the client's authentication, within the timeout. */
  async function post(url: string, body: URLSearchParams, method: Method): Promise<TokenAnswer> {
    const headers = new Headers(config.headers)
    headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8')
    headers.set('accept', 'application/json')
    if (method === 'basic') {
      headers.set('authorization', `Basic ${basicCredentials(config.clientId, config.clientSecret!)}`)
    } else {
      body.set('client_id', config.clientId)
      if (method === 'body') body.set('client_secret', config.clientSecret!)
    }
    const controller = new AbortController()
    // Not a plain timer: after a pause, an abort before the answer in the socket is read would
    // be retried with the same refresh token, which the provider then sees twice.
    const stop = deadline(config.timeoutMs, () => controller.abort(new TokenRequestError('TIMEOUT', `Token request took over ${config.timeoutMs} ms`)))
    try {
      // No cookies or ambient credentials: the client authenticates itself. Caching needs no
      // setting: POST answers are not cached, and servers send no-store (RFC 6749 §5.1).
      const init: RequestInit = { method: 'POST', headers, body, redirect: 'manual', credentials: 'omit', signal: controller.signal }
      const response = await config.fetch(url, init)
      if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
        await response.body?.cancel()
        throw new TokenRequestError('UNEXPECTED_REDIRECT', 'Token endpoint redirected', { status: response.status })
      }
      return { status: response.status, headers: response.headers, text: await readLimitedText(response) }
    } catch (error) {
      throw controller.signal.aborted ? controller.signal.reason : error
    } finally {
      stop()
    }
  }

  async function refresh(refreshToken: string, secrets: readonly (string | undefined)[]): Promise<TokenResponse> {
    let method = remembered
    // The first failure after which the server may have processed the request.
    let doubt: OAuthRefreshError | undefined
    for (let attempt = 1; ; attempt++) {
      let failure: Failure
      try {
        const answer = await send(refreshToken, method)
        if (answer.status >= 200 && answer.status < 300) {
          const tokens = parseTokenResponse(answer)
          remembered = method
          return tokens
        }
        const error = parseErrorResponse(answer, secrets, config.host)
        if (answer.status !== 408 && answer.status !== 429 && answer.status < 500) {
          if (method === 'basic' && config.clientAuthentication === 'auto' && (error.status === 401 || isOAuthError(error, 'invalid_client'))) {
            method = 'body'
            attempt--
            continue
          }
          throw doubt && isOAuthError(error, 'invalid_grant') ? inDoubt(doubt, error) : error
        }
        failure = { error, inDoubt: !NOT_PROCESSED.includes(answer.status), retryAfterMs: retryAfterMs(answer.headers.get('retry-after')) }
      } catch (error) {
        // Rethrows the SDK's own verdicts (an OAuth error, a bad response); keeps network faults.
        failure = networkFailure(error, config.host)
      }
      if (failure.inDoubt && doubt) throw inDoubt(doubt, failure.error)
      if (failure.inDoubt) doubt = failure.error
      const delay = failure.retryAfterMs ?? Math.random() * Math.min(config.retry.maxDelayMs, config.retry.baseDelayMs * 2 ** (attempt - 1))
      if (attempt >= config.retry.attempts || delay > config.retry.maxDelayMs) throw doubt ? inDoubt(doubt, failure.error) : failure.error
      await sleep(delay)
    }
  }

  async function revoke(url: string, refreshToken: string): Promise<void> {
    const { host } = new URL(url)
    const body = new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token' })
    let answer: TokenAnswer
    try {
      answer = await post(url, body, remembered)
      // 'auto' before any refresh: a server that refuses Basic is asked again with the body.
      if (answer.status === 401 && remembered === 'basic' && config.clientAuthentication === 'auto') answer = await post(url, body, 'body')
    } catch (error) {
      throw networkFailure(error, host).error
    }
    // RFC 7009 §2.2: 200 also for a token that was already invalid.
    if (answer.status !== 200) throw parseErrorResponse(answer, [config.clientSecret, refreshToken], host)
  }

  return { refresh, revoke }
}
