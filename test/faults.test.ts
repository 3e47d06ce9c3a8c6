import { inspect } from 'node:util'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createRefreshClient,
  memoryStorage,
  OAuthError,
  OAuthRefreshError,
  type RefreshClientOptions,
  type StoredTokenSet,
  type TokenStorage,
} from '../src/index.js'
import { startLocalServer, type Fault, type LocalServer, type LocalServerOptions } from '../examples/local-server/server.mjs'
import { demoClient, serve } from './support/loopback.js'

const KEY = 'k'
afterEach(() => {
  vi.useRealTimers()
})

function clientFor(server: LocalServer, options: Partial<RefreshClientOptions> = {}) {
  const storage = options.storage ?? memoryStorage()
  const client = createRefreshClient(demoClient(server, { storageKey: KEY, ...options, storage }))
  return { client, storage }
}

/** A client that already holds a valid grant; `hits()` counts token requests since then. */
async function primed(serverOptions?: LocalServerOptions, options?: Partial<RefreshClientOptions>) {
  const server = await serve(serverOptions)
  const { client, storage } = clientFor(server, options)
  const token = await client.getAccessToken()
  const before = await storage.get(KEY)
  const base = server.tokenHits
  return { server, client, storage, token, before, hits: () => server.tokenHits - base }
}

/** Resolves the rejection of `promise`, asserting it is an OAuthRefreshError with `code`. */
async function failure(promise: Promise<unknown>, code: string): Promise<OAuthRefreshError> {
  const error = await promise.then(
    () => {
      throw new Error(`expected a ${code} rejection, got a value`)
    },
    (reason: unknown) => reason,
  )
  expect(error).toBeInstanceOf(OAuthRefreshError)
  expect((error as OAuthRefreshError).code).toBe(code)
  return error as OAuthRefreshError
}

const refreshWith = async (faults: Fault[], serverOptions?: LocalServerOptions, options?: Partial<RefreshClientOptions>) => {
  const setup = await primed(serverOptions, options)
  for (const fault of faults) setup.server.fault(fault)
  return { ...setup, result: setup.client.getAccessToken({ forceRefresh: true }) }
}

const hostOf = (server: LocalServer) => new URL(server.tokenUrl).host
const kept = 'the refresh token is kept, since the server may or may not have rotated it'

async function expectRefreshed(setup: Awaited<ReturnType<typeof refreshWith>>, hits: number) {
  const token = await setup.result
  expect(token).not.toBe(setup.token)
  expect(setup.hits()).toBe(hits)
  expect(await setup.storage.get(KEY)).toMatchObject({ accessToken: token, refreshToken: setup.server.validRefreshToken })
}

describe('transient faults the server did not process: bounded retries', () => {
  it.each([503, 429, 408])('retries a %i and stores the grant it then gets', async (status) => {
    await expectRefreshed(await refreshWith([{ status }, { status }]), 3)
  })

  it('gives up after retry.attempts with HTTP_ERROR and its status, keeping the grant', async () => {
    const setup = await refreshWith(Array(3).fill({ status: 503 }))
    const error = await failure(setup.result, 'HTTP_ERROR')
    expect(error.status).toBe(503)
    expect(error.message).toBe(`Token endpoint ${hostOf(setup.server)} answered 503`)
    expect(setup.hits()).toBe(3)
    expect(await setup.storage.get(KEY)).toEqual(setup.before)
    await expectRefreshed({ ...setup, result: setup.client.getAccessToken({ forceRefresh: true }) }, 4)
  })

  it('makes exactly retry.attempts requests', async () => {
    const setup = await refreshWith([{ status: 429 }], undefined, { retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 50 } })
    await failure(setup.result, 'HTTP_ERROR')
    expect(setup.hits()).toBe(1)
  })

  it('honours a Retry-After in seconds or as an HTTP date within the cap', async () => {
    const past = new Date(Date.now() - 60_000).toUTCString()
    await expectRefreshed(await refreshWith([{ status: 429, retryAfter: '0' }, { status: 503, retryAfter: past }]), 3)
  })

  it.each([
    ['seconds', '5'],
    ['an HTTP date', new Date(Date.now() + 3_600_000).toUTCString()],
  ])('throws at once when Retry-After in %s exceeds retry.maxDelayMs', async (_, retryAfter) => {
    const setup = await refreshWith([{ status: 503, retryAfter }])
    const error = await failure(setup.result, 'HTTP_ERROR')
    expect(error.status).toBe(503)
    expect(setup.hits()).toBe(1)
    expect(await setup.storage.get(KEY)).toEqual(setup.before)
  })

  it('retries a connection refused before anything was sent, then throws NETWORK_ERROR', async () => {
    const closed = await startLocalServer()
    await closed.close()
    const server = await serve()
    let broken = false
    let refusedCalls = 0
    const fetchVia: typeof fetch = (input, init) => {
      if (!broken || String(input) !== server.tokenUrl) return fetch(input, init)
      refusedCalls++
      return fetch(closed.tokenUrl, init)
    }
    const { client, storage } = clientFor(server, { fetch: fetchVia })
    await client.getAccessToken()
    const before = await storage.get(KEY)
    broken = true
    await failure(client.getAccessToken({ forceRefresh: true }), 'NETWORK_ERROR')
    expect(refusedCalls).toBe(3)
    expect(await storage.get(KEY)).toEqual(before)
  })
})

