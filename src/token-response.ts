import * as v from 'valibot'
import { OAuthError, type OAuthRefreshError, TokenRequestError, TokenResponseError } from './errors.js'

/** The largest token endpoint body the SDK reads; anything larger is refused unread. */
export const MAX_RESPONSE_BYTES = 1 << 20

/** What the SDK keeps from a successful token response (RFC 6749 §5.1). */
export interface TokenResponse {
  accessToken: string
  refreshToken?: string
  /** Lifetime in seconds, only when the server sent a usable `expires_in`. */
  expiresIn?: number
  scope?: string
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
  const tooLarge = () => new TokenResponseError('RESPONSE_TOO_LARGE', `Token endpoint answered with more than ${limit} bytes`, { status: response.status })
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

function parseJson(answer: TokenAnswer): unknown {
  const type = answer.headers.get('content-type') ?? ''
  if (type.includes('text/html') || answer.text.trimStart().startsWith('<')) {
    throw new TokenResponseError('HTML_RESPONSE', `Token endpoint answered ${answer.status} with HTML, not JSON`, { status: answer.status })
  }
  try {
    return JSON.parse(answer.text)
  } catch {
    throw new TokenResponseError('INVALID_RESPONSE', `Token endpoint answered ${answer.status} with a body that is not JSON`, { status: answer.status })
  }
}

/**
 * Validates a successful token response (RFC 6749 §5.1): a JSON object with a non-empty
 * `access_token` and, when `token_type` is present, a bearer type in any case.
 */
export function parseTokenResponse(answer: TokenAnswer): TokenResponse {
  const result = v.safeParse(SuccessSchema, parseJson(answer))
  if (!result.success) {
    const field = v.getDotPath(result.issues[0]) ?? 'body'
    throw new TokenResponseError('INVALID_RESPONSE', `Token response is invalid at "${field}": expected ${result.issues[0].expected ?? 'a JSON object'}`, { status: answer.status })
  }
  const body = result.output
  if (body.token_type !== undefined && body.token_type.toLowerCase() !== 'bearer') {
    throw new TokenResponseError('UNSUPPORTED_TOKEN_TYPE', 'Token response has a token_type other than Bearer', { status: answer.status })
  }
  const expiresIn = lifetimeSeconds(body.expires_in)
  return {
    accessToken: body.access_token,
    ...(body.refresh_token !== undefined && { refreshToken: body.refresh_token }),
    ...(expiresIn !== undefined && { expiresIn }),
    ...(body.scope !== undefined && { scope: body.scope }),
  }
}

/** Replaces every occurrence of a known secret in server-provided text. */
function redact(text: string | undefined, secrets: readonly (string | undefined)[]): string | undefined {
  return secrets.reduce<string | undefined>((out, secret) => (secret && out ? out.split(secret).join('[redacted]') : out), text)
}

/**
 * Turns an error answer into an `OAuthError` when it is an RFC 6749 §5.2 error object, or into
 * an `HTTP_ERROR` otherwise. Server text is scrubbed of `secrets`: a hostile or careless server
 * may echo the refresh token back.
 */
export function parseErrorResponse(answer: TokenAnswer, secrets: readonly (string | undefined)[]): OAuthRefreshError {
  let body: unknown
  try {
    body = parseJson(answer)
  } catch {
    body = undefined
  }
  const result = v.safeParse(ErrorSchema, body)
  if (!result.success) {
    return new TokenRequestError('HTTP_ERROR', `Token endpoint answered ${answer.status} without an OAuth error`, { status: answer.status })
  }
  const errorDescription = redact(result.output.error_description, secrets)
  const errorUri = redact(result.output.error_uri, secrets)
  return new OAuthError({
    error: redact(result.output.error, secrets)!,
    status: answer.status,
    ...(errorDescription !== undefined && { errorDescription }),
    ...(errorUri !== undefined && { errorUri }),
  })
}
