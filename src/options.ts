import * as v from 'valibot'
import { ConfigError, type StorageError } from './errors.js'
import { fn, isStringArray, parseWith, string, text } from './schemas.js'
import type { TokenStorage } from './storage/types.js'
import { memoryStorage } from './storage/memory.js'
import type { ClientAuthentication, RetryOptions, TokenEndpointConfig } from './token-request.js'
import type { ReadError } from './token-response.js'

/** Options of `createRefreshClient`, field by field an "OAuth 2.0 — Refresh Token" connector. */
export interface RefreshClientOptions {
  /** The token endpoint: `https:`, or `http:` on a loopback host only. */
  tokenUrl: string | URL
  /** The revocation endpoint (RFC 7009) that `clear({ revoke: true })` uses: `https:`, or `http:` on a loopback host only. */
  revocationUrl?: string | URL | undefined
  /** The client identifier (RFC 6749 §2.2). */
  clientId: string
  /** The client secret; omit it (or pass `''`) for a public client, which sends only `client_id`. */
  clientSecret?: string | undefined
  /** The refresh token that starts the grant; not needed when storage already holds one. */
  refreshToken?: string | undefined
  /** Scope to request, sent space-joined; omitted when not set (RFC 6749 §6). */
  scope?: string | string[] | undefined
  /**
   * `'auto'` (default): HTTP Basic, then the request body if the server refuses Basic; or a
   * client assertion such as `privateKeyJwt({ key })` of `oauth-refresh/private-key-jwt`.
   */
  clientAuthentication?: ClientAuthentication | undefined
  /**
   * Proofs of possession (RFC 9449 DPoP) on every token request and `client.fetch` call:
   * `await createDPoP()` of `oauth-refresh/dpop`. The header pattern then defaults to
   * `DPoP {{access_token}}`, and `token_type: "DPoP"` answers are accepted.
   */
  dpop?: DPoPHook | undefined
  /** The header that carries the access token. Default `Authorization: Bearer {{access_token}}` (`DPoP …` with `dpop`). */
  authorizationHeader?: { name?: string | undefined; pattern?: string | undefined } | undefined
  /** The grant type sent to the token endpoint. Default `refresh_token`. */
  grantType?: string | undefined
  /** Additional headers and form fields for every token request. */
  tokenRequest?: { headers?: Record<string, string> | undefined; body?: Record<string, string> | undefined } | undefined
  /** Where the grant is kept. Default `memoryStorage()`. */
  storage?: TokenStorage | undefined
  /** The storage key of this grant. Default `oauth-refresh:{clientId}@{tokenUrl}`. */
  storageKey?: string | undefined
  /** Refresh this many seconds before expiry, at most half the token's lifetime. Default 30. */
  expiryLeewaySeconds?: number | undefined
  /** The `fetch` to use for token and API requests. Default the platform's `fetch`. */
  fetch?: typeof fetch | undefined
  /** Timeout of one token request in milliseconds. Default 10,000. */
  timeoutMs?: number | undefined
  /** Retries of transient token endpoint faults. Default 3 attempts, 250 ms base, 5 s cap. */
  retry?: Partial<RetryOptions> | undefined
  /** When set, the access token is sent only to these origins; other URLs are refused. */
  allowedOrigins?: string[] | undefined
  /**
   * Called when storing a refreshed grant fails. The client keeps the new grant in memory and
   * writes it again after the next refresh. Default: a warning on the console.
   */
  onStorageError?: ((error: StorageError) => void) | undefined
  /**
   * More error codes that say the grant is dead, for a provider the SDK does not know; compared
   * in any case. They end the grant as `invalid_grant` does. Built in: `invalid_grant`,
   * `bad_refresh_token` (GitHub, HubSpot), `invalid_refresh_token` (Slack), `RefreshToken.invalid` (Strava).
   */
  deadGrantErrors?: string[] | undefined
  /**
   * Reads the error in a token endpoint answer the built-in rule misreads: given the parsed body
   * and the status of every answer, returns `{ error, errorDescription? }` (an `OAuthError`,
   * secrets scrubbed) or undefined to leave the answer to the built-in rule.
   */
  readError?: ReadError | undefined
}

/**
 * What the `dpop` option needs: `wrap` returns a `fetch` that adds a proof to each request, keeps
 * the server's nonces, and replays a resource request once when a nonce is required.
 */
export interface DPoPHook {
  wrap(fetch: typeof globalThis.fetch): typeof globalThis.fetch
}

