import { describe, expect, it } from 'vitest'
import { lifetimeSeconds, parseErrorResponse, parseTokenResponse, readLimitedText } from '../src/token-response.js'

const answer = (text: string, status = 200, type = 'application/json') => ({ status, headers: new Headers({ 'content-type': type }), text })

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
    expect(parseTokenResponse(answer(JSON.stringify(body)))).toEqual({ tokenType: expect.any(String), fields: {}, accessToken: 'at', refreshToken: 'rt2', expiresIn: 60, scope: 'a b' })
  })

  it('accepts token_type in any case, and its absence', () => {
    expect(parseTokenResponse(answer('{"access_token":"at","token_type":"bEaReR"}')).accessToken).toBe('at')
    expect(parseTokenResponse(answer('{"access_token":"at"}'))).toEqual({ tokenType: expect.any(String), fields: {}, accessToken: 'at' })
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
  ])('refuses %s', (_, input, code) => {
    expect(codeOf(() => parseTokenResponse(input))).toBe(code)
  })

  it('reads null or mistyped optional fields as absent, so a rotated refresh token is not thrown away', () => {
    expect(parseTokenResponse(answer('{"access_token":"at","refresh_token":"rt2","scope":null,"token_type":null}'))).toEqual({ tokenType: expect.any(String), fields: {}, accessToken: 'at', refreshToken: 'rt2' })
    expect(parseTokenResponse(answer('{"access_token":"at","refresh_token":null,"scope":["a"]}'))).toEqual({ tokenType: expect.any(String), fields: {}, accessToken: 'at' })
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
    expect(parseErrorResponse(answer('<h1>Bad gateway</h1>', 502, 'text/html'), [], 'auth.example')).toMatchObject({ code: 'HTTP_ERROR', status: 502, name: 'TokenRequestError', message: 'Token endpoint auth.example answered 502' })
    expect(parseErrorResponse(answer('{"message":"nope"}', 403), [], 'auth.example')).toMatchObject({ code: 'HTTP_ERROR', status: 403 })
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