describe('faults after which the refresh may have been processed: in doubt', () => {
  it.each<[string, Fault]>([
    ['500', { status: 500 }],
    ['502', { status: 502 }],
    ['504', { status: 504 }],
    ['a connection reset', { reset: 'before' }],
  ])('retries once after a %s that did not rotate the token', async (_, fault) => {
    await expectRefreshed(await refreshWith([fault]), 2)
  })

  it.each<[string, Fault[], string]>([
    ['two 5xx', [{ status: 500 }, { status: 502 }], 'answered 500, then answered 502'],
    ['a reset, then a 504', [{ reset: 'before' }, { status: 504 }], 'answer lost (connection closed), then answered 504'],
    ['a 502, then 503s until the attempts run out', [{ status: 502 }, { status: 503 }, { status: 503 }], 'answered 502, then answered 503'],
  ])('throws REFRESH_IN_DOUBT after %s, saying what each answer was, and keeps the stored grant', async (_, faults, outcomes) => {
    const setup = await refreshWith(faults)
    const error = await failure(setup.result, 'REFRESH_IN_DOUBT')
    expect(error.message).toBe(`Token endpoint ${hostOf(setup.server)}: ${outcomes}; ${kept}`)
    expect(setup.hits()).toBe(faults.length)
    expect(await setup.storage.get(KEY)).toEqual(setup.before)
  })

  it('treats invalid_grant after a lost, processed answer as REFRESH_IN_DOUBT and keeps the grant', async () => {
    const setup = await refreshWith([{ reset: 'after' }])
    const error = await failure(setup.result, 'REFRESH_IN_DOUBT')
    expect(error.message).toBe(`Token endpoint ${hostOf(setup.server)}: answer lost (connection closed), then answered 400 invalid_grant; ${kept}`)
    expect(error.cause).toBeInstanceOf(OAuthRefreshError)
    expect(setup.hits()).toBe(2)
    expect(setup.server.tokenRequests.at(-1)?.form.refresh_token).toBe(setup.before?.refreshToken)
    expect(await setup.storage.get(KEY)).toEqual(setup.before)
  })

  it('cuts a hanging token endpoint with timeoutMs, retrying once', async () => {
    const setup = await refreshWith([{ hang: true }, { hang: true }], undefined, { timeoutMs: 100 })
    const error = await failure(setup.result, 'REFRESH_IN_DOUBT')
    expect((error.cause as OAuthRefreshError).code).toBe('TIMEOUT')
    expect(error.message).toBe(`Token endpoint ${hostOf(setup.server)}: answer lost (timeout), then answer lost (timeout); ${kept}`)
    expect(setup.hits()).toBe(2)
    expect(await setup.storage.get(KEY)).toEqual(setup.before)
    await expectRefreshed(await refreshWith([{ hang: true }], undefined, { timeoutMs: 100 }), 2)
  })

  it('rejects every concurrent caller with the same error, and the next call starts afresh', async () => {
    const server = await serve()
    const { client } = clientFor(server)
    server.fault({ status: 500 })
    server.fault({ status: 502 })
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => client.getAccessToken()))
    const reasons = new Set(results.map((result) => (result.status === 'rejected' ? result.reason : result.value)))
    expect(reasons.size).toBe(1)
    expect((([...reasons][0]) as OAuthRefreshError).code).toBe('REFRESH_IN_DOUBT')
    expect(server.tokenHits).toBe(2)
    await expect(client.getAccessToken()).resolves.toMatch(/^at-/)
    expect(server.tokenHits).toBe(3)
  })
})

