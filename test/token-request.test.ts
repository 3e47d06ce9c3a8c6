import { Buffer } from 'node:buffer'
import { createServer } from 'node:net'
import { describe, expect, it, vi } from 'vitest'
import type { LocalServerOptions } from '../examples/local-server/server.mjs'
import { createTokenEndpoint, deadline, retryAfterMs, type TokenEndpointConfig } from '../src/token-request.js'
import { serve } from './support/loopback.js'

async function setup(config: Partial<TokenEndpointConfig> = {}, serverOptions: LocalServerOptions = {}) {
  const server = await serve(serverOptions)
  const tokenUrl = config.tokenUrl ?? server.tokenUrl
  const endpoint = createTokenEndpoint({
    tokenUrl,
    host: new URL(tokenUrl).host,
    clientId: 'demo-client',
    clientSecret: 'demo-secret',
    clientAuthentication: 'auto',
    grantType: 'refresh_token',
    scope: undefined,
    headers: {},
    body: {},
    fetch: (input, init) => fetch(input, init),
    timeoutMs: 2_000,
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 50 },
    scheme: 'Bearer',
    deadGrantErrors: [],
    readError: undefined,
    ...config,
  })
  /** Every refresh token handed to `rotated`, and when, among the refresh's own outcome. */
  const events: string[] = []
  const rotated = async (refreshToken: string) => {
    await Promise.resolve()
    events.push(`rotated ${refreshToken}`)
  }
  const refresh = (refreshToken = server.validRefreshToken) =>
    endpoint.refresh(refreshToken, [refreshToken], rotated).then(
      // Without a lease the endpoint always sends and resolves tokens.
      (tokens) => (events.push('returned'), tokens!),
      (error: unknown) => {
        events.push('threw')
        throw error
      },
    )
  return { server, endpoint, events, refresh }
}

/** A loopback URL whose port was just freed: connecting to it is refused. */
async function closedPortUrl() {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return `http://127.0.0.1:${port}/token`
}

