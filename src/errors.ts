/**
 * Every stable error code the SDK uses. Switch on `error.code`, never on a message.
 */
export type OAuthRefreshErrorCode =
  | 'CONFIG_INVALID'
  | 'NO_GRANT'
  | 'OAUTH_ERROR'
  | 'INVALID_RESPONSE'
  | 'HTML_RESPONSE'
  | 'UNSUPPORTED_TOKEN_TYPE'
  | 'RESPONSE_TOO_LARGE'
  | 'HTTP_ERROR'
  | 'NETWORK_ERROR'
  | 'TIMEOUT'
  | 'UNEXPECTED_REDIRECT'
  | 'REFRESH_IN_DOUBT'
  | 'STORAGE_ERROR'
  | 'ORIGIN_NOT_ALLOWED'
  | 'REDIRECT_BLOCKED'
  | 'INVALID_URL'

/** Extra, non-secret facts an error carries besides its code and message. */
export interface OAuthRefreshErrorOptions {
  /** The underlying failure. Never a value that holds a secret. */
  cause?: unknown
  /** The HTTP status of the token endpoint's answer, when there was one. */
  status?: number | undefined
}

/**
 * The base class of every error the SDK throws. Its `code` is stable; its message names what
 * failed and never holds a client secret, refresh token or access token.
 */
export class OAuthRefreshError extends Error {
  // Fields set in constructors are `declare`d: no empty class field is emitted for them.
  /** A stable, machine-readable code. */
  declare readonly code: OAuthRefreshErrorCode
  /** The HTTP status of the token endpoint's answer, when there was one. */
  declare readonly status?: number | undefined

  // A literal, not `new.target.name`: minifiers rename classes in users' bundles.
  override name = 'OAuthRefreshError'

  constructor(code: OAuthRefreshErrorCode, message: string, options: OAuthRefreshErrorOptions = {}) {
    // Error reads only `cause`, and sets it only when `options` has the key.
    super(message, options)
    this.code = code
    this.status = options.status
  }

  /** A plain summary for logs: name, message and the error's own fields (code, status, …). */
  toJSON(): object {
    return { ...this, message: this.message }
  }
}

/** A bad option given to `createRefreshClient` or an adapter factory (code `CONFIG_INVALID`). */
export class ConfigError extends OAuthRefreshError {
  override name = 'ConfigError'

  constructor(message: string) {
    super('CONFIG_INVALID', message)
  }
}

/**
 * An error answer of the token endpoint (RFC 6749 §5.2), such as `invalid_grant`; also an
 * `error` member in a 2xx answer (GitHub, Slack) and a provider's own error body (HubSpot,
 * Strava, Zoom, …), read as `answerError` in token-response.ts documents. Its message names
 * the code.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export class OAuthError extends OAuthRefreshError {
  override name = 'OAuthError'
  /**
   * The provider's code, with any known secret removed: RFC 6749's `error` (`invalid_grant`),
   * else a code from the provider's own shape (HubSpot's `BAD_REFRESH_TOKEN`, Strava's
   * `RefreshToken.invalid`).
   */
  declare readonly error: string
  /** The server's `error_description` (or its own `message`, `reason`), with any known secret removed. */
  declare readonly errorDescription?: string | undefined
  /** The server's `error_uri`, with any known secret removed. */
  declare readonly errorUri?: string | undefined
  declare readonly status: number

  constructor(status: number, error: string, errorDescription?: string, errorUri?: string) {
    super('OAUTH_ERROR', `Token endpoint answered ${status} ${error}${errorDescription ? `: ${errorDescription}` : ''}`, { status })
    this.error = error
    this.errorDescription = errorDescription
    this.errorUri = errorUri
  }
}

/**
 * A token response the SDK cannot use: neither JSON nor a form, HTML, not an object, no
 * `access_token`, a sender-constrained `token_type` (DPoP) the header pattern does not name, or
 * too large. A new refresh token in it has been handed over before it was refused.
 */
export class TokenResponseError extends OAuthRefreshError {
  override name = 'TokenResponseError'
}

/**
 * The token request failed without an OAuth answer: a network error, a timeout, an HTTP error
 * status, a redirect, or a lost answer that leaves the refresh in doubt (`REFRESH_IN_DOUBT`).
 */
export class TokenRequestError extends OAuthRefreshError {
  override name = 'TokenRequestError'
}

/** Why a client has no grant: none was given, it was cleared here or in another context, or the provider ended it. */
export type NoGrantReason = 'missing' | 'cleared' | 'elsewhere' | 'rejected'

/**
 * The client has no grant to refresh (code `NO_GRANT`): `reason` says why. When the provider
 * ended it, `cause` is the provider's answer (an `OAuthError`, e.g. `invalid_grant`). The user
 * must sign in again.
 */
export class NoGrantError extends OAuthRefreshError {
  override name = 'NoGrantError'
  /** Why there is no grant. */
  declare readonly reason: NoGrantReason

  constructor(reason: NoGrantReason, cause?: OAuthError) {
    const why = reason === 'missing' ? 'No refresh token was given' : reason === 'rejected' ? `The provider ended the grant (${cause?.error})` : `The grant was cleared${reason === 'elsewhere' ? ' in another context' : ''}`
    super('NO_GRANT', `${why}; sign in, then call setRefreshToken()`, cause && { cause, status: cause.status })
    this.reason = reason
  }
}

/** The storage adapter failed (code `STORAGE_ERROR`); the cause is the adapter's own error. */
export class StorageError extends OAuthRefreshError {
  override name = 'StorageError'

  constructor(message: string, cause?: unknown) {
    super('STORAGE_ERROR', message, { cause })
  }
}
