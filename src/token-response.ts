import * as v from 'valibot'
import { OAuthError, type OAuthRefreshError, TokenRequestError, TokenResponseError } from './errors.js'
import { parseWith, text } from './schemas.js'

/** The largest token endpoint body the SDK reads; anything larger is refused unread. */
export const MAX_RESPONSE_BYTES = 1 << 20

/** What the SDK keeps from a successful token response (RFC 6749 §5.1). */
export interface TokenResponse {
  accessToken: string
  refreshToken: string | undefined
  /** Lifetime in seconds, only when the server sent a usable `expires_in`. */
  expiresIn: number | undefined
  scope: string | undefined
  /** The `token_type` as sent; `Bearer` when none was. */
  tokenType: string
  /** Lifetime of the refresh token in seconds, when the provider said. */
  refreshTokenExpiresIn: number | undefined
  /** Every other member of the answer; never a token. */
  fields: Record<string, unknown>
}

/** The answer of the token endpoint as plain values, so nothing platform-bound outlives the request. */
export interface TokenAnswer {
  status: number
  headers: Headers
  text: string
}

// Only `access_token` must be right. The optional fields are read leniently below: refusing a
// response for `"scope": null` would throw away a refresh token the server has already rotated.
const SuccessSchema = v.object({ access_token: text })

const ErrorSchema = v.object({ error: text })

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

const optionalText = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined)

/**
 * Validates a successful token response (RFC 6749 §5.1): a JSON object with a non-empty
 * `access_token` and, when `token_type` is a string, a bearer type in any case. A `null` or
 * mistyped optional field counts as absent.
 */
export function parseTokenResponse(answer: TokenAnswer): TokenResponse {
  const { status } = answer
  const json = parseJson(answer) as Record<string, unknown>
  const { access_token } = parseWith(SuccessSchema, json, () => new TokenResponseError('INVALID_RESPONSE', 'Token response has no valid "access_token"', { status }))
  const tokenType = optionalText(json.token_type)
  if (tokenType && tokenType.toLowerCase() !== 'bearer') {
    throw new TokenResponseError('UNSUPPORTED_TOKEN_TYPE', 'Token response is not a Bearer token', { status })
  }
  return { accessToken: access_token, refreshToken: optionalText(json.refresh_token), expiresIn: lifetimeSeconds(json.expires_in), scope: optionalText(json.scope), tokenType: tokenType ?? 'Bearer', refreshTokenExpiresIn: undefined, fields: {} }
}

/** Replaces every occurrence of a known secret in server-provided text. */
const redact = (text: string | undefined, secrets: readonly (string | undefined)[]) =>
  secrets.reduce((out, secret) => (secret && out ? out.split(secret).join('[redacted]') : out), text)

/**
 * Turns an error answer into an `OAuthError` when it is an RFC 6749 §5.2 error object, or into
 * an `HTTP_ERROR` naming the endpoint's `host` otherwise. Server text is scrubbed of `secrets`:
 * a hostile or careless server may echo the refresh token back.
 */
export function parseErrorResponse(answer: TokenAnswer, secrets: readonly (string | undefined)[], host: string): OAuthRefreshError {
  let body: unknown
  try {
    body = parseJson(answer)
  } catch {}
  const { status } = answer
  const result = v.safeParse(ErrorSchema, body)
  if (!result.success) return new TokenRequestError('HTTP_ERROR', `Token endpoint ${host} answered ${status}`, { status })
  const { error_description, error_uri } = body as Record<string, unknown>
  return new OAuthError(status, redact(result.output.error, secrets)!, redact(optionalText(error_description), secrets), redact(optionalText(error_uri), secrets))
}
