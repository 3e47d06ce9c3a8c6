import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { ConfigError, OAuthError, OAuthRefreshError, StorageError, TokenRequestError, TokenResponseError } from '../src/errors.js'

describe('errors', () => {
  it('every class is an OAuthRefreshError with its own name and a stable code', () => {
    const errors = [
      [new ConfigError('bad'), 'ConfigError', 'CONFIG_INVALID'],
      [new OAuthError(400, 'invalid_grant'), 'OAuthError', 'OAUTH_ERROR'],
      [new TokenResponseError('HTML_RESPONSE', 'html'), 'TokenResponseError', 'HTML_RESPONSE'],
      [new TokenRequestError('TIMEOUT', 'slow'), 'TokenRequestError', 'TIMEOUT'],
      [new StorageError('disk', new Error('x')), 'StorageError', 'STORAGE_ERROR'],
    ] as const
    for (const [error, name, code] of errors) {
      expect(error).toBeInstanceOf(OAuthRefreshError)
      expect(error).toBeInstanceOf(Error)
      expect(error.name).toBe(name)
      expect(error.code).toBe(code)
    }
  })

  it('OAuthError carries the RFC 6749 §5.2 fields and says them in its message', () => {
    const error = new OAuthError(400, 'invalid_grant', 'expired', 'https://e/doc')
    expect(error.message).toBe('Token endpoint answered 400 invalid_grant: expired')
    expect(error.toJSON()).toEqual({ name: 'OAuthError', code: 'OAUTH_ERROR', message: error.message, status: 400, error: 'invalid_grant', errorDescription: 'expired', errorUri: 'https://e/doc' })
  })

  it('keeps the cause and the status', () => {
    const cause = new Error('socket hang up')
    const error = new TokenRequestError('NETWORK_ERROR', 'failed', { cause, status: 502 })
    expect(error.cause).toBe(cause)
    expect(error.status).toBe(502)
    expect(inspect(error)).toContain('NETWORK_ERROR')
  })
})