/** The validated, defaulted configuration the client runs on. */
export interface ClientConfig {
  endpoint: TokenEndpointConfig
  refreshToken: string | undefined
  revocationUrl: string | undefined
  headerName: string
  /** The header value pattern split at `{{access_token}}`: the value is `parts.join(token)`. */
  headerParts: string[]
  storage: TokenStorage
  storageKey: string
  leewayMs: number
  /**
   * Longer than any refresh can take: twice (a retry after a dead grant, the Basic-to-body
   * fallback) every attempt timing out and backing off at the cap, plus such a span for storage;
   * within setTimeout's 32-bit range. Bounds every wait for a refresh and for the grant's lock.
   */
  maxWaitMs: number
  allowedOrigins: Set<string> | undefined
  onStorageError: ((error: StorageError) => void) | undefined
}

// Checked by `strings` below: valibot's `record` would add more code than the whole check.
// A plain object: a `Headers` or `Map` would pass as an object and lose its entries.
const record = v.optional(
  v.custom<Record<string, unknown>>(
    (value) => typeof value === 'object' && value !== null && [Object.prototype, null].includes(Object.getPrototypeOf(value)),
    'must be a plain object of strings',
  ),
  {},
)
// Up to setTimeout's 32-bit limit, beyond which timers fire at once.
const atLeast = (min: number, fallback: number) =>
  v.optional(v.custom<number>((value) => typeof value === 'number' && value >= min && value <= 2 ** 31 - 1, `must be a number from ${min} to 2147483647`), fallback)
const CLIENT_AUTHENTICATIONS: unknown[] = ['auto', 'basic', 'body']

const isUrl = (value: unknown) => typeof value === 'string' || value instanceof URL

const OptionsSchema = v.strictObject({
  tokenUrl: v.custom<string | URL>(isUrl, 'must be the token endpoint URL'),
  revocationUrl: v.optional(v.custom<string | URL>(isUrl, 'must be the revocation endpoint URL')),
  clientId: text,
  // An empty string (an unset environment variable) counts as absent: a public client, and a
  // stored grant may resume.
  clientSecret: v.optional(string),
  refreshToken: v.optional(string),
  scope: v.optional(v.custom<string | string[]>((value) => typeof value === 'string' || isStringArray(value), 'must be a string or an array of strings')),
  clientAuthentication: v.optional(v.custom<ClientAuthentication>((value) => CLIENT_AUTHENTICATIONS.includes(value) || typeof value === 'function', "must be 'auto', 'basic', 'body' or privateKeyJwt(…)"), 'auto'),
  authorizationHeader: v.optional(
    v.strictObject({ name: v.optional(text, 'Authorization'), pattern: v.optional(string) }, 'must be an object { name?, pattern? }'),
    {},
  ),
  dpop: v.optional(v.object({ wrap: fn }, 'must be a createDPoP() result')),
  grantType: v.optional(text, 'refresh_token'),
  tokenRequest: v.optional(v.strictObject({ headers: record, body: record }, 'must be an object { headers?, body? }'), {}),
  storage: v.optional(v.object({ get: fn, set: fn, delete: fn }, 'must be a TokenStorage: an object with get, set and delete')),
  storageKey: v.optional(text),
  expiryLeewaySeconds: atLeast(0, 30),
  fetch: v.optional(fn),
  timeoutMs: atLeast(1, 10_000),
  retry: v.optional(
    v.strictObject({ attempts: atLeast(1, 3), baseDelayMs: atLeast(0, 250), maxDelayMs: atLeast(0, 5_000) }, 'must be an object with attempts, baseDelayMs, maxDelayMs'),
    {},
  ),
  allowedOrigins: v.optional(v.custom<string[]>(isStringArray, 'must be an array of origins')),
  onStorageError: v.optional(fn),
  deadGrantErrors: v.optional(v.custom<string[]>(isStringArray), []),
  readError: v.optional(fn),
}, 'must be an object')

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]']

const fail = (name: string, problem: string) => new ConfigError(`Option "${name}" ${problem}`)

/** A copy of `values`, each of which must be a string. */
function strings(values: Record<string, unknown>, name: string): Record<string, string> {
  for (const [key, value] of Object.entries(values)) {
    if (typeof value !== 'string') throw fail(`${name}.${key}`, 'must be a string')
  }
  return { ...values } as Record<string, string>
}

function checkHeaders(headers: Record<string, string>, name: string) {
  try {
    new Headers(headers)
  } catch {
    throw fail(name, 'holds an invalid header name or value')
  }
}

