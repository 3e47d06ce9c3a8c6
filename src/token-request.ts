import { basicCredentials } from './base64.js'
import type { Lease } from './storage/types.js'
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
  /** Resolves undefined, sending nothing more, when `lease` refuses the claim before a send: another holder refreshed. */
  refresh(refreshToken: string, secrets: readonly (string | undefined)[], lease?: Lease): Promise<TokenResponse | undefined>
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
export const isOAuthError = (error: unknown, code: string) => error instanceof OAuthError && error.error === code

/** Milliseconds from a `Retry-After` header, in seconds or as an HTTP date. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined
  const ms = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now
  return Number.isNaN(ms) ? undefined : Math.max(0, ms)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const inDoubt = (cause: OAuthRefreshError) =>
  new TokenRequestError('REFRESH_IN_DOUBT', 'Refresh answer lost; the grant is kept for the next try', { cause, status: cause.status })

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

  async function send(refreshToken: string, method: Method): Promise<TokenAnswer> {
    const body = new URLSearchParams(config.body)
    body.set('grant_type', config.grantType)
    body.set('refresh_token', refreshToken)
    if (config.scope) body.set('scope', config.scope)
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
    const timer = setTimeout(
      () => controller.abort(new TokenRequestError('TIMEOUT', `Token request took over ${config.timeoutMs} ms`)),
      config.timeoutMs,
    )
    try {
      // No cookies or ambient credentials: the client authenticates itself. Caching needs no
      // setting: POST answers are not cached, and servers send no-store (RFC 6749 §5.1).
      const init: RequestInit = { method: 'POST', headers, body, redirect: 'manual', credentials: 'omit', signal: controller.signal }
      const response = await config.fetch(config.tokenUrl, init)
      if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
        await response.body?.cancel()
        throw new TokenRequestError('UNEXPECTED_REDIRECT', 'Token endpoint redirected', { status: response.status })
      }
      return { status: response.status, headers: response.headers, text: await readLimitedText(response) }
    } catch (error) {
      throw controller.signal.aborted ? controller.signal.reason : error
    } finally {
      clearTimeout(timer)
    }
  }

  async function refresh(refreshToken: string, secrets: readonly (string | undefined)[], lease?: Lease): Promise<TokenResponse | undefined> {
    let method = remembered
    let doubted = false
    for (let attempt = 1; ; attempt++) {
      let failure: Failure
      if (lease && !(await lease.claim(refreshToken, config.timeoutMs))) return undefined
      try {
        const answer = await send(refreshToken, method)
        if (answer.status >= 200 && answer.status < 300) {
          const tokens = parseTokenResponse(answer)
          remembered = method
          return tokens
        }
        const error = parseErrorResponse(answer, secrets)
        if (answer.status !== 408 && answer.status !== 429 && answer.status < 500) {
          if (method === 'basic' && config.clientAuthentication === 'auto' && (error.status === 401 || isOAuthError(error, 'invalid_client'))) {
            method = 'body'
            attempt--
            continue
          }
          throw doubted && isOAuthError(error, 'invalid_grant') ? inDoubt(error) : error
        }
        failure = { error, inDoubt: !NOT_PROCESSED.includes(answer.status), retryAfterMs: retryAfterMs(answer.headers.get('retry-after')) }
      } catch (error) {
        // Rethrows the SDK's own verdicts (an OAuth error, a bad response); keeps network faults.
        // The host is only named on failure: no second URL parse on the way to a token.
        failure = networkFailure(error, new URL(config.tokenUrl).host)
      }
      if (failure.inDoubt && doubted) throw inDoubt(failure.error)
      doubted ||= failure.inDoubt
      const delay = failure.retryAfterMs ?? Math.random() * Math.min(config.retry.maxDelayMs, config.retry.baseDelayMs * 2 ** (attempt - 1))
      if (attempt >= config.retry.attempts || delay > config.retry.maxDelayMs) throw doubted ? inDoubt(failure.error) : failure.error
      await sleep(delay)
    }
  }

  return { refresh }
}
