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
    expect([...parseOptions({ ...base, allowedOrigins: ['https://API.example.com/', 'http://localhost:8080'] }).allowedOrigins!]).toEqual(['https://api.example.com', 'http://localhost:8080'])
  })

  it.each([
    ['no options', undefined, '"options" must be an object'],
    ['no tokenUrl, saying what it is', { clientId: 'id' }, 'Option "tokenUrl" is required: the token endpoint URL'],
    ['no clientId', { tokenUrl: base.tokenUrl }, 'Option "clientId" is required: a non-empty string'],
    ['a clientId that is no string', { ...base, clientId: 123 }, 'Option "clientId" must be a non-empty string'],
    ['a tokenUrl that is no string or URL', { ...base, tokenUrl: 5 }, 'Option "tokenUrl" must be the token endpoint URL'],
    ['a scope that is no string or string array', { ...base, scope: 5 }, 'Option "scope" must be a string or an array of strings'],
    ['a retry that is a number', { ...base, retry: 3 }, 'Option "retry" must be an object with attempts, baseDelayMs, maxDelayMs'],
    ['a fetch that is a module name', { ...base, fetch: 'node-fetch' }, 'Option "fetch" must be a function'],
    ['an authorizationHeader that is a header name', { ...base, authorizationHeader: 'X-Token' }, 'Option "authorizationHeader" must be an object { name?, pattern? }'],
    ['a tokenRequest that is a string', { ...base, tokenRequest: 'x' }, 'Option "tokenRequest" must be an object { headers?, body? }'],
    ['a storage that is no object', { ...base, storage: 'memory' }, 'Option "storage" must be a TokenStorage: an object with get, set and delete'],
    ['allowedOrigins as one string', { ...base, allowedOrigins: 'https://api.example.com' }, 'Option "allowedOrigins" must be an array of origins'],
    ['a grantType that is empty', { ...base, grantType: '' }, 'Option "grantType" must be a non-empty string'],
    ['a refreshToken that is no string', { ...base, refreshToken: 5 }, 'Option "refreshToken" must be a string'],
    ['a header pattern that is no string', { ...base, authorizationHeader: { pattern: 1 } }, 'Option "authorizationHeader.pattern" must be a string'],
    ['an onStorageError that is no function', { ...base, onStorageError: true }, 'Option "onStorageError" must be a function'],
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
    ['extra headers given as a Headers object, whose entries would be lost', { ...base, tokenRequest: { headers: new Headers({ a: 'b' }) } }, 'Option "tokenRequest.headers" must be a plain object of strings'],
    ['a negative leeway', { ...base, expiryLeewaySeconds: -1 }, /"expiryLeewaySeconds"/],
    ['a storage without delete', { ...base, storage: { get: async () => undefined, set: async () => {} } }, 'Option "storage.delete" is required: a function'],
    ['zero attempts, giving the range', { ...base, retry: { attempts: 0 } }, 'Option "retry.attempts" must be a number from 1 to 2147483647'],
    ['an unknown clientAuthentication, listing the allowed ones', { ...base, clientAuthentication: 'jwt' }, `Option "clientAuthentication" must be 'auto', 'basic', 'body' or privateKeyJwt(…)`],
    ['a misspelt required option, as unknown rather than missing', { clientId: 'id', tokenURL: base.tokenUrl }, 'Option "tokenURL" is not a known option; did you mean "tokenUrl"?'],
    [
      'every unknown option, snake_case ones with their camelCase names',
      { client_id: 'id', token_url: base.tokenUrl, refresh_token: 'rt', colour: 1 },
      'Option "client_id" is not a known option; did you mean "clientId"?\nOption "token_url" is not a known option; did you mean "tokenUrl"?\nOption "refresh_token" is not a known option; did you mean "refreshToken"?\nOption "colour" is not a known option',
    ],
    [
      'unknown options at several levels',
      { ...base, retry: { jitter: true, max: 1 }, clientSecert: 's' },
      'Option "retry.jitter" is not a known option\nOption "retry.max" is not a known option; did you mean "maxDelayMs"?\nOption "clientSecert" is not a known option',
    ],
    ...(['clientId', 'clientSecret', 'refreshToken'] as const).flatMap((name) =>
      ['value\n', ' value', 'value\t'].map((value): [string, object, string] => [
        `a ${name} with leading or trailing whitespace (${JSON.stringify(value)})`,
        { ...base, [name]: value },
        `Option "${name}" has leading or trailing whitespace, such as a line break from an .env file`,
      ]),
    ),
    ['a token URL with a user name and password', { ...base, tokenUrl: 'https://user:pass@auth.example.com/token' }, 'Option "tokenUrl" must not hold credentials'],
    ['a token URL with a user name', { ...base, tokenUrl: new URL('https://user@auth.example.com/token') }, /"tokenUrl" must not hold/],
    ['a bad allowed origin', { ...base, allowedOrigins: ['nope'] }, /"allowedOrigins"/],
    ...['https://api.example.com/v1', 'https://api.example.com/?a=1', 'https://api.example.com#x', 'https://user@api.example.com'].map((origin): [string, object, string] => [
      `an allowed origin with more than an origin (${origin})`,
      { ...base, allowedOrigins: [origin] },
      'Option "allowedOrigins" must hold only origins, such as https://api.example.com',
    ]),
    ['a non-string extra header', { ...base, tokenRequest: { headers: { 'x-a': 1 } } }, /"tokenRequest.headers.x-a"/],
  ])('throws a ConfigError for %s', (_, options, message) => {
    expect(() => parseOptions(options as never)).toThrow(ConfigError)
    expect(() => parseOptions(options as never)).toThrow(message)
  })

  it('never repeats a secret value in its message', () => {
    const secret = 'sup3r-secret-value'
    const inUrl = { tokenUrl: `https://client:${secret}@auth.example.com/token` }
    const pasted = [{ clientSecret: ` ${secret}` }, { refreshToken: `${secret}\r\n` }, { clientId: `${secret}\n` }]
    for (const bad of [{ clientSecret: { secret } }, { refreshToken: [secret] }, { clientAuthentication: secret }, { timeoutMs: secret }, inUrl, ...pasted]) {
      expect(() => parseOptions({ ...base, ...bad } as never)).toThrow(ConfigError)
      try {
        parseOptions({ ...base, ...bad } as never)
      } catch (error) {
        expect(String((error as Error).message)).not.toContain(secret)
      }
    }
  })
})