function parseUrl(value: string, name: string): URL {
  try {
    return new URL(value)
  } catch {
    throw fail(name, 'is not a valid URL')
  }
}

/** Refused, not trimmed: a silent trim would hide which of the two values the provider holds. */
export function refuseWhitespace(name: string, value: string | undefined) {
  if (value?.trim() !== value) throw fail(name, 'has leading or trailing whitespace, such as a line break from an .env file')
}

/** An authorization server endpoint: `https:` (or `http:` on loopback), no credentials, no fragment. */
function endpointUrl(value: string | URL, name: string): URL {
  const url = parseUrl(String(value), name)
  // fetch refuses such a URL, and its error would repeat the password.
  if (url.username || url.password) throw fail(name, 'must not hold credentials')
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.includes(url.hostname))) {
    throw fail(name, 'must use https: (http: only on a loopback host)')
  }
  if (url.hash) throw fail(name, 'must not have a fragment')
  return url
}

/** An `allowedOrigins` entry as an origin; one with a path, query or fragment is refused, not cut. */
function parseOrigin(value: string): string {
  const url = parseUrl(value, 'allowedOrigins')
  if (url.href !== `${url.origin}/`) throw fail('allowedOrigins', 'must hold only origins, such as https://api.example.com')
  return url.origin
}

/**
 * Validates `createRefreshClient` options and fills in defaults. Throws a `ConfigError` naming
 * the bad option; messages never repeat an option's value.
 */
export function parseOptions(options: RefreshClientOptions): ClientConfig {
  // Strict objects, so a misspelt `clientSecret` is an error rather than a public client.
  const o = parseWith(OptionsSchema, options, (message) => new ConfigError(message))
  const clientSecret = o.clientSecret || undefined
  for (const name of ['clientId', 'clientSecret', 'refreshToken'] as const) refuseWhitespace(name, o[name])
  const tokenUrl = endpointUrl(o.tokenUrl, 'tokenUrl')
  const { name, pattern = `${options.dpop ? 'DPoP' : 'Bearer'} {{access_token}}` } = o.authorizationHeader
  if (!pattern.includes('{{access_token}}')) throw fail('authorizationHeader.pattern', 'must contain {{access_token}}')
  checkHeaders({ [name]: pattern }, 'authorizationHeader')
  const headers = strings(o.tokenRequest.headers, 'tokenRequest.headers')
  checkHeaders(headers, 'tokenRequest.headers')
  if (o.clientAuthentication === 'basic' && !clientSecret) throw fail('clientSecret', "is required by clientAuthentication 'basic'")
  // The caller's own object, not valibot's copy.
  const wrap = (send: typeof fetch) => options.dpop?.wrap(send) ?? send
  const scope = Array.isArray(o.scope) ? o.scope.join(' ') : o.scope
  return {
    endpoint: {
      tokenUrl: tokenUrl.href,
      host: tokenUrl.host,
      clientId: o.clientId,
      clientSecret,
      clientAuthentication: o.clientAuthentication,
      grantType: o.grantType,
      scope: scope || undefined,
      headers,
      body: strings(o.tokenRequest.body, 'tokenRequest.body'),
      fetch: wrap((o.fetch as typeof fetch | undefined) ?? ((input, init) => globalThis.fetch(input, init))),
      timeoutMs: o.timeoutMs,
      retry: o.retry,
      scheme: pattern.split('{{access_token}}')[0]!.trim(),
      deadGrantErrors: o.deadGrantErrors,
      readError: o.readError as ReadError | undefined,
    },
    refreshToken: o.refreshToken || undefined,
    revocationUrl: o.revocationUrl && endpointUrl(o.revocationUrl, 'revocationUrl').href,
    headerName: name,
    headerParts: pattern.split('{{access_token}}'),
    // The caller's own object, not valibot's copy: a class-based adapter keeps its `this`.
    storage: options.storage ?? memoryStorage(),
    storageKey: o.storageKey ?? `oauth-refresh:${o.clientId}@${tokenUrl.href}`,
    leewayMs: o.expiryLeewaySeconds * 1000,
    maxWaitMs: Math.min((2 * o.retry.attempts + 2) * (o.timeoutMs + o.retry.maxDelayMs), 2 ** 31 - 1),
    allowedOrigins: o.allowedOrigins && new Set(o.allowedOrigins.map(parseOrigin)),
    onStorageError: o.onStorageError as ClientConfig['onStorageError'],
  }
}