describe('invalid_grant without doubt', () => {
  it.each<[string, (server: LocalServer) => void, number]>([
    ['an injected invalid_grant', (server) => server.fault({ error: 'invalid_grant' }), 1],
    ['a revoked refresh token', (server) => server.setRefreshToken('another-refresh-token'), 1],
    ['an invalid_grant after a 503', (server) => [{ status: 503 }, { error: 'invalid_grant' }].forEach(server.fault), 2],
  ])('after %s: deletes the grant, throws OAuthError, never retries it', async (_, provoke, hits) => {
    const setup = await primed()
    provoke(setup.server)
    const error = await failure(setup.client.getAccessToken({ forceRefresh: true }), 'OAUTH_ERROR')
    expect(error).toBeInstanceOf(OAuthError)
    expect([(error as OAuthError).error, error.status]).toEqual(['invalid_grant', 400])
    expect(setup.hits()).toBe(hits)
    expect(await setup.storage.get(KEY)).toBeUndefined()
  })
})

describe('an error status the server did not send as an OAuth error', () => {
  it('names the token endpoint host in a 404, sends it once and keeps the grant', async () => {
    const setup = await refreshWith([{ status: 404 }])
    const error = await failure(setup.result, 'HTTP_ERROR')
    expect(error.message).toBe(`Token endpoint ${hostOf(setup.server)} answered 404`)
    expect(setup.hits()).toBe(1)
    expect(await setup.storage.get(KEY)).toEqual(setup.before)
  })
})

describe('token responses the SDK cannot use: typed error, one request, nothing stored', () => {
  it.each<[string, string, Fault]>([
    ['an HTML page', 'HTML_RESPONSE', { html: true }],
    ['HTML labelled as JSON', 'HTML_RESPONSE', { body: '<html><body>Sign in</body></html>' }],
    ['truncated JSON', 'INVALID_RESPONSE', { truncatedJson: true }],
    ['an empty body', 'INVALID_RESPONSE', { emptyBody: true }],
    ['a JSON array', 'INVALID_RESPONSE', { body: '[]' }],
    ['JSON null', 'INVALID_RESPONSE', { body: 'null' }],
    ['a JSON string', 'INVALID_RESPONSE', { body: '"at-123"' }],
    ['a numeric access_token', 'INVALID_RESPONSE', { body: '{"access_token":123,"token_type":"Bearer"}' }],
    ['no access_token', 'INVALID_RESPONSE', { omitAccessToken: true, rotate: false }],
    ['token_type DPoP', 'UNSUPPORTED_TOKEN_TYPE', { tokenType: 'DPoP', rotate: false }],
    ['a streamed body over 1 MiB', 'RESPONSE_TOO_LARGE', { sizeBytes: (1 << 20) + 1 }],
    ['a body over 1 MiB with Content-Length', 'RESPONSE_TOO_LARGE', { body: `{"access_token":"at-x","padding":"${'x'.repeat(1 << 20)}"}` }],
  ])('%s → %s', async (_, code, fault) => {
    const setup = await refreshWith([fault])
    await failure(setup.result, code)
    expect(setup.hits()).toBe(1)
    expect(await setup.storage.get(KEY)).toEqual(setup.before)
  })

})

