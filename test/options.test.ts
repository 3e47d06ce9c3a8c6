import { describe, expect, it } from 'vitest'
import { ConfigError } from '../src/errors.js'
import { parseOptions } from '../src/options.js'

const base = { tokenUrl: 'https://auth.example.com/token', clientId: 'id', refreshToken: 'rt' }

describe('parseOptions', () => {
  it('fills in the documented defaults', () => {
    const config = parseOptions(base)
    expect(config.endpoint).toMatchObject({ tokenUrl: 'https://auth.example.com/token', clientAuthentication: 'auto', grantType: 'refresh_token', scope: undefined, timeoutMs: 10_000, retry: { attempts: 3, baseDelayMs: 250, maxDelayMs: 5_000 } })
    expect(config.headerName).toBe('Authorization')
    expect(config.headerParts.join('T')).toBe('Bearer T')
    expect(config.leewayMs).toBe(30_000)
    expect(config.storageKey).toBe('oauth-refresh:id@https://auth.example.com/token')
    expect(config.allowedOrigins).toBeUndefined()
  })

  it('reads an empty refresh token (an unset environment variable) as none', () => {
    expect(parseOptions({ ...base, refreshToken: '' }).refreshToken).toBeUndefined()
  })

  it('reads an empty client secret (an unset environment variable) as a public client', () => {
    expect(parseOptions({ ...base, clientSecret: '' }).endpoint.clientSecret).toBeUndefined()
    expect(() => parseOptions({ ...base, clientSecret: '', clientAuthentication: 'basic' })).toThrow(/"clientSecret" is required/)
  })

  it('joins a scope array with spaces and drops an empty scope', () => {
    expect(parseOptions({ ...base, scope: ['read', 'write'] }).endpoint.scope).toBe('read write')
    expect(parseOptions({ ...base, scope: [] }).endpoint.scope).toBeUndefined()
  })

  it('accepts a URL object and http on loopback hosts', () => {
    for (const url of ['http://localhost:8080/t', 'http://127.0.0.1/t', 'http://[::1]:1/t']) {
      expect(parseOptions({ ...base, tokenUrl: new URL(url) }).endpoint.tokenUrl).toBe(url)
    }
  })

  it("carries the header pattern's scheme, extra dead-grant codes and readError to the token endpoint", () => {
    expect(parseOptions(base).endpoint).toMatchObject({ scheme: 'Bearer', deadGrantErrors: [], readError: undefined })
    const readError = () => undefined
    const config = parseOptions({ ...base, authorizationHeader: { pattern: ' DPoP {{access_token}}' }, deadGrantErrors: ['invalid_code'], readError })
    expect(config.endpoint).toMatchObject({ scheme: 'DPoP', deadGrantErrors: ['invalid_code'], readError })
    expect(parseOptions({ ...base, authorizationHeader: { pattern: '{{access_token}}' } }).endpoint.scheme).toBe('')
    expect(() => parseOptions({ ...base, deadGrantErrors: 'invalid_code' } as never)).toThrow(/"deadGrantErrors"/)
    expect(() => parseOptions({ ...base, readError: {} } as never)).toThrow(/"readError"/)
  })

  it('normalizes allowed origins', () => {
    expect([...parseOptions({ ...base, allowedOrigins: ['https://API.example.com/v1/'] }).allowedOrigins!]).toEqual(['https://api.example.com'])
  })

  it.each([
    ['no options', undefined, /"options"/],
    ['no tokenUrl', { clientId: 'id' }, /"tokenUrl"/],
    ['no clientId', { tokenUrl: base.tokenUrl }, /"clientId"/],
    ['an unparsable tokenUrl', { ...base, tokenUrl: 'not a url' }, /"tokenUrl" is not a valid URL/],
    ['plain http on a public host', { ...base, tokenUrl: 'http://auth.example.com/token' }, /must use https/],
    ['http on 127.0.0.2-like spoof hosts', { ...base, tokenUrl: 'http://127.0.0.1.example.com/t' }, /must use https/],
    ['a fragment', { ...base, tokenUrl: 'https://a.example/t#x' }, /fragment/],
    ['a header pattern without the placeholder', { ...base, authorizationHeader: { pattern: 'Bearer' } }, /"authorizationHeader.pattern"/],
    ['an invalid header name', { ...base, authorizationHeader: { name: 'X Token' } }, /"authorizationHeader"/],
    ['an invalid extra token request header', { ...base, tokenRequest: { headers: { 'X Tenant': 'a' } } }, /"tokenRequest.headers"/],
    ["'basic' without a client secret", { ...base, clientAuthentication: 'basic' }, /"clientSecret"/],
    ['a timeout beyond what timers can hold', { ...base, timeoutMs: 3e9 }, /"timeoutMs"/],
    ['a misspelt option', { ...base, clientSecert: 's' }, /Option "clientSecert" is not a known option/],
    ['a misspelt nested option', { ...base, retry: { attempts: 2, jitter: true } }, /Option "retry.jitter" is not a known option/],
    ['extra headers given as a Headers object, whose entries would be lost', { ...base, tokenRequest: { headers: new Headers({ a: 'b' }) } }, /"tokenRequest.headers"/],
    ['a negative leeway', { ...base, expiryLeewaySeconds: -1 }, /"expiryLeewaySeconds"/],
    ['a storage without delete', { ...base, storage: { get: async () => undefined, set: async () => {} } }, /"storage.delete"/],
    ['zero attempts, giving the range', { ...base, retry: { attempts: 0 } }, 'Option "retry.attempts" must be a number from 1 to 2147483647'],
    ['an unknown clientAuthentication, listing the allowed ones', { ...base, clientAuthentication: 'jwt' }, `Option "clientAuthentication" must be 'auto', 'basic' or 'body'`],
    ['a misspelt required option, as unknown rather than missing', { clientId: 'id', tokenURL: base.tokenUrl }, 'Option "tokenURL" is not a known option; did you mean "tokenUrl"?'],
    ['a token URL with a user name and password', { ...base, tokenUrl: 'https://user:pass@auth.example.com/token' }, 'Option "tokenUrl" must not hold credentials'],
    ['a token URL with a user name', { ...base, tokenUrl: new URL('https://user@auth.example.com/token') }, /"tokenUrl" must not hold/],
    ['a bad allowed origin', { ...base, allowedOrigins: ['nope'] }, /"allowedOrigins"/],
    ['a non-string extra header', { ...base, tokenRequest: { headers: { 'x-a': 1 } } }, /"tokenRequest.headers.x-a"/],
  ])('throws a ConfigError for %s', (_, options, message) => {
    expect(() => parseOptions(options as never)).toThrow(ConfigError)
    expect(() => parseOptions(options as never)).toThrow(message)
  })

  it('never repeats a secret value in its message', () => {
    const secret = 'sup3r-secret-value'
    const inUrl = { tokenUrl: `https://client:${secret}@auth.example.com/token` }
    for (const bad of [{ clientSecret: { secret } }, { refreshToken: [secret] }, { clientAuthentication: secret }, { timeoutMs: secret }, inUrl]) {
      expect(() => parseOptions({ ...base, ...bad } as never)).toThrow(ConfigError)
      try {
        parseOptions({ ...base, ...bad } as never)
      } catch (error) {
        expect(String((error as Error).message)).not.toContain(secret)
      }
    }
  })
})
