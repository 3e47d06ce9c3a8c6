import { base64UrlText } from './base64.js'
import { OAuthError, type OAuthRefreshError, TokenRequestError, TokenResponseError } from './errors.js'

/** The largest token endpoint body the SDK reads; anything larger is refused unread. */
export const MAX_RESPONSE_BYTES = 1 << 20

/** What the SDK keeps from a successful token response (RFC 6749 §5.1). */
export interface TokenResponse {
  accessToken: string
  refreshToken: string | undefined
  /**
   * Lifetime in seconds: from a usable `expires_in`; without one, from the `exp` of an access
   * token that is a JWT (see `jwtLifetime`); else undefined.
   */
  expiresIn: number | undefined
  scope: string | undefined
  /** `token_type` as the server sent it (`Bearer`, `bearer`, Slack's `bot`, …); `'Bearer'` when absent. */
  tokenType: string
  /**
   * Lifetime of the refresh token in seconds, from `refresh_token_expires_in` (GitHub) or
   * `x_refresh_token_expires_in` (Intuit), read as leniently as `expires_in`.
   */
  refreshTokenExpiresIn: number | undefined
  /**
   * Every other member of the answer, as sent (`instance_url`, `id_token`, `api_url`, `team`, …).
   * Never `access_token` or `refresh_token`, nor the members lifted into the fields above.
   */
  fields: Record<string, unknown>
}

/** A token endpoint's error as a program reads it; the fields of an `OAuthError`. */
export interface ProviderError {
  /** The provider's code, e.g. `invalid_grant` or HubSpot's `BAD_REFRESH_TOKEN`. */
  error: string
  errorDescription?: string | undefined
  errorUri?: string | undefined
}

/**
 * Reads the error in a token endpoint's answer, for a provider whose error bodies the built-in
 * rule misreads: `body` is the parsed answer (a JSON value, a form as an object, or the text
 * itself when it is neither) and `status` its HTTP status. It is called with every answer, a
 * success too; returning undefined leaves the answer to the built-in rule.
 */
export type ReadError = (body: unknown, status: number) => ProviderError | undefined

/** The answer of the token endpoint as plain values, so nothing platform-bound outlives the request. */
export interface TokenAnswer {
  status: number
  headers: Headers
  text: string
}

// About 31 years: beyond it a lifetime is nonsense and would overflow dates.
const MAX_LIFETIME_SECONDS = 1e9

/**
 * Reads a body as text, refusing (code `RESPONSE_TOO_LARGE`) one larger than `limit` bytes
 * without reading the rest of it.
 */
export async function readLimitedText(response: Response, limit = MAX_RESPONSE_BYTES): Promise<string> {
  const tooLarge = () => new TokenResponseError('RESPONSE_TOO_LARGE', `Token response is over ${limit} bytes`, { status: response.status })
  if (Number(response.headers.get('content-length')) > limit) {
    await response.body?.cancel()
    throw tooLarge()
  }
  if (!response.body) return ''
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return text + decoder.decode()
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      throw tooLarge()
    }
    text += decoder.decode(value, { stream: true })
  }
}

/**
 * `expires_in` as a lifetime in seconds: a number or a numeric string, as some servers send it.
 * Zero, negative, non-numeric and absurd values are ignored, so the token is used until a 401
 * rather than the whole response (and a rotated refresh token in it) being thrown away.
 */
export function lifetimeSeconds(value: unknown): number | undefined {
  const seconds = typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value
  return typeof seconds === 'number' && seconds > 0 && seconds <= MAX_LIFETIME_SECONDS ? seconds : undefined
}

/** The first of `values` that is a non-empty string. */
const firstText = (...values: unknown[]) => values.find((value): value is string => typeof value === 'string' && value !== '')

/** The refresh token a successful answer's `body` carries, when it is a non-empty string. */
export const rotatedRefreshToken = (body: unknown): string | undefined => firstText(Object(body).refresh_token)

/**
 * The body of an answer: the form of an `application/x-www-form-urlencoded` one (GitHub's unless
 * JSON is asked for), else the JSON value, else the text itself. Never throws.
 */
