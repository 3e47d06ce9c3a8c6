import * as v from 'valibot'
import { OAuthError, type OAuthRefreshError, TokenRequestError, TokenResponseError } from './errors.js'

/** The largest token endpoint body the SDK reads; anything larger is refused unread. */
export const MAX_RESPONSE_BYTES = 1 << 20

/** What the SDK keeps from a successful token response (RFC 6749 §5.1). */
export interface TokenResponse {
  accessToken: string
  refreshToken: string | undefined
  /** Lifetime in seconds, only when the server sent a usable `expires_in`. */
  expiresIn: number | undefined
  scope: string | undefined
}

/** The answer of the token endpoint as plain values, so nothing platform-bound outlives the request. */
export interface TokenAnswer {
  status: number
  headers: Headers
  text: string
}

const SuccessSchema = v.looseObject({
  access_token: v.pipe(v.string(), v.nonEmpty()),
  token_type: v.optional(v.string()),
  refresh_token: v.optional(v.pipe(v.string(), v.nonEmpty())),
  expires_in: v.optional(v.unknown()),
  scope: v.optional(v.string()),
})

const ErrorSchema = v.looseObject({
  error: v.string(),
  error_description: v.optional(v.string()),
  error_uri: v.optional(v.string()),
})

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

function parseJson({ status, headers, text }: TokenAnswer): unknown {
  if (headers.get('content-type')?.includes('html') || text.trimStart()[0] === '<') {
    throw new TokenResponseError('HTML_RESPONSE', `Token endpoint answered ${status} with HTML`, { status })
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new TokenResponseError('INVALID_RESPONSE', `Token endpoint answered ${status} with invalid JSON`, { status })
  }
}

/**
 * Validates a successful token response (RFC 6749 §5.1): a JSON object with a non-empty
 * `access_token` and, when `token_type` is present, a bearer type in any case.
 */
export function parseTokenResponse(answer: TokenAnswer): TokenResponse {
  const { status } = answer
  const result = v.safeParse(SuccessSchema, parseJson(answer))
  if (!result.success) {
    throw new TokenResponseError('INVALID_RESPONSE', `Token response has no valid "${v.getDotPath(result.issues[0]) ?? 'access_token'}"`, { status })
  }
  const body = result.output
  if (body.token_type && body.token_type.toLowerCase() !== 'bearer') {
    throw new TokenResponseError('UNSUPPORTED_TOKEN_TYPE', 'Token response is not a Bearer token', { status })
  }
  return { accessToken: body.access_token, refreshToken: body.refresh_token, expiresIn: lifetimeSeconds(body.expires_in), scope: body.scope }
}

/** Replaces every occurrence of a known secret in server-provided text. */
const redact = (text: string | undefined, secrets: readonly (string | undefined)[]) =>
  secrets.reduce((out, secret) => (secret && out ? out.split(secret).join('[redacted]') : out), text)

/**
 * Turns an error answer into an `OAuthError` when it is an RFC 6749 §5.2 error object, or into
 * an `HTTP_ERROR` otherwise. Server text is scrubbed of `secrets`: a hostile or careless server
 * may echo the refresh token back.
 */
export function parseErrorResponse(answer: TokenAnswer, secrets: readonly (string | undefined)[]): OAuthRefreshError {
  let body: unknown
  try {
    body = parseJson(answer)
  } catch {}
  const { status } = answer
  if (!v.is(ErrorSchema, body)) return new TokenRequestError('HTTP_ERROR', `Token endpoint answered ${status}`, { status })
  return new OAuthError(status, redact(body.error, secrets)!, redact(body.error_description, secrets), redact(body.error_uri, secrets))
}