describe('createTokenEndpoint', () => {
  it('retries 503, 429 and 408 up to the attempt limit', async () => {
    const { server, refresh } = await setup()
    server.fault({ status: 503 })
    server.fault({ status: 429 })
    expect((await refresh()).accessToken).toMatch(/./)
    expect(server.tokenHits).toBe(3)
    server.fault({ status: 408 })
    server.fault({ status: 503 })
    server.fault({ status: 503 })
    await expect(refresh()).rejects.toMatchObject({ code: 'HTTP_ERROR', status: 503 })
    expect(server.tokenHits).toBe(6)
  })

  it('honours Retry-After, and gives up when it exceeds the cap', async () => {
    const { server, refresh } = await setup()
    server.fault({ status: 429, retryAfter: '0' })
    await refresh()
    expect(server.tokenHits).toBe(2)
    server.fault({ status: 429, retryAfter: '3600' })
    await expect(refresh()).rejects.toMatchObject({ code: 'HTTP_ERROR', status: 429 })
    expect(server.tokenHits).toBe(3)
  })

  it('retries a possibly processed request once, then reports REFRESH_IN_DOUBT', async () => {
    const { server, refresh } = await setup()
    server.fault({ status: 500 })
    server.fault({ status: 502 })
    await expect(refresh()).rejects.toMatchObject({ code: 'REFRESH_IN_DOUBT' })
    expect(server.tokenHits).toBe(2)
  })

  it('reports invalid_grant after a lost response as REFRESH_IN_DOUBT', async () => {
    const { server, refresh } = await setup()
    server.fault({ reset: 'after' })
    await expect(refresh()).rejects.toMatchObject({ code: 'REFRESH_IN_DOUBT', cause: { code: 'OAUTH_ERROR', error: 'invalid_grant' } })
    expect(server.tokenHits).toBe(2)
  })

  // Under 'auto' an error answer to Basic is tried once with the body: see the 'auto' tests below.
  it('does not retry OAuth errors', async () => {
    const { server, refresh } = await setup({ clientAuthentication: 'basic' })
    server.fault({ error: 'invalid_scope' })
    await expect(refresh()).rejects.toMatchObject({ code: 'OAUTH_ERROR', error: 'invalid_scope', status: 400 })
    expect(server.tokenHits).toBe(1)
  })

  it('cuts a hanging endpoint with the timeout', async () => {
    const { server, refresh } = await setup({ timeoutMs: 100 })
    server.fault({ hang: true })
    server.fault({ hang: true })
    await expect(refresh()).rejects.toMatchObject({ code: 'REFRESH_IN_DOUBT', cause: { code: 'TIMEOUT' } })
    expect(server.tokenHits).toBe(2)
  })

  it('sends no ambient credentials and follows no redirect', async () => {
    const inits: RequestInit[] = []
    const { refresh } = await setup({ fetch: (input, init) => (inits.push(init!), fetch(input, init)) })
    await refresh()
    expect(inits[0]).toMatchObject({ method: 'POST', credentials: 'omit', redirect: 'manual' })
  })

  it('never follows a redirect of the token endpoint', async () => {
    const { server } = await setup()
    const target = `${server.origin}/redirect?to=${encodeURIComponent(server.tokenUrl)}&status=307`
    const { refresh } = await setup({ tokenUrl: target })
    await expect(refresh(server.validRefreshToken)).rejects.toMatchObject({ code: 'UNEXPECTED_REDIRECT', status: 307 })
    expect(server.tokenHits).toBe(0)
  })

  it.each([
    ['a refused connection (a closed port)', closedPortUrl, /^Token request to 127\.0\.0\.1:\d+ failed: ECONNREFUSED$/],
    ["a port fetch blocks (the Fetch standard's bad ports)", async () => 'http://127.0.0.1:6000/token', /^Token request to 127\.0\.0\.1:6000 failed: bad port$/],
    ['a host that resolves nowhere', async () => 'https://oauth-refresh.invalid/token', /^Token request to oauth-refresh\.invalid failed: (ENOTFOUND|EAI_AGAIN)$/],
  ])('reports %s as NETWORK_ERROR naming the host and the reason, retried as unsent', async (_, url, message) => {
    let calls = 0
    const { refresh } = await setup({ tokenUrl: await url(), fetch: (input, init) => (calls++, fetch(input, init)) })
    const error = await refresh().catch((error: unknown) => error)
    expect(error).toMatchObject({ name: 'TokenRequestError', code: 'NETWORK_ERROR', message: expect.stringMatching(message) })
    // Never sent, so the refresh token is unspent: every attempt is used, none is left in doubt.
    expect(calls).toBe(3)
  })

  it('names a TLS failure in NETWORK_ERROR (kept in doubt: TLS errors also come after sending)', async () => {
    const server = await serve()
    const { refresh } = await setup({ tokenUrl: server.tokenUrl.replace('http:', 'https:') })
    await expect(refresh()).rejects.toMatchObject({
      code: 'REFRESH_IN_DOUBT',
      cause: { code: 'NETWORK_ERROR', message: `Token request to ${new URL(server.tokenUrl).host} failed: ERR_SSL_WRONG_VERSION_NUMBER` },
    })
    expect(server.tokenHits).toBe(0)
  })
})

/** An unsigned JWT with this payload. */
const jwt = (payload: object) => ['{"alg":"none"}', JSON.stringify(payload)].map((part) => Buffer.from(part).toString('base64url')).join('.') + '.sig'

const GITHUB_DEAD = { status: 200, contentType: 'application/x-www-form-urlencoded; charset=utf-8', body: 'error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect+or+expired.' }
const SLACK_DEAD = { status: 200, body: '{"ok":false,"error":"invalid_refresh_token"}' }
const HUBSPOT_DEAD = { status: 400, body: '{"status":"BAD_REFRESH_TOKEN","message":"missing or unknown refresh token","correlationId":"c1"}' }
const STRAVA_DEAD = { status: 400, body: '{"message":"Bad Request","errors":[{"resource":"RefreshToken","field":"refresh_token","code":"invalid"}]}' }

