import { Buffer } from 'node:buffer'
import { describe, expect, it } from 'vitest'
import { answerError, checkTokenType, jwtLifetime, lifetimeSeconds, parseTokenResponse as parseWithBody, readBody, readLimitedText, type TokenAnswer } from '../src/token-response.js'

const answer = (text: string, status = 200, type = 'application/json') => ({ status, headers: new Headers({ 'content-type': type }), text })
const parseTokenResponse = (input: TokenAnswer, scheme?: string) => parseWithBody(input, readBody(input), scheme)
const parseErrorResponse = (input: TokenAnswer, secrets: (string | undefined)[], host = 'auth.example') => answerError(input, readBody(input), secrets, undefined, host)!
/** An unsigned JWT with this payload. */
const jwt = (payload: object) => ['{"alg":"none"}', JSON.stringify(payload)].map((part) => Buffer.from(part).toString('base64url')).join('.') + '.sig'

const codeOf = (fn: () => unknown) => {
  try {
    fn()
  } catch (error) {
    return (error as { code: string }).code
  }
  return 'no error'
}

describe('parseTokenResponse', () => {
  it('keeps access token, rotated refresh token, lifetime and scope', () => {
    const body = { access_token: 'at', token_type: 'Bearer', expires_in: 60, refresh_token: 'rt2', scope: 'a b', extra: 1 }
    expect(parseTokenResponse(answer(JSON.stringify(body)))).toEqual({
      accessToken: 'at',
      refreshToken: 'rt2',
      expiresIn: 60,
      scope: 'a b',
      tokenType: 'Bearer',
      refreshTokenExpiresIn: undefined,
      fields: { extra: 1 },
    })
  })

  it('accepts token_type in any case, and its absence', () => {
    expect(parseTokenResponse(answer('{"access_token":"at","token_type":"bEaReR"}')).accessToken).toBe('at')
    expect(parseTokenResponse(answer('{"access_token":"at"}'))).toEqual({ accessToken: 'at', tokenType: 'Bearer', fields: {} })
  })

  it.each([
    ['HTML by content type', answer('{}', 200, 'text/html'), 'HTML_RESPONSE'],
    ['HTML by body', answer('  <!doctype html><p>login</p>', 200, 'application/json'), 'HTML_RESPONSE'],
    ['not JSON', answer('{"access_token":'), 'INVALID_RESPONSE'],
    ['empty', answer(''), 'INVALID_RESPONSE'],
    ['not an object', answer('"at"'), 'INVALID_RESPONSE'],
    ['an array', answer('[]'), 'INVALID_RESPONSE'],
    ['no access_token', answer('{"token_type":"Bearer"}'), 'INVALID_RESPONSE'],
    ['empty access_token', answer('{"access_token":""}'), 'INVALID_RESPONSE'],
    ['numeric access_token', answer('{"access_token":42}'), 'INVALID_RESPONSE'],
    ['a MAC token', answer('{"access_token":"at","token_type":"mac"}'), 'UNSUPPORTED_TOKEN_TYPE'],
    ['a DPoP token under the default header pattern', answer('{"access_token":"at","token_type":"DPoP"}'), 'UNSUPPORTED_TOKEN_TYPE'],
    ['a form-encoded body without access_token', answer('token_type=bearer', 200, 'application/x-www-form-urlencoded'), 'INVALID_RESPONSE'],
  ])('refuses %s', (_, input, code) => {
    expect(codeOf(() => parseTokenResponse(input))).toBe(code)
  })

  it('reads null or mistyped optional fields as absent, so a rotated refresh token is not thrown away', () => {
    expect(parseTokenResponse(answer('{"access_token":"at","refresh_token":"rt2","scope":null,"token_type":null}'))).toEqual({ accessToken: 'at', refreshToken: 'rt2', tokenType: 'Bearer', fields: {} })
    expect(parseTokenResponse(answer('{"access_token":"at","refresh_token":null,"scope":["a"]}'))).toEqual({ accessToken: 'at', tokenType: 'Bearer', fields: {} })
  })
})

