import { basicCredentials } from './base64.js'
import { OAuthError, OAuthRefreshError, TokenRequestError } from './errors.js'
import type { Lease } from './storage/types.js'
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

/**
 * Client authentication by a JWT assertion (RFC 7523 §2.2), as `privateKeyJwt()` of
 * `oauth-refresh/private-key-jwt` makes it: resolves the form fields (`client_assertion`,
 * `client_assertion_type`) for one request of `clientId` whose token endpoint is `tokenUrl`.
 * It is called for every request and retry, so no assertion is sent twice.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2
 */
export type ClientAssertion = (clientId: string, tokenUrl: string) => Promise<Record<string, string>>

/** How the client authenticates to the token endpoint (RFC 6749 §2.3.1), or a {@link ClientAssertion}. */
export type ClientAuthentication = 'auto' | 'basic' | 'body' | ClientAssertion

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
   * spent, so the new one must be kept even when the rest of the answer is unusable. Resolves
   * undefined, sending nothing more, when `lease` refuses the claim before a send: another holder
   * refreshed.
   */
  refresh(
    refreshToken: string,
    secrets: readonly (string | undefined)[],
    rotated: (refreshToken: string) => Promise<void>,
    lease?: Lease,
  ): Promise<TokenResponse | undefined>
  /** Whether `error` says the grant is dead (see `DEAD_GRANT_ERRORS`), so it must never be sent again. */
  endsGrant(error: unknown): error is OAuthError
  /**
   * Revokes `refreshToken` at `url` (RFC 7009) with the client authentication the token endpoint
   * accepted; resolves when the server confirmed it, throws its error otherwise.
   */
  revoke(url: string, refreshToken: string): Promise<void>
}

type Method = 'basic' | 'body' | 'none' | 'jwt'

interface Failure {
  error: OAuthRefreshError
  /** The server may have processed the request (and rotated the refresh token). */
  inDoubt: boolean
  retryAfterMs?: number | undefined
}

// What a server answers when it refuses how the client authenticated (or anything in the request).
const REFUSALS = [400, 401, 403]
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
  let remembered: Method = typeof config.clientAuthentication === 'function' ? 'jwt' : config.clientSecret === undefined ? 'none' : config.clientAuthentication === 'body' ? 'body' : 'basic'

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
      if (method === 'jwt') for (const [name, value] of Object.entries(await (config.clientAuthentication as ClientAssertion)(config.clientId, config.tokenUrl))) body.set(name, value)
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

  const dead = [...DEAD_GRANT_ERRORS, ...config.deadGrantErrors].map((code) => code.toLowerCase())
  const endsGrant = (error: unknown): error is OAuthError => error instanceof OAuthError && dead.includes(error.error.toLowerCase())

  async function refresh(
    refreshToken: string,
    secrets: readonly (string | undefined)[],
    rotated: (refreshToken: string) => Promise<void>,
    lease?: Lease,
  ): Promise<TokenResponse | undefined> {
    let method = remembered
    // The first failure after which the server may have processed the request.
    let doubt: OAuthRefreshError | undefined
    // Basic's refusal while the body is tried: the better report if the body is refused too.
    let refusal: OAuthRefreshError | undefined
    let nonced = false
    for (let attempt = 1; ; attempt++) {
      let failure: Failure
      if (lease && !(await lease.claim(refreshToken, config.timeoutMs))) return undefined
      // Rethrows the SDK's own verdicts (a redirect, a body too large); keeps network faults.
      const answer = await send(refreshToken, method).catch((error: unknown) => networkFailure(error, config.host))
      if ('text' in answer) {
        const { status } = answer
        const body = readBody(answer)
        const next = status < 300 ? rotatedRefreshToken(body) : undefined
        // The old refresh token is spent: the new one is handed over before anything else is
        // judged, and nothing below retries with the old one.
        if (next) await rotated(next)
        let error = answerError(answer, body, secrets, config.readError, config.host)
        if (!error) {
          const tokens = parseTokenResponse(answer, body, config.scheme)
          remembered = method
          return tokens
        }
        if (next) throw error
        if (status !== 408 && status !== 429 && status < 500) {
          // RFC 9449 §8: the server wants a DPoP nonce (now kept by the `dpop` option); it checks
          // the proof before it reads the refresh token, so the request spent nothing.
          if (!nonced && isOAuthError(error, 'use_dpop_nonce')) {
            nonced = true
            attempt--
            continue
          }
          // 'auto': Basic was refused, so the body is tried once. This spends no refresh token
          // twice, whatever refused Basic (400, 401, 403, or an error in a 2xx) unless
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
          if (method === 'basic' && config.clientAuthentication === 'auto' && (status < 300 || REFUSALS.includes(status)) && !endsGrant(error)) {
            refusal = error
            method = 'body'
            attempt--
            continue
          }
          if (refusal && (status === 401 || isOAuthError(error, 'invalid_client'))) error = refusal
          throw doubt && endsGrant(error) ? inDoubt(doubt, error) : error
        }
        failure = { error, inDoubt: !NOT_PROCESSED.includes(status), retryAfterMs: retryAfterMs(answer.headers.get('retry-after')) }
      } else failure = answer
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
      if (answer.status >= 400 && answer.status < 500 && remembered === 'basic' && config.clientAuthentication === 'auto') answer = await post(url, body, 'body')
    } catch (error) {
      throw networkFailure(error, host).error
    }
    // RFC 7009 §2.2: 200 also for a token that was already invalid; some servers answer 204.
    const error = answerError(answer, readBody(answer), [config.clientSecret, refreshToken], config.readError, host)
    if (error) throw error
  }

  return { refresh, endsGrant, revoke }
}
