import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import type { LocalServerOptions } from '../examples/local-server/server.mjs'
import { createTokenEndpoint, retryAfterMs, type TokenEndpointConfig } from '../src/token-request.js'
import { serve } from './support/loopback.js'

async function setup(config: Partial<TokenEndpointConfig> = {}, serverOptions: LocalServerOptions = {}) {
  const server = await serve(serverOptions)
  const endpoint = createTokenEndpoint({
    tokenUrl: server.tokenUrl,
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
    ...config,
  })
  return { server, refresh: async () => (await endpoint.refresh(server.validRefreshToken, []))! }
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

  it('does not retry OAuth errors', async () => {
    const { server, refresh } = await setup()
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
    const endpoint = createTokenEndpoint({ tokenUrl: target, clientId: 'demo-client', clientSecret: 'demo-secret', clientAuthentication: 'auto', grantType: 'refresh_token', scope: undefined, headers: {}, body: {}, fetch, timeoutMs: 1_000, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } })
    await expect(endpoint.refresh(server.validRefreshToken, [])).rejects.toMatchObject({ code: 'UNEXPECTED_REDIRECT', status: 307 })
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