describe('parseTokenResponse beyond RFC 6749', () => {
  it('reads a form-encoded success, as GitHub sends without Accept JSON', () => {
    const form = 'access_token=at%2B1&expires_in=28800&refresh_token=rt2&refresh_token_expires_in=15897600&scope=&token_type=bearer'
    expect(parseTokenResponse(answer(form, 200, 'application/x-www-form-urlencoded; charset=utf-8'))).toEqual({
      accessToken: 'at+1',
      refreshToken: 'rt2',
      expiresIn: 28800,
      scope: undefined,
      tokenType: 'bearer',
      refreshTokenExpiresIn: 15897600,
      fields: {},
    })
  })

  it('keeps every other member in fields, never a token or a lifted member', () => {
    const body = { access_token: 'at', refresh_token: 'rt2', token_type: 'bot', expires_in: 43200, scope: 'chat:write', x_refresh_token_expires_in: '8726400', ok: true, team: { id: 'T1' }, instance_url: 'https://na1.example.com', id_token: 'x.y.z' }
    const parsed = parseTokenResponse(answer(JSON.stringify(body)))
    expect(parsed).toMatchObject({ tokenType: 'bot', refreshTokenExpiresIn: 8726400 })
    expect(parsed.fields).toEqual({ ok: true, team: { id: 'T1' }, instance_url: 'https://na1.example.com', id_token: 'x.y.z' })
  })

  it('reads a mistyped refresh token lifetime as absent', () => {
    expect(parseTokenResponse(answer('{"access_token":"at","refresh_token_expires_in":"soon","x_refresh_token_expires_in":-1}')).refreshTokenExpiresIn).toBeUndefined()
  })

  it('takes the expiry of a JWT access token without expires_in, and expires_in over it', () => {
    const exp = Math.floor(Date.now() / 1000) + 600
    const token = jwt({ sub: 'ü', exp })
    expect(parseTokenResponse(answer(JSON.stringify({ access_token: token }))).expiresIn).toBeGreaterThan(590)
    expect(parseTokenResponse(answer(JSON.stringify({ access_token: token, expires_in: 'nonsense' }))).expiresIn).toBeGreaterThan(590)
    expect(parseTokenResponse(answer(JSON.stringify({ access_token: token, expires_in: 60 }))).expiresIn).toBe(60)
  })

  it('accepts a DPoP token when the header pattern names DPoP', () => {
    expect(parseTokenResponse(answer('{"access_token":"at","token_type":"DPoP"}'), 'dpop').tokenType).toBe('DPoP')
  })
})

