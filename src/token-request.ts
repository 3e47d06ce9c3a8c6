import { basicCredentials } from './base64.js'
import { OAuthError, OAuthRefreshError, TokenRequestError } from './errors.js'
import {
  answerError,
  parseTokenResponse,
  readBody,
  readLimitedText,
  type ReadError,
  rotatedRefreshToken,
  type TokenAnswer,
  type TokenResponse,
} from './token-response.js'

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
  /** The scheme the header pattern names (`Bearer`, `DPoP`, …), for the `token_type` check. */
  scheme: string
  /** Error codes that end the grant besides the built-in ones (`DEAD_GRANT_ERRORS`). */
  deadGrantErrors: string[]
  readError: ReadError | undefined
}

/** Sends refresh requests; remembers which client authentication method the server accepted. */
export interface TokenEndpoint {
  /**
   * Refreshes with `refreshToken`. A 2xx answer that carries a new refresh token hands it to
   * `rotated`, and waits for it, before anything else in the answer is judged: the old token is
   * spent, so the new one must be kept even when the rest of the answer is unusable.
   */
  refresh(refreshToken: string, secrets: readonly (string | undefined)[], rotated: (refreshToken: string) => Promise<void>): Promise<TokenResponse>
  /** Whether `error` says the grant is dead (see `DEAD_GRANT_ERRORS`), so it must never be sent again. */
  endsGrant(error: unknown): error is OAuthError
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

/**
 * Error codes, compared in any case, that say the refresh token is dead: RFC 6749 §5.2's
 * `invalid_grant`, GitHub's `bad_refresh_token` (which is also HubSpot's `BAD_REFRESH_TOKEN`),
 * Slack's `invalid_refresh_token`, Strava's `RefreshToken.invalid` (see `answerError`).
 */
export const DEAD_GRANT_ERRORS = ['invalid_grant', 'bad_refresh_token', 'invalid_refresh_token', 'refreshtoken.invalid']

/** Whether `error` is the token endpoint's OAuth error `code`, e.g. `invalid_client`. */
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

  const dead = [...DEAD_GRANT_ERRORS, ...config.deadGrantErrors].map((code) => code.toLowerCase())
  const endsGrant = (error: unknown): error is OAuthError => error instanceof OAuthError && dead.includes(error.error.toLowerCase())

  async function refresh(
    refreshToken: string,
    secrets: readonly (string | undefined)[],
    rotated: (refreshToken: string) => Promise<void>,
  ): Promise<TokenResponse> {
    let method = remembered
    let doubted = false
    // Basic's refusal while the body is tried: the better report if the body is refused too.
    let refusal: OAuthRefreshError | undefined
    for (let attempt = 1; ; attempt++) {
      let failure: Failure
      // Rethrows the SDK's own verdicts (a redirect, a body too large); keeps network faults.
      // The host is only named on failure: no second URL parse on the way to a token.
      const answer = await send(refreshToken, method).catch((error: unknown) => networkFailure(error, new URL(config.tokenUrl).host))
      if ('text' in answer) {
        const { status } = answer
        const body = readBody(answer)
        const next = status < 300 ? rotatedRefreshToken(body) : undefined
        // The old refresh token is spent: the new one is handed over before anything else is
        // judged, and nothing below retries with the old one.
        if (next) await rotated(next)
        let error = answerError(answer, body, secrets, config.readError)
        if (!error) {
          const tokens = parseTokenResponse(answer, body, config.scheme)
          remembered = method
          return tokens
        }
        if (next) throw error
        if (status !== 408 && status !== 429 && status < 500) {
          // 'auto': Basic was refused, so the body is tried once. This spends no refresh token
          // twice, whatever refused Basic (any 4xx but 408 and 429, or an error in a 2xx) unless
          // it says the grant is dead, when retrying is useless:
          // - 401, or invalid_client: a server authenticates the client before it looks at the
          //   grant (RFC 6749 §5.2, §6), so the refresh token was not even read.
          // - any other error answer (400 invalid_request, a provider's own code, a proxy's 403,
          //   GitHub's error with HTTP 200): it issues no token (§5.2), and a server rotates a
          //   refresh token only by issuing its successor (§6), which would be in the answer.
          //   invalid_request in particular names a request the server could not take as it
          //   came (a parameter missing or repeated, credentials where it does not read them):
          //   found while reading the request, before the grant is processed. Where a provider
          //   says invalid_request of a dead token (Zoom, X), the retry meets the same refusal,
          //   having spent nothing: the token was dead already. Had a server spent the token and
          //   answered an error all the same, the grant would be lost already (its successor
          //   never reached us); the retry then presents a dead token, is told so, and costs
          //   nothing more.
          if (method === 'basic' && config.clientAuthentication === 'auto' && !endsGrant(error)) {
            refusal = error
            method = 'body'
            attempt--
            continue
          }
          if (refusal && (status === 401 || isOAuthError(error, 'invalid_client'))) error = refusal
          throw doubted && endsGrant(error) ? inDoubt(error) : error
        }
        failure = { error, inDoubt: !NOT_PROCESSED.includes(status), retryAfterMs: retryAfterMs(answer.headers.get('retry-after')) }
      } else failure = answer
      if (failure.inDoubt && doubted) throw inDoubt(failure.error)
      doubted ||= failure.inDoubt
      const delay = failure.retryAfterMs ?? Math.random() * Math.min(config.retry.maxDelayMs, config.retry.baseDelayMs * 2 ** (attempt - 1))
      if (attempt >= config.retry.attempts || delay > config.retry.maxDelayMs) throw doubted ? inDoubt(failure.error) : failure.error
      await sleep(delay)
    }
  }

  return { refresh, endsGrant }
}