describe('a rotated refresh token', () => {
  it.each([
    ['a DPoP token under a Bearer pattern', { tokenType: 'DPoP' }, 'UNSUPPORTED_TOKEN_TYPE'],
    ['a MAC token', { tokenType: 'mac' }, 'UNSUPPORTED_TOKEN_TYPE'],
    ['no access_token', { omitAccessToken: true }, 'INVALID_RESPONSE'],
    ['an empty access_token', { extra: { access_token: '' } }, 'INVALID_RESPONSE'],
    ['a numeric access_token', { extra: { access_token: 42 } }, 'INVALID_RESPONSE'],
    ['an error member beside the tokens', { extra: { error: 'server_error' } }, 'OAUTH_ERROR'],
    ['Slack\'s ok: false beside the tokens', { extra: { ok: false, error: 'invalid_refresh_token' } }, 'OAUTH_ERROR'],
    ['a form-encoded answer without access_token', { form: true, omitAccessToken: true }, 'INVALID_RESPONSE'],
  ])('is handed over, and awaited, before %s is refused', async (_, fault, code) => {
    const { server, events, refresh } = await setup()
    server.fault(fault)
    const old = server.validRefreshToken
    await expect(refresh()).rejects.toMatchObject({ code })
    expect(server.validRefreshToken).not.toBe(old)
    expect(events).toEqual([`rotated ${server.validRefreshToken}`, 'threw'])
    // Never retried with the spent token, not even by the 'auto' fallback.
    expect(server.tokenRequests).toHaveLength(1)
  })

  it('is handed over before a good answer returns, and an empty one is not', async () => {
    const { server, events, refresh } = await setup()
    await refresh()
    expect(events).toEqual([`rotated ${server.validRefreshToken}`, 'returned'])
    server.fault({ rotate: false, extra: { refresh_token: '' } })
    await refresh()
    expect(events.slice(2)).toEqual(['returned'])
  })

  it('waits for rotated: its failure is the refresh\'s failure, never a retry with the spent token', async () => {
    const { server, endpoint } = await setup()
    const failed = new Error('disk full')
    await expect(endpoint.refresh(server.validRefreshToken, [], async () => Promise.reject(failed))).rejects.toBe(failed)
    expect(server.tokenRequests).toHaveLength(1)
  })
})

describe('what a provider answers', () => {
  it("uses Slack's bot and user tokens and keeps the rest of its answer", async () => {
    const { server, refresh } = await setup()
    server.fault({ tokenType: 'bot', extra: { ok: true, team: { id: 'T1', name: 'Acme' }, bot_user_id: 'U1' } })
    expect(await refresh()).toMatchObject({ tokenType: 'bot', fields: { ok: true, team: { id: 'T1', name: 'Acme' }, bot_user_id: 'U1' } })
    server.fault({ tokenType: 'user' })
    expect((await refresh()).tokenType).toBe('user')
  })

  it('uses a DPoP token when the header pattern names DPoP', async () => {
    const { server, refresh } = await setup({ scheme: 'DPoP' })
    server.fault({ tokenType: 'DPoP' })
    expect((await refresh()).tokenType).toBe('DPoP')
  })

  it("reads GitHub's form-encoded answer with the refresh token's lifetime", async () => {
    const { server, refresh } = await setup({}, { expiresIn: 28800 })
    server.fault({ form: true, tokenType: 'bearer', extra: { refresh_token_expires_in: 15897600, scope: '' } })
    const tokens = await refresh()
    expect(tokens).toMatchObject({ tokenType: 'bearer', expiresIn: 28800, refreshTokenExpiresIn: 15897600, scope: undefined, fields: {} })
    expect(tokens.refreshToken).toBe(server.validRefreshToken)
  })

  it("keeps Salesforce's instance_url and Intuit's x_refresh_token_expires_in, never a token in fields", async () => {
    const { server, refresh } = await setup()
    server.fault({ extra: { instance_url: 'https://na1.salesforce.com', id_token: 'h.p.s', x_refresh_token_expires_in: 8726400 } })
    const tokens = await refresh()
    expect(tokens).toMatchObject({ refreshTokenExpiresIn: 8726400, fields: { instance_url: 'https://na1.salesforce.com', id_token: 'h.p.s' } })
    expect(JSON.stringify(tokens.fields)).not.toContain(server.validRefreshToken)
    expect(JSON.stringify(tokens.fields)).not.toContain(tokens.accessToken)
  })

  it('takes the expiry of a JWT access token without expires_in; expires_in wins when sent', async () => {
    const { server, refresh } = await setup({}, { expiresIn: null })
    const exp = Math.floor(Date.now() / 1000) + 1800
    server.fault({ extra: { access_token: jwt({ sub: 'user', exp }) } })
    expect((await refresh()).expiresIn).toBeGreaterThan(1790)
    server.fault({ expiresIn: 60, extra: { access_token: jwt({ exp }) } })
    expect((await refresh()).expiresIn).toBe(60)
  })
})