describe('checkTokenType', () => {
  it.each(['Bearer', 'bearer', 'bot', 'user', 'N_A', 'access_token'])('sends %s as the header pattern says', (type) => {
    expect(() => checkTokenType(type, 'Bearer', 200)).not.toThrow()
  })

  it.each([
    ['DPoP', 'Bearer'],
    ['dpop', ''],
    ['PoP', 'Bearer'],
    ['MAC', 'DPoP'],
  ])('refuses a %s token under a "%s" pattern, naming DPoP', (type, scheme) => {
    expect(() => checkTokenType(type, scheme, 200)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_TOKEN_TYPE', message: expect.stringContaining('DPoP') }))
  })

  it.each([
    ['DPoP', 'DPoP'],
    ['dpop', 'DPOP'],
    ['PoP', 'PoP'],
  ])('accepts a %s token under a "%s" pattern', (type, scheme) => {
    expect(() => checkTokenType(type, scheme, 200)).not.toThrow()
  })
})

describe('jwtLifetime', () => {
  const now = 1_700_000_000_000

  it('reads exp of an unsigned, unverified JWT, in seconds from now', () => {
    expect(jwtLifetime(jwt({ exp: now / 1000 + 90 }), now)).toBe(90)
  })

  it.each([
    ['an opaque token', 'at-123'],
    ['two parts', 'a.b'],
    ['a payload that is not base64url', 'a.b+c/.d'],
    ['a payload that is not JSON', `a.${Buffer.from('nope').toString('base64url')}.c`],
    ['a JSON null payload', `a.${Buffer.from('null').toString('base64url')}.c`],
    ['a string exp', jwt({ exp: String(now / 1000 + 90) })],
    ['an exp in the past', jwt({ exp: now / 1000 - 1 })],
    ['no exp', jwt({ sub: 'x' })],
  ])('gives undefined for %s', (_, token) => {
    expect(jwtLifetime(token, now)).toBeUndefined()
  })
})

describe('lifetimeSeconds', () => {
  it.each([
    [3600, 3600],
    ['3600', 3600],
    [' 90 ', 90],
    [3599.5, 3599.5],
    ['12.5', 12.5],
    [0, undefined],
    [-5, undefined],
    ['-5', undefined],
    ['abc', undefined],
    ['', undefined],
    [1e12, undefined],
    [Number.POSITIVE_INFINITY, undefined],
    [null, undefined],
    [true, undefined],
  ])('%j → %j', (input, expected) => {
    expect(lifetimeSeconds(input)).toBe(expected)
  })
})

describe('parseErrorResponse', () => {
  it('turns an RFC 6749 §5.2 body into an OAuthError', () => {
    const error = parseErrorResponse(answer('{"error":"invalid_grant","error_description":"expired","error_uri":"https://e/x"}', 400), [], 'auth.example')
    expect(error).toMatchObject({ name: 'OAuthError', code: 'OAUTH_ERROR', error: 'invalid_grant', errorDescription: 'expired', errorUri: 'https://e/x', status: 400 })
  })

  it('reads an error whose optional fields are null', () => {
    expect(parseErrorResponse(answer('{"error":"invalid_grant","error_description":null}', 400), [], 'auth.example')).toMatchObject({ code: 'OAUTH_ERROR', error: 'invalid_grant', errorDescription: undefined })
  })

  it('redacts secrets a server echoes back', () => {
    const error = parseErrorResponse(answer('{"error":"invalid_grant","error_description":"token rt-secret-1 is dead","error_uri":"https://e/?t=rt-secret-1"}', 400), ['rt-secret-1', undefined], 'auth.example')
    expect(JSON.stringify(error.toJSON()) + error.message).not.toContain('rt-secret-1')
    expect(error).toMatchObject({ errorDescription: 'token [redacted] is dead' })
  })

  it('gives HTTP_ERROR for a body that is no OAuth error', () => {
    expect(parseErrorResponse(answer('<h1>Bad gateway</h1>', 502, 'text/html'), [])).toMatchObject({ code: 'HTTP_ERROR', status: 502, name: 'TokenRequestError' })
    expect(parseErrorResponse(answer('{"message":"nope"}', 403), [])).toMatchObject({ code: 'HTTP_ERROR', status: 403 })
    expect(parseErrorResponse(answer('{"status":400,"message":"Invalid refresh token"}', 400), [])).toMatchObject({ code: 'HTTP_ERROR', status: 400 })
  })

  it.each([
    ['HubSpot', 400, '{"status":"BAD_REFRESH_TOKEN","message":"missing or unknown refresh token","correlationId":"c1"}', 'BAD_REFRESH_TOKEN', 'missing or unknown refresh token'],
    ['Strava', 400, '{"message":"Bad Request","errors":[{"resource":"RefreshToken","field":"refresh_token","code":"invalid"}]}', 'RefreshToken.invalid', 'Bad Request'],
    ['Strava, a bad client', 401, '{"message":"Authorization Error","errors":[{"resource":"Application","field":"client_id","code":"invalid"}]}', 'Application.invalid', 'Authorization Error'],
    ['Zoom', 400, '{"reason":"Invalid Token!","error":"invalid_request"}', 'invalid_request', 'Invalid Token!'],
    ['Fitbit', 400, '{"errors":[{"errorType":"invalid_grant","message":"Refresh token invalid"}],"success":false}', 'invalid_grant', 'Refresh token invalid'],
    ['a top-level code', 401, '{"code":"invalid_token","message":"expired"}', 'invalid_token', 'expired'],
  ])('reads the code and message of %s', (_, status, body, error, errorDescription) => {
    const parsed = parseErrorResponse(answer(body, status), [])
    expect(parsed).toMatchObject({ name: 'OAuthError', code: 'OAUTH_ERROR', status, error, errorDescription })
    expect(parsed.message).toContain(error)
  })

  it('reads an error in a 2xx answer, JSON or form-encoded, and nothing else there', () => {
    expect(parseErrorResponse(answer('error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect+or+expired.', 200, 'application/x-www-form-urlencoded'), [])).toMatchObject({
      name: 'OAuthError',
      status: 200,
      error: 'bad_refresh_token',
      errorDescription: 'The refresh token passed is incorrect or expired.',
    })
    expect(parseErrorResponse(answer('{"ok":false,"error":"invalid_refresh_token"}', 200), [])).toMatchObject({ status: 200, error: 'invalid_refresh_token' })
    // A success may say `status` or `message`: only `error` makes it an error.
    expect(parseErrorResponse(answer('{"access_token":"at","status":"active","message":"hi","errors":[{"code":"x"}]}', 200), [])).toBeUndefined()
    expect(parseErrorResponse(answer('<p>hi</p>', 200, 'text/html'), [])).toBeUndefined()
  })

  it('asks readError first, and falls back to the built-in rule when it returns undefined', () => {
    const twitch = answer('{"status":400,"message":"Invalid refresh token rt-secret-1"}', 400)
    const readError = (body: unknown, status: number) => (status === 400 && (body as { message?: string }).message?.startsWith('Invalid refresh token') ? { error: 'invalid_grant', errorDescription: (body as { message: string }).message } : undefined)
    expect(answerError(twitch, readBody(twitch), ['rt-secret-1'], readError, "auth.example")).toMatchObject({ error: 'invalid_grant', errorDescription: 'Invalid refresh token [redacted]' })
    const rfc = answer('{"error":"invalid_scope"}', 400)
    expect(answerError(rfc, readBody(rfc), [], readError, "auth.example")).toMatchObject({ error: 'invalid_scope' })
    // A hook that misbehaves cannot crash the reading.
    expect(answerError(rfc, readBody(rfc), [], () => ({ error: 42 as never }), "auth.example")).toMatchObject({ code: 'HTTP_ERROR' })
  })

  it('scrubs secrets from a provider code and message', () => {
    const error = parseErrorResponse(answer('{"status":"BAD_rt-secret-1","message":"unknown refresh token rt-secret-1"}', 400), ['rt-secret-1'])
    expect(JSON.stringify(error) + error!.message).not.toContain('rt-secret-1')
  })
})

describe('readLimitedText', () => {
  it('reads a body up to the limit', async () => {
    expect(await readLimitedText(new Response('héllo'), 6)).toBe('héllo')
  })

  it('refuses a declared length over the limit without reading', async () => {
    const response = new Response('x'.repeat(20), { headers: { 'content-length': '20' } })
    await expect(readLimitedText(response, 10)).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE' })
  })

  it('stops reading a stream once it passes the limit', async () => {
    let pulled = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++
        controller.enqueue(new Uint8Array(1024))
      },
    })
    await expect(readLimitedText(new Response(body), 4096)).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE' })
    expect(pulled).toBeLessThan(10)
  })
})