describe('rotated, but otherwise unusable: the new refresh token is stored, the spent one never sent again', () => {
  it.each<[string, string, Fault]>([
    ['no access_token', 'INVALID_RESPONSE', { omitAccessToken: true }],
    ['an empty access_token', 'INVALID_RESPONSE', { extra: { access_token: '' } }],
    ['a numeric access_token', 'INVALID_RESPONSE', { extra: { access_token: 42 } }],
    ['token_type mac', 'UNSUPPORTED_TOKEN_TYPE', { tokenType: 'mac' }],
    ['token_type DPoP', 'UNSUPPORTED_TOKEN_TYPE', { tokenType: 'DPoP' }],
    ['an error member beside the tokens', 'OAUTH_ERROR', { extra: { error: 'temporarily_unavailable' } }],
    ['junk members everywhere', 'INVALID_RESPONSE', { extra: { access_token: null, expires_in: 'soon', scope: 7, token_type: null, id_token: { nested: [1] } } }],
  ])('%s → %s', async (_, code, fault) => {
    const setup = await refreshWith([fault], { revokeOnReuse: true })
    await failure(setup.result, code)
    const rotated = setup.server.validRefreshToken
    expect(rotated).not.toBe(setup.before!.refreshToken)
    const stored = await setup.storage.get(KEY)
    expect(stored).toMatchObject({ refreshToken: rotated })
    expect(stored).not.toHaveProperty('accessToken')
    expect(setup.server.issuedTokens).toContain(await setup.client.getAccessToken())
    expect(setup.server.tokenRequests.at(-1)!.form.refresh_token).toBe(rotated)
    expect(setup.server.grantRevoked).toBe(false)
  })

  it('stops reading a huge body once it passes 1 MiB', async () => {
    const setup = await refreshWith([{ sizeBytes: 256 * 1024 * 1024 }])
    await failure(setup.result, 'RESPONSE_TOO_LARGE')
    const [large] = setup.server.largeBodies
    await large.done
    expect(large.sent).toBeLessThan(large.size)
  })

  it.each([
    ['bearer', {}],
    ['BEARER', {}],
    ['exactly 1 MiB', { sizeBytes: 1 << 20 }],
  ])('accepts %s', async (tokenType, fault) => {
    const setup = await refreshWith([{ tokenType, ...fault }])
    await expect(setup.result).resolves.toMatch(/^at-/)
  })
})

describe('expires_in', () => {
  it.each<[unknown, number]>([
    [3600, 3600],
    ['3600', 3600],
    [3599.5, 3599.5],
  ])('%j sets the expiry', async (expiresIn, seconds) => {
    const setup = await refreshWith([{ expiresIn }])
    const from = Date.now()
    const token = await setup.result
    const stored = (await setup.storage.get(KEY)) as StoredTokenSet
    expect(stored.accessToken).toBe(token)
    expect(stored.expiresAt).toBeGreaterThanOrEqual(from - 1000 + seconds * 1000)
    expect(stored.expiresAt).toBeLessThanOrEqual(Date.now() + seconds * 1000)
  })

  it.each([0, -5, 'abc', '', 1e12, true, null, { s: 1 }])('ignores %j: the token is used until a 401', async (expiresIn) => {
    const setup = await refreshWith([{ expiresIn }])
    const token = await setup.result
    expect((await setup.storage.get(KEY))?.expiresAt).toBeUndefined()
    expect(await setup.client.getAccessToken()).toBe(token)
    const hits = setup.hits()
    setup.server.revokeAccessTokens()
    expect((await setup.client.fetch(`${setup.server.apiUrl}/x`)).status).toBe(200)
    expect(setup.hits()).toBe(hits + 1)
  })

  it('refreshes at expiry minus the leeway, the leeway capped at half the lifetime', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const setup = await primed({ expiresIn: 20 })
    vi.setSystemTime(Date.now() + 9_000)
    expect(await setup.client.getAccessToken()).toBe(setup.token)
    expect(setup.hits()).toBe(0)
    vi.setSystemTime(Date.now() + 2_000)
    expect(await setup.client.getAccessToken()).not.toBe(setup.token)
    expect(setup.hits()).toBe(1)
  })
})

