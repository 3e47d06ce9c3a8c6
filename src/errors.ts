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

/** Extra, non-secret facts an error carries besides its code and message. */
export interface OAuthRefreshErrorOptions {
  /** The underlying failure. Never a value that holds a secret. */
  cause?: unknown
  /** The HTTP status of the token endpoint's answer, when there was one. */
  status?: number
}

/**
 * The base class of every error the SDK throws. Its `code` is stable; its message names what
 * failed and never holds a client secret, refresh token or access token.
 */
export class OAuthRefreshError extends Error {
  /** A stable, machine-readable code. */
  readonly code: OAuthRefreshErrorCode
  /** The HTTP status of the token endpoint's answer, when there was one. */
  readonly status?: number

  constructor(code: OAuthRefreshErrorCode, message: string, options: OAuthRefreshErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    if (options.status !== undefined) this.status = options.status
  }

  /** A plain summary for logs: name, code, message, status. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, status: this.status }
  }
}

/** A bad option given to `createRefreshClient` or an adapter factory (code `CONFIG_INVALID`). */
export class ConfigError extends OAuthRefreshError {
  constructor(message: string) {
    super('CONFIG_INVALID', message)
  }
}

/**
 * An error response from the token endpoint (RFC 6749 §5.2), such as `invalid_grant`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export class OAuthError extends OAuthRefreshError {
  /** The `error` code the server sent, e.g. `invalid_grant`. */
  readonly error: string
  /** The server's `error_description`, with any known secret removed. */
  readonly errorDescription?: string
  /** The server's `error_uri`. */
  readonly errorUri?: string
  declare readonly status: number

  constructor(fields: { error: string; errorDescription?: string; errorUri?: string; status: number }) {
    const detail = fields.errorDescription ? `: ${fields.errorDescription}` : ''
    super('OAUTH_ERROR', `Token endpoint answered ${fields.status} ${fields.error}${detail}`, { status: fields.status })
    this.error = fields.error
    if (fields.errorDescription !== undefined) this.errorDescription = fields.errorDescription
    if (fields.errorUri !== undefined) this.errorUri = fields.errorUri
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), error: this.error, errorDescription: this.errorDescription, errorUri: this.errorUri }
  }
}

/**
 * A token response the SDK cannot use: not JSON, HTML, not an object, no `access_token`, a
 * `token_type` other than bearer, or too large. Nothing from it is stored.
 */
export class TokenResponseError extends OAuthRefreshError {}

/**
 * The token request failed without an OAuth answer: a network error, a timeout, an HTTP error
 * status, a redirect, or a lost answer that leaves the refresh in doubt (`REFRESH_IN_DOUBT`).
 */
export class TokenRequestError extends OAuthRefreshError {}

/** The storage adapter failed (code `STORAGE_ERROR`); the cause is the adapter's own error. */
export class StorageError extends OAuthRefreshError {
  constructor(message: string, cause?: unknown) {
    super('STORAGE_ERROR', message, { cause })
  }
}