export function readBody({ headers, text }: TokenAnswer): unknown {
  if (headers.get('content-type')?.includes('x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(text))
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/**
 * Seconds until the `exp` (RFC 7519 §4.1.4) of an access token that is a JWT (three base64url
 * parts), or undefined. Read only to schedule the next refresh when the answer has no usable
 * `expires_in`: no signature is checked and nothing else in the token is read or trusted.
 */
export function jwtLifetime(token: string, now = Date.now()): number | undefined {
  const parts = token.split('.')
  try {
    const { exp } = JSON.parse((parts.length === 3 && base64UrlText(parts[1]!)) || '')
    return typeof exp === 'number' ? lifetimeSeconds(exp - now / 1000) : undefined
  } catch {
    return undefined
  }
}

// Types bound to a key (RFC 9449 DPoP, PoP, MAC): without proofs of that key the token is useless,
// and sending it as a Bearer token would hand it to whoever reads the header.
const SENDER_CONSTRAINED = ['dpop', 'pop', 'mac']

/**
 * Refuses (code `UNSUPPORTED_TOKEN_TYPE`) a sender-constrained `token_type` unless `scheme`, the
 * scheme of the configured header pattern (`DPoP {{access_token}}`), names it: the default with
 * the `dpop` option, or a user who signs the proofs in their own `fetch`. Every other type,
 * `Bearer` in any case and Slack's `bot` and `user` among them, is a token that its holder
 * presents as it is: the header pattern says how.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-5
 */
export function checkTokenType(tokenType: string, scheme: string, status: number): void {
  const type = tokenType.toLowerCase()
  // Named in the message only once it is one of ours: the server's text could be anything.
  if (SENDER_CONSTRAINED.includes(type) && type !== scheme.toLowerCase()) {
    throw new TokenResponseError('UNSUPPORTED_TOKEN_TYPE', `Token type ${tokenType} is sender-constrained (DPoP): it needs the dpop option or authorizationHeader.pattern "${tokenType} {{access_token}}"`, { status })
  }
}

/**
 * Validates a successful token response (RFC 6749 §5.1) whose `body` came from `readBody`: an
 * object with a non-empty `access_token` and a `token_type` that `checkTokenType` accepts. A
 * `null` or mistyped optional field counts as absent: refusing a response for `"scope": null`
 * would throw away a refresh token the server has already rotated.
 */
export function parseTokenResponse(answer: TokenAnswer, body: unknown, scheme = 'Bearer'): TokenResponse {
  const { status, headers, text } = answer
  if (headers.get('content-type')?.includes('html') || text.trimStart()[0] === '<') {
    throw new TokenResponseError('HTML_RESPONSE', `Token endpoint answered ${status} with HTML`, { status })
  }
  if (typeof body === 'string') throw new TokenResponseError('INVALID_RESPONSE', `Token endpoint answered ${status} with neither JSON nor a form`, { status })
  const { access_token, refresh_token, expires_in, scope, token_type, refresh_token_expires_in, x_refresh_token_expires_in, ...fields } = Object(body)
  const accessToken = firstText(access_token)
  if (!accessToken) throw new TokenResponseError('INVALID_RESPONSE', 'Token response has no valid "access_token"', { status })
  const tokenType = firstText(token_type) ?? 'Bearer'
  checkTokenType(tokenType, scheme, status)
  return {
    accessToken,
    refreshToken: firstText(refresh_token),
    expiresIn: lifetimeSeconds(expires_in) ?? jwtLifetime(accessToken),
    scope: firstText(scope),
    tokenType,
    refreshTokenExpiresIn: lifetimeSeconds(refresh_token_expires_in) ?? lifetimeSeconds(x_refresh_token_expires_in),
    fields,
  }
}

/** Replaces every occurrence of a known secret in server-provided text. */
const redact = (text: string | undefined, secrets: readonly (string | undefined)[]) =>
  secrets.reduce((out, secret) => (secret && out ? out.split(secret).join('[redacted]') : out), text)

/** The error a `body` reports by the built-in rule; in a success only an `error` member counts. */
function providerError(body: unknown, success: boolean) {
  const { error, error_description, error_uri, errors, status, code, message, reason } = Object(body)
  const item = Object(Array.isArray(errors) ? errors[0] : undefined)
  // Strava (and GitHub's REST API) name what was refused and how: `RefreshToken.invalid`.
  const itemCode = firstText(item.code) && [item.resource, item.code].filter((part) => firstText(part)).join('.')
  return {
    error: success ? error : firstText(error, item.errorType, itemCode, status, code),
    errorDescription: firstText(error_description, message, reason, item.message),
    errorUri: error_uri,
  }
}

/**
 * The error an answer reports, or undefined for a success that reports none. An `OAuthError`
 * carries the provider's code and message wherever the body puts them:
 * - `error`: RFC 6749 §5.2's `error` member, which a 2xx answer may carry too (GitHub's
 *   `error=bad_refresh_token` with HTTP 200, Slack's `{"ok": false, "error": …}`); in an error
 *   status also `errors[0].errorType` (Fitbit), `errors[0]` as `resource.code` (Strava's
 *   `RefreshToken.invalid`), a string `status` (HubSpot's `BAD_REFRESH_TOKEN`) or `code`;
 * - `errorDescription`: `error_description`, else `message` (HubSpot, Strava), `reason` (Zoom)
 *   or `errors[0].message`; `errorUri`: `error_uri`.
 * `readError`, when given, is asked first. An error status without a readable code is an
 * `HTTP_ERROR`. Server text is scrubbed of `secrets`: a hostile or careless server may echo the
 * refresh token back.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export function answerError(
  { status }: TokenAnswer,
  body: unknown,
  secrets: readonly (string | undefined)[],
  readError: ReadError | undefined,
  host: string,
): OAuthRefreshError | undefined {
  const found = readError?.(body, status) ?? providerError(body, status < 300)
  const error = redact(firstText(found.error), secrets)
  if (error) return new OAuthError(status, error, redact(firstText(found.errorDescription), secrets), redact(firstText(found.errorUri), secrets))
  return status < 300 ? undefined : new TokenRequestError('HTTP_ERROR', `Token endpoint ${host} answered ${status}`, { status })
}