describe('secret hygiene', () => {
  const CLIENT_SECRET = 'cs-very-secret-3f9d'
  const REFRESH_TOKEN = 'rt-initial-secret-7c21'

  function secretsOf(server: LocalServer, extra: string[] = []) {
    const sent = server.tokenRequests.map((request) => request.form.refresh_token).filter(Boolean)
    return [CLIENT_SECRET, REFRESH_TOKEN, ...server.issuedTokens, ...sent, ...extra]
  }

  function causes(error: unknown): unknown[] {
    const chain: unknown[] = []
    for (let e = error; e !== undefined && e !== null && !chain.includes(e); e = (e as { cause?: unknown }).cause) chain.push(e)
    return chain
  }

  function expectClean(subject: unknown, secrets: string[]) {
    const views = [inspect(subject, { depth: 10 }), JSON.stringify(subject) ?? '']
    for (const e of causes(subject)) {
      if (e instanceof Error) views.push(e.message, e.stack ?? '', String(e))
      views.push(inspect(e, { depth: 10, showHidden: true }))
    }
    for (const secret of secrets) for (const view of views) expect(view).not.toContain(secret)
  }

  const hostile = (server: LocalServer) =>
    JSON.stringify({
      error: 'invalid_grant',
      error_description: `refresh token ${server.validRefreshToken} of client demo-client:${CLIENT_SECRET} is revoked`,
      error_uri: `https://as.example/errors?refresh_token=${server.validRefreshToken}`,
    })

  const scenarios: Array<[string, (server: LocalServer) => Fault[], Partial<RefreshClientOptions>?]> = [
    ['an invalid_grant echoing the refresh token and secret', (s) => [{ body: hostile(s), status: 400 }]],
    ['a 401 invalid_client echoing the secret', (s) => [{ body: hostile(s).replace('invalid_grant', 'invalid_client'), status: 401 }, { body: hostile(s).replace('invalid_grant', 'invalid_client'), status: 401 }]],
    ['a 503 over the Retry-After cap', () => [{ status: 503, retryAfter: '60' }]],
    ['a lost answer', () => [{ reset: 'after' }]],
    ['two timeouts', () => [{ hang: true }, { hang: true }], { timeoutMs: 100 }],
    ['HTML', () => [{ html: true }]],
    ['truncated JSON', () => [{ truncatedJson: true }]],
    ['token_type mac', () => [{ tokenType: 'mac' }]],
    ['a huge body', () => [{ sizeBytes: 4 << 20 }]],
    ['a redirect', () => [{ status: 307 }]],
  ]

  it.each(scenarios)('after %s, neither the error nor the client shows a secret', async (_, faults, options) => {
    const server = await serve({ clientSecret: CLIENT_SECRET, refreshToken: REFRESH_TOKEN })
    const { client } = clientFor(server, { clientSecret: CLIENT_SECRET, refreshToken: REFRESH_TOKEN, ...options })
    const token = await client.getAccessToken()
    faults(server).forEach(server.fault)
    const error = await client.getAccessToken({ forceRefresh: true }).then(
      () => expect.unreachable('the refresh should fail'),
      (reason: unknown) => reason,
    )
    expect(error).toBeInstanceOf(OAuthRefreshError)
    expectClean(error, secretsOf(server, [token]))
    expectClean(client, secretsOf(server, [token]))
  })

  it('shows no secret in a network error, an origin refusal, a storage error or a config error', async () => {
    const server = await serve({ clientSecret: CLIENT_SECRET, refreshToken: REFRESH_TOKEN })
    const closed = await startLocalServer()
    await closed.close()
    const base = { clientSecret: CLIENT_SECRET, refreshToken: REFRESH_TOKEN }
    const failingStorage: TokenStorage = {
      get: () => Promise.reject(new Error('disk unavailable')),
      set: () => Promise.reject(new Error('disk unavailable')),
      delete: () => Promise.reject(new Error('disk unavailable')),
    }
    const storageErrors: unknown[] = []
    const errors = await Promise.all([
      clientFor(closed, base).client.getAccessToken().catch((e: unknown) => e),
      clientFor(server, { ...base, allowedOrigins: ['https://api.example'] }).client.fetch(`${server.apiUrl}/x`).catch((e: unknown) => e),
      clientFor(server, { ...base, storage: failingStorage, onStorageError: (e) => storageErrors.push(e) }).client.getAccessToken().catch((e: unknown) => e),
      Promise.resolve().then(() => clientFor(server, { ...base, tokenUrl: `http://as.example/token?secret=${CLIENT_SECRET}` })).catch((e: unknown) => e),
      Promise.resolve().then(() => clientFor(server, { ...base, clientAuthentication: REFRESH_TOKEN as 'auto' })).catch((e: unknown) => e),
    ])
    expect(errors.map((e) => (e as OAuthRefreshError).code)).toEqual([
      'NETWORK_ERROR',
      'ORIGIN_NOT_ALLOWED',
      'STORAGE_ERROR',
      'CONFIG_INVALID',
      'CONFIG_INVALID',
    ])
    for (const error of [...errors, ...storageErrors]) expectClean(error, secretsOf(server))
  })
})