describe('a dead grant, under any name', () => {
  it.each([
    ['GitHub, HTTP 200 form-encoded', GITHUB_DEAD, 200, 'bad_refresh_token'],
    ['Slack, ok: false with HTTP 200', SLACK_DEAD, 200, 'invalid_refresh_token'],
    ['HubSpot', HUBSPOT_DEAD, 400, 'BAD_REFRESH_TOKEN'],
    ['Strava', STRAVA_DEAD, 400, 'RefreshToken.invalid'],
    ['RFC 6749', undefined, 400, 'invalid_grant'],
  ])('ends on %s, with the code readable and no fallback to the body', async (_, deadGrantAnswer, status, error) => {
    const { server, endpoint, refresh } = await setup({}, { deadGrantAnswer })
    const refused = await refresh('rt-unknown').catch((error: unknown) => error)
    expect(refused).toMatchObject({ name: 'OAuthError', code: 'OAUTH_ERROR', status, error, message: expect.stringContaining(error) })
    expect(endpoint.endsGrant(refused)).toBe(true)
    expect(server.tokenRequests).toHaveLength(1)
  })

  it('ends on a code added by deadGrantErrors, in any case, and not on one left out', async () => {
    const zoho = { status: 200, body: '{"error":"invalid_code"}' }
    const { endpoint, refresh } = await setup({ deadGrantErrors: ['INVALID_CODE'] }, { deadGrantAnswer: zoho })
    expect(endpoint.endsGrant(await refresh('rt-unknown').catch((error: unknown) => error))).toBe(true)
    const plain = await setup({}, { deadGrantAnswer: zoho })
    const refused = await plain.refresh('rt-unknown').catch((error: unknown) => error)
    expect(refused).toMatchObject({ error: 'invalid_code' })
    expect(plain.endpoint.endsGrant(refused)).toBe(false)
    expect(plain.endpoint.endsGrant(new Error('invalid_grant'))).toBe(false)
  })

  it("reads a provider the rule misreads through readError (Twitch's message-only body)", async () => {
    const twitch = { status: 400, body: '{"status":400,"message":"Invalid refresh token"}' }
    const readError = (body: unknown) => (Object(body).message === 'Invalid refresh token' ? { error: 'invalid_grant', errorDescription: 'Invalid refresh token' } : undefined)
    const plain = await setup({ clientAuthentication: 'body' }, { deadGrantAnswer: twitch })
    await expect(plain.refresh('rt-unknown')).rejects.toMatchObject({ code: 'HTTP_ERROR', status: 400 })
    const { endpoint, refresh } = await setup({ clientAuthentication: 'body', readError }, { deadGrantAnswer: twitch })
    expect(endpoint.endsGrant(await refresh('rt-unknown').catch((error: unknown) => error))).toBe(true)
  })

  it('scrubs a refresh token a provider echoes in its own error shape', async () => {
    const { refresh } = await setup({}, { deadGrantAnswer: { status: 400, body: '{"status":"BAD_REFRESH_TOKEN","message":"unknown refresh token rt-unknown"}' } })
    const refused = (await refresh('rt-unknown').catch((error: unknown) => error)) as Error
    expect(refused).toMatchObject({ errorDescription: 'unknown refresh token [redacted]' })
    expect(JSON.stringify(refused) + refused.message).not.toContain('rt-unknown')
  })

  it.each([
    ['GitHub', GITHUB_DEAD, 'bad_refresh_token'],
    ['HubSpot', HUBSPOT_DEAD, 'BAD_REFRESH_TOKEN'],
  ])('after a lost answer, reports a %s dead grant as REFRESH_IN_DOUBT', async (_, deadGrantAnswer, error) => {
    const { server, refresh } = await setup({}, { deadGrantAnswer })
    server.fault({ reset: 'after' })
    await expect(refresh()).rejects.toMatchObject({ code: 'REFRESH_IN_DOUBT', cause: { code: 'OAUTH_ERROR', error } })
    expect(server.tokenHits).toBe(2)
  })
})

describe("'auto' client authentication", () => {
  it.each([
    ['a 400 of its own shape', { status: 400, body: '{"message":"Bad Request","errors":[{"resource":"Application","field":"client_id","code":"invalid"}]}' }],
    ['a 400 invalid_request', { status: 400, body: '{"error":"invalid_request","error_description":"client_id is missing"}' }],
    ['a 403 HTML page', { status: 403, contentType: 'text/html', body: '<h1>Forbidden</h1>' }],
    ['an error in an HTTP 200', { status: 200, body: '{"error":"incorrect_client_credentials"}' }],
  ])('tries the body once after Basic is refused with %s, remembers it, and spends no refresh token twice', async (_, basicRefusal) => {
    const { server, refresh } = await setup({}, { acceptClientAuth: 'body', basicRefusal, revokeOnReuse: true })
    const first = server.validRefreshToken
    await refresh()
    expect(server.tokenRequests.map((request) => [request.clientAuth, request.form.refresh_token])).toEqual([
      ['basic', first],
      ['body', first],
    ])
    // The server refused Basic before it looked at the grant: the token was spent once, by the body.
    expect(server.grantRevoked).toBe(false)
    await refresh()
    await refresh()
    expect(server.tokenRequests.slice(2).map((request) => request.clientAuth)).toEqual(['body', 'body'])
    expect(server.grantRevoked).toBe(false)
  })

  it('does not try the body after Basic is told the grant is dead', async () => {
    const { server, refresh } = await setup({}, { deadGrantAnswer: HUBSPOT_DEAD })
    await expect(refresh('rt-unknown')).rejects.toMatchObject({ error: 'BAD_REFRESH_TOKEN' })
    expect(server.tokenRequests.map((request) => request.clientAuth)).toEqual(['basic'])
  })

  it("reports Basic's refusal when the body is refused for its client authentication", async () => {
    const { server, refresh } = await setup({}, { acceptClientAuth: 'basic' })
    server.fault({ error: 'invalid_scope' })
    await expect(refresh()).rejects.toMatchObject({ error: 'invalid_scope', status: 400 })
    expect(server.tokenRequests.map((request) => request.clientAuth)).toEqual(['basic', 'body'])
  })

  it("reports the body's answer when it says the grant is dead", async () => {
    const { server, endpoint, refresh } = await setup({}, { acceptClientAuth: 'body', basicRefusal: { status: 400, body: '{"error":"invalid_request"}' } })
    const refused = await refresh('rt-unknown').catch((error: unknown) => error)
    expect(refused).toMatchObject({ error: 'invalid_grant' })
    expect(endpoint.endsGrant(refused)).toBe(true)
    expect(server.tokenRequests.map((request) => request.clientAuth)).toEqual(['basic', 'body'])
  })

  it("never leaves 'basic' or 'body' for the other method", async () => {
    const basicRefusal = { status: 400, body: '{"error":"invalid_request"}' }
    const basic = await setup({ clientAuthentication: 'basic' }, { acceptClientAuth: 'body', basicRefusal })
    await expect(basic.refresh()).rejects.toMatchObject({ error: 'invalid_request' })
    expect(basic.server.tokenRequests.map((request) => request.clientAuth)).toEqual(['basic'])
    const body = await setup({ clientAuthentication: 'body' }, { acceptClientAuth: 'basic' })
    await expect(body.refresh()).rejects.toMatchObject({ error: 'invalid_client' })
    expect(body.server.tokenRequests.map((request) => request.clientAuth)).toEqual(['body'])
  })
})

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(retryAfterMs('5', now)).toBe(5_000)
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:07 GMT', now)).toBe(7_000)
    expect(retryAfterMs('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0)
    expect(retryAfterMs('soon', now)).toBeUndefined()
    expect(retryAfterMs(null, now)).toBeUndefined()
  })
})

describe('deadline', () => {
  it('expires one timer turn after its time, so that I/O read in between can stop it first', () => {
    vi.useFakeTimers()
    try {
      const expired = vi.fn()
      deadline(100, expired)
      vi.advanceTimersToNextTimer()
      expect(expired, 'not in the turn its time came').not.toHaveBeenCalled()
      vi.advanceTimersToNextTimer()
      expect(expired).toHaveBeenCalledOnce()
      const stopped = vi.fn()
      const stop = deadline(100, stopped)
      vi.advanceTimersToNextTimer()
      stop()
      vi.runAllTimers()
      expect(stopped, 'stopped in the extra turn').not.toHaveBeenCalled()
    } finally {
      vi.useRealTimers()
    }
  })
})