describe('where the access token may go', () => {
  const headerStyles: Array<[string, LocalServerOptions, Partial<RefreshClientOptions>]> = [
    ['Authorization', {}, {}],
    ['X-Api-Token', { apiHeader: 'x-api-token', apiPattern: '{{access_token}}' }, { authorizationHeader: { name: 'X-Api-Token', pattern: '{{access_token}}' } }],
  ]

  it('refuses an origin outside allowedOrigins and sends nothing', async () => {
    const a = await serve()
    const b = await serve()
    const { client } = clientFor(a, { allowedOrigins: [a.origin] })
    expect((await client.fetch(`${a.apiUrl}/x`)).status).toBe(200)
    await failure(client.fetch(`${b.apiUrl}/x`), 'ORIGIN_NOT_ALLOWED')
    await failure(client.fetch(new Request(`${b.apiUrl}/x`, { method: 'POST', body: 'x' })), 'ORIGIN_NOT_ALLOWED')
    expect(b.apiRequests).toBe(0)
  })

  describe.each(headerStyles)('with the %s header', (_, serverOptions, options) => {
    it.each([301, 302, 303, 307, 308])('never carries the token across origins on a %i redirect', async (status) => {
      const a = await serve(serverOptions)
      const b = await serve(serverOptions)
      const { client } = clientFor(a, options)
      const token = await client.getAccessToken()
      const target = `${b.apiUrl}/echo-headers`
      const res = await client.fetch(`${a.origin}/redirect?status=${status}&to=${encodeURIComponent(target)}`).catch((e: unknown) => e)
      if (res instanceof Response) {
        expect(b.apiLog.length).toBeGreaterThan(0)
        expect(JSON.stringify(await res.json())).not.toContain(token)
      } else {
        expect((res as OAuthRefreshError).code).toBe('REDIRECT_BLOCKED')
      }
      const issued = [...a.issuedTokens, token]
      for (const entry of b.apiLog) for (const secret of issued) expect(JSON.stringify(entry.headers)).not.toContain(secret)
    })

    it('keeps the token on a same-origin redirect', async () => {
      const a = await serve(serverOptions)
      const { client } = clientFor(a, options)
      const res = await client.fetch(`${a.origin}/redirect?status=302&to=${encodeURIComponent('/api/moved')}`)
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({ ok: true, path: '/api/moved' })
    })
  })

  it('does not leak the token across origins even when the redirect target is allowed', async () => {
    const a = await serve()
    const b = await serve()
    const { client } = clientFor(a, { allowedOrigins: [a.origin, b.origin] })
    const token = await client.getAccessToken()
    const res = await client.fetch(`${a.origin}/redirect?to=${encodeURIComponent(`${b.apiUrl}/echo-headers`)}`).catch((e: unknown) => e)
    if (res instanceof Response) {
      expect(b.apiLog.length).toBeGreaterThan(0)
      expect(JSON.stringify(await res.json())).not.toContain(token)
    }
    for (const entry of b.apiLog) expect(JSON.stringify(entry.headers)).not.toContain(token)
  })
})
