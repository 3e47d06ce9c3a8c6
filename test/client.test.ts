import { inspect } from 'node:util'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { LocalServerOptions } from '../examples/local-server/server.mjs'
import { createRefreshClient, memoryStorage, OAuthError, type RefreshClientOptions, type StoredTokenSet, type TokenStorage } from '../src/index.js'
import { lockedStorage } from './support/locked-storage.js'
import { demoClient, serve } from './support/loopback.js'

afterEach(() => {
  vi.useRealTimers()
})

async function setup(serverOptions: LocalServerOptions = {}, options: Partial<RefreshClientOptions> = {}) {
  const server = await serve(serverOptions)
  const storage = options.storage ?? memoryStorage()
  const client = createRefreshClient(demoClient(server, { storage, storageKey: 'grant', ...options }))
  return { server, client, storage }
}

describe('getAccessToken', () => {
  it('refreshes once, then serves the cached token', async () => {
    const { server, client } = await setup()
    const token = await client.getAccessToken()
    expect(server.issuedTokens).toContain(token)
    expect(await client.getAccessToken()).toBe(token)
    expect(server.tokenRequests).toHaveLength(1)
  })

  it('sends an RFC 6749 §6 form with the configured grant type, scope, extra headers and data', async () => {
    const { server, client } = await setup(
      { grantType: 'urn:example:refresh' },
      { grantType: 'urn:example:refresh', scope: ['read', 'write'], tokenRequest: { headers: { 'x-tenant': 't1' }, body: { audience: 'api' } } },
    )
    await client.getAccessToken()
    const [request] = server.tokenRequests
    expect(request!.form).toEqual({ grant_type: 'urn:example:refresh', refresh_token: 'demo-refresh-token', scope: 'read write', audience: 'api' })
    expect(request!.headers).toMatchObject({ 'x-tenant': 't1', accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' })
  })

  it('omits scope when none is configured', async () => {
    const { server, client } = await setup()
    await client.getAccessToken()
    expect(server.tokenRequests[0]!.form).not.toHaveProperty('scope')
  })

  it('shares one token request among 100 concurrent callers, forced ones included', async () => {
    const { server, client } = await setup({ latencyMs: 30 })
    const tokens = await Promise.all(Array.from({ length: 100 }, (_, i) => client.getAccessToken({ forceRefresh: i % 2 === 0 })))
    expect(new Set(tokens).size).toBe(1)
    expect(server.tokenRequests).toHaveLength(1)
  })

  it('forceRefresh that joins a flight which only read storage still gets a new token', async () => {
    const storage = memoryStorage()
    const stored = { accessToken: 'stored-token', refreshToken: 'demo-refresh-token', obtainedAt: Date.now() - 1_000, grantId: 'x' }
    await storage.set('grant', stored)
    const { server, client } = await setup({}, { storage, refreshToken: undefined })
    const [plain, forced] = await Promise.all([client.getAccessToken(), client.getAccessToken({ forceRefresh: true })])
    expect(plain).toBe('stored-token')
    expect(forced).not.toBe('stored-token')
    expect(server.issuedTokens).toContain(forced)
    expect(server.tokenRequests).toHaveLength(1)
  })

  it('forceRefresh gets a new token even when the current one is valid', async () => {
    const { server, client } = await setup()
    const first = await client.getAccessToken()
    expect(await client.getAccessToken({ forceRefresh: true })).not.toBe(first)
    expect(server.tokenRequests).toHaveLength(2)
  })

  it('rejects every waiter of a failed refresh with the same error, then starts afresh', async () => {
    // 'basic': under 'auto' the error answer to Basic would be tried again with the body.
    const { server, client } = await setup({ latencyMs: 20 }, { clientAuthentication: 'basic' })
    server.fault({ error: 'invalid_scope' })
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => client.getAccessToken()))
    const reasons = new Set(results.map((result) => (result as PromiseRejectedResult).reason))
    expect(reasons.size).toBe(1)
    expect([...reasons][0]).toMatchObject({ code: 'OAUTH_ERROR', error: 'invalid_scope' })
    expect(server.tokenRequests).toHaveLength(1)
    expect(server.issuedTokens).toContain(await client.getAccessToken())
    expect(server.tokenRequests).toHaveLength(2)
  })

  it('lets a caller abort its wait without cancelling the shared refresh', async () => {
    const { server, client } = await setup({ latencyMs: 100 })
    const controller = new AbortController()
    const aborted = client.getAccessToken({ signal: controller.signal })
    const other = client.getAccessToken()
    controller.abort(new Error('caller gave up'))
    await expect(aborted).rejects.toThrow('caller gave up')
    expect(server.issuedTokens).toContain(await other)
    expect(server.tokenRequests).toHaveLength(1)
  })
})

describe('races', () => {
  it('an already aborted signal rejects at once and starts no refresh', async () => {
    const { server, client } = await setup()
    const reason = new Error('already gone')
    await expect(client.getAccessToken({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    expect(server.tokenHits).toBe(0)
  })

  it('clear() during the first storage read sticks', async () => {
    const base = memoryStorage()
    await base.set('grant', { accessToken: 'stored-token', refreshToken: 'demo-refresh-token', grantId: 'x' })
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const storage: TokenStorage = { ...base, get: async (key) => (await gate, base.get(key)) }
    const { client } = await setup({}, { storage, refreshToken: undefined })
    const pending = client.getAccessToken()
    await client.clear()
    release()
    await expect(pending).rejects.toMatchObject({ code: 'NO_GRANT' })
    await expect(client.getAccessToken()).rejects.toMatchObject({ code: 'NO_GRANT' })
    expect(await base.get('grant')).toBeUndefined()
  })

  it('clear() while a rotated grant is being stored keeps it out of memory and storage', async () => {
    const base = memoryStorage()
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    let writing!: () => void
    const writeStarted = new Promise<void>((resolve) => (writing = resolve))
    const storage: TokenStorage = { ...base, set: async (key, value) => (writing(), await gate, base.set(key, value)) }
    const { client } = await setup({}, { storage })
    const pending = client.getAccessToken()
    await writeStarted
    const clearing = client.clear()
    release()
    await clearing
    await expect(pending).rejects.toMatchObject({ code: 'NO_GRANT' })
    expect(await base.get('grant')).toBeUndefined()
    await expect(client.getAccessToken()).rejects.toMatchObject({ code: 'NO_GRANT' })
  })

  it('a storage that answers with an older grant never replaces a newer one in memory', async () => {
    const base = memoryStorage()
    const writes: StoredTokenSet[] = []
    // Eventually consistent storage: reads return the write before the last one.
    const storage: TokenStorage = { ...base, set: async (key, value) => (writes.push(value), base.set(key, writes.at(-2) ?? value)) }
    const { server, client } = await setup({}, { storage })
    for (let i = 0; i < 4; i++) await client.getAccessToken({ forceRefresh: true })
    expect(server.tokenRequests).toHaveLength(4)
    expect(server.tokenRequests.map((request) => request.form.refresh_token)).toEqual([
      'demo-refresh-token',
      writes[0]!.refreshToken,
      writes[1]!.refreshToken,
      writes[2]!.refreshToken,
    ])
  })

  it('after invalid_grant, a grant rotated meanwhile by another context is used, not deleted', async () => {
    const storage = memoryStorage()
    const server = await serve()
    const options = demoClient(server, { storage, storageKey: 'grant' })
    const other = createRefreshClient(options)
    let rotated: Promise<string> | undefined
    // The other context rotates the grant after this client read storage, before its request lands.
    const racing: typeof fetch = async (input, init) => {
      if (server.tokenRequests.length === 1) await (rotated ??= other.getAccessToken({ forceRefresh: true }))
      return fetch(input, init)
    }
    const client = createRefreshClient({ ...options, fetch: racing })
    await client.getAccessToken()
    const token = await client.getAccessToken({ forceRefresh: true })
    expect(token).toBe(await rotated)
    expect(server.tokenRequests).toHaveLength(3)
    expect(server.tokenRequests[2]!.form.refresh_token).toBe(server.tokenRequests[1]!.form.refresh_token)
    expect(await storage.get('grant')).toMatchObject({ accessToken: token, refreshToken: server.validRefreshToken })
  })

  it('a failing read after the first one throws STORAGE_ERROR and sends no token request: storage may hold a newer grant', async () => {
    const base = memoryStorage()
    let failing = false
    const storage: TokenStorage = { ...base, get: async (key) => (failing ? Promise.reject(new Error('kv 503')) : base.get(key)) }
    const { server, client } = await setup({}, { storage })
    const token = await client.getAccessToken()
    failing = true
    expect(await client.getAccessToken(), 'a fresh token needs no read').toBe(token)
    await expect(client.getAccessToken({ forceRefresh: true })).rejects.toMatchObject({ name: 'StorageError', code: 'STORAGE_ERROR' })
    expect(server.tokenRequests).toHaveLength(1)
    failing = false
    const rotated = (await base.get('grant'))!.refreshToken
    expect(server.issuedTokens).toContain(await client.getAccessToken({ forceRefresh: true }))
    expect(server.tokenRequests[1]!.form.refresh_token, 'the next call reads again and refreshes').toBe(rotated)
  })
})

describe('stale tokens', () => {
  it('a 401 that joins a refresh started for an older stale token gets a new token, not its own back', async () => {
    const server = await serve()
    const base = memoryStorage()
    const gates: Promise<void>[] = []
    const storage: TokenStorage = { ...base, get: async (key) => (await gates.shift(), base.get(key)) }
    const gate = () => {
      let open!: () => void
      gates.push(new Promise((resolve) => (open = resolve)))
      return open
    }
    // The token endpoint is the local server; the API answers each request when the test says.
    const answers: ((status: number) => void)[] = []
    const sent: string[] = []
    const routed: typeof fetch = (input, init) => {
      if (String(input) === server.tokenUrl) return fetch(input, init)
      sent.push(`${String(input)} ${new Headers(init?.headers).get('authorization')!}`)
      return new Promise((resolve) => answers.push((status) => resolve(new Response(null, { status }))))
    }
    // Waiters give up after 4 × 250 ms; the refresh they gave up on goes on.
    const options = { storage, storageKey: 'grant', fetch: routed, timeoutMs: 250, retry: { attempts: 1, maxDelayMs: 0 } }
    const client = createRefreshClient(demoClient(server, options))
    const older = await client.getAccessToken()
    const a = client.fetch('https://api.example/a')
    const openSlowRead = gate()
    const abandoned = client.getAccessToken({ forceRefresh: true })
    await new Promise((resolve) => setTimeout(resolve, 500))
    const b = client.fetch('https://api.example/b') // joins the slow refresh, and waits longer
    await expect(abandoned).rejects.toMatchObject({ code: 'TIMEOUT' })
    // A's 401 starts a refresh for the older token, whose storage read waits.
    const openRead = gate()
    answers[0]!(401)
    openSlowRead()
    await vi.waitFor(() => expect(answers).toHaveLength(2))
    const current = sent[1]!.split(' ')[2]!
    // B's 401 for the token the slow refresh got joins the refresh started for the older token.
    answers[1]!(401)
    openRead()
    await vi.waitFor(() => expect(answers).toHaveLength(4))
    answers[2]!(200)
    answers[3]!(200)
    await Promise.all([a, b])
    expect(sent.slice(0, 2)).toEqual([`https://api.example/a Bearer ${older}`, `https://api.example/b Bearer ${current}`])
    // Neither replay carries the token its own request was refused with.
    expect(sent.slice(2)).not.toContain(`https://api.example/a Bearer ${older}`)
    expect(sent.slice(2)).not.toContain(`https://api.example/b Bearer ${current}`)
  })
})

describe('more races', () => {
  it("runs each refresh under the storage's lock and reads storage again inside it: two holders, one token request", async () => {
    const base = memoryStorage()
    let queue = Promise.resolve()
    const keys: string[] = []
    // One lock over one storage shared by two clients, as two processes sharing a Deno KV file.
    const storage: TokenStorage = {
      ...base,
      lock(key, task) {
        keys.push(key)
        const run = queue.then(() => task())
        queue = run.then(() => undefined, () => undefined)
        return run
      },
    }
    const { server, client } = await setup({ revokeOnReuse: true }, { storage })
    const other = createRefreshClient(demoClient(server, { storage, storageKey: 'grant' }))
    const [token, sameToken] = await Promise.all([client.getAccessToken(), other.getAccessToken()])
    expect(sameToken).toBe(token)
    expect(server.tokenRequests).toHaveLength(1)
    expect(keys).toEqual(['grant', 'grant'])
    const next = await other.getAccessToken({ forceRefresh: true })
    expect(await client.getAccessToken({ forceRefresh: true })).not.toBe(next)
    expect(server.grantRevoked).toBe(false)
  })

  it('a forced call that joins a refresh waiting for the lock gets a new token, not one stored meanwhile', async () => {
    const server = await serve({ latencyMs: 20 })
    const options = demoClient(server, { storage: memoryStorage(), storageKey: 'grant' })
    // Web Locks where another tab takes the lock first: this client's refresh waits until told.
    let free!: () => void
    const held = new Promise<void>((resolve) => (free = resolve))
    let requests = 0
    const request = async (_name: string, _options: object, run: () => Promise<unknown>) => {
      if (requests++ > 0) await held
      return run()
    }
    vi.stubGlobal('navigator', { locks: { request } })
    try {
      const other = createRefreshClient(options)
      const client = createRefreshClient(options)
      const refreshing = other.getAccessToken()
      const plain = client.getAccessToken()
      // The other tab stores its token while this client waits for the lock; then a forced call joins.
      const stored = await refreshing
      const forced = client.getAccessToken({ forceRefresh: true })
      await new Promise((resolve) => setTimeout(resolve, 5))
      free()
      expect(await plain).toBe(stored)
      expect(await forced).not.toBe(stored)
      expect(server.issuedTokens).toContain(await forced)
      expect(server.tokenRequests).toHaveLength(2)
    } finally {
      free()
      vi.unstubAllGlobals()
    }
  })

  it('a cleared client takes no grant that another context stores afterwards', async () => {
    const storage = memoryStorage()
    const { server, client } = await setup({}, { storage })
    const other = createRefreshClient(demoClient(server, { storage, storageKey: 'grant' }))
    await client.getAccessToken()
    await other.getAccessToken()
    await client.clear()
    // The other context still holds the grant in memory, refreshes and stores it again.
    await other.getAccessToken({ forceRefresh: true })
    expect(await storage.get('grant')).toBeDefined()
    await expect(client.getAccessToken()).rejects.toMatchObject({ code: 'NO_GRANT' })
  })

  it('a forced call that joins a refresh whose grant is still being stored makes no second request', async () => {
    const base = memoryStorage()
    let writing!: () => void
    const writeStarted = new Promise<void>((resolve) => (writing = resolve))
    const storage: TokenStorage = { ...base, set: async (key, value) => (writing(), await new Promise((resolve) => setTimeout(resolve, 50)), base.set(key, value)) }
    const { server, client } = await setup({}, { storage })
    const first = client.getAccessToken()
    await writeStarted
    await new Promise((resolve) => setTimeout(resolve, 5))
    const forced = client.getAccessToken({ forceRefresh: true })
    expect(await forced).toBe(await first)
    expect(server.tokenRequests).toHaveLength(1)
  })
})

describe('rotation', () => {
  it('writes a rotated refresh token to storage before any caller gets the access token', async () => {
    const base = memoryStorage()
    const writes: StoredTokenSet[] = []
    const storage: TokenStorage = { ...base, set: async (key, value) => (writes.push(value), base.set(key, value)) }
    const { server, client } = await setup({}, { storage })
    const token = await client.getAccessToken()
    expect(writes).toHaveLength(1)
    expect(writes[0]).toMatchObject({ accessToken: token, refreshToken: server.validRefreshToken })
    expect(server.validRefreshToken).not.toBe('demo-refresh-token')
    await client.getAccessToken({ forceRefresh: true })
    expect(server.tokenRequests[1]!.form.refresh_token).toBe(writes[0]!.refreshToken)
  })

  it('keeps the old refresh token when the response carries none', async () => {
    const { client, storage } = await setup({ rotate: false })
    await client.getAccessToken()
    await client.getAccessToken({ forceRefresh: true })
    expect(await storage.get('grant')).toMatchObject({ refreshToken: 'demo-refresh-token' })
  })
})

describe('expiry', () => {
  it.each([
    ['refreshes expiryLeewaySeconds before expires_in runs out', 120, 89_000],
    ['never takes more leeway than half the lifetime, so short tokens are not refreshed on every call', 10, 4_000],
  ])('%s', async (_, expiresIn, stillFreshAfterMs) => {
    const { server, client } = await setup({ expiresIn }, { expiryLeewaySeconds: 30 })
    vi.useFakeTimers({ toFake: ['Date'] })
    const first = await client.getAccessToken()
    vi.advanceTimersByTime(stillFreshAfterMs)
    expect(await client.getAccessToken()).toBe(first)
    vi.advanceTimersByTime(2_000)
    expect(await client.getAccessToken()).not.toBe(first)
    expect(server.tokenRequests).toHaveLength(2)
  })

  it('reads expires_in sent as a numeric string', async () => {
    const { server, client, storage } = await setup()
    server.fault({ expiresIn: '600' })
    const before = Date.now()
    await client.getAccessToken()
    const stored = await storage.get('grant')
    expect(stored!.expiresAt! - before).toBeGreaterThanOrEqual(600_000 - 5)
    expect(stored!.expiresAt! - before).toBeLessThan(601_000)
  })

  it('uses a token without expires_in until the API answers 401', async () => {
    const { server, client } = await setup({ expiresIn: null })
    vi.useFakeTimers({ toFake: ['Date'] })
    const first = await client.getAccessToken()
    vi.advanceTimersByTime(365 * 24 * 3600_000)
    expect(await client.getAccessToken()).toBe(first)
    vi.useRealTimers()
    server.revokeAccessTokens()
    expect((await client.fetch(server.apiUrl)).status).toBe(200)
    expect(server.tokenRequests).toHaveLength(2)
  })
})

describe('client authentication', () => {
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeForm(id)}:${encodeForm(secret)}`).toString('base64')}`
  const encodeForm = (value: string) => new URLSearchParams({ v: value }).toString().slice(2)

  it('sends form-encoded, UTF-8 Basic credentials and nothing in the body (RFC 6749 §2.3.1)', async () => {
    const clientId = 'my client:ü+%'
    const clientSecret = 'sëcret &=: 🔑'
    const { server, client } = await setup({ clientId, clientSecret }, { clientId, clientSecret, clientAuthentication: 'basic' })
    await client.getAccessToken()
    const [request] = server.tokenRequests
    expect(request!.headers.authorization).toBe(basic(clientId, clientSecret))
    expect(request!.clientAuth).toBe('basic')
    expect(request!.form).not.toHaveProperty('client_id')
    expect(request!.form).not.toHaveProperty('client_secret')
  })

  it("sends credentials in the body in 'body' mode and no Authorization header", async () => {
    const { server, client } = await setup({}, { clientAuthentication: 'body' })
    await client.getAccessToken()
    const [request] = server.tokenRequests
    expect(request!.form).toMatchObject({ client_id: 'demo-client', client_secret: 'demo-secret' })
    expect(request!.headers.authorization).toBeUndefined()
  })

  it("'auto' falls back from Basic to the body once and remembers what worked", async () => {
    const { server, client } = await setup({ acceptClientAuth: 'body' })
    await client.getAccessToken()
    await client.getAccessToken({ forceRefresh: true })
    expect(server.tokenRequests.map((request) => request.clientAuth)).toEqual(['basic', 'body', 'body'])
  })

  it("'basic' does not fall back", async () => {
    const { server, client } = await setup({ acceptClientAuth: 'body' }, { clientAuthentication: 'basic' })
    await expect(client.getAccessToken()).rejects.toMatchObject({ code: 'OAUTH_ERROR', error: 'invalid_client', status: 401 })
    expect(server.tokenRequests.map((request) => request.clientAuth)).toEqual(['basic'])
  })

  it("'auto' reports invalid_client when the body is refused too, and the grant survives", async () => {
    const storage = memoryStorage()
    const stored = { refreshToken: 'demo-refresh-token', grantId: 'x' }
    await storage.set('grant', stored)
    const { server, client } = await setup({ acceptClientAuth: 'body', clientSecret: 'other' }, { storage, refreshToken: undefined })
    await expect(client.getAccessToken()).rejects.toMatchObject({ error: 'invalid_client' })
    expect(server.tokenRequests.map((request) => request.clientAuth)).toEqual(['basic', 'body'])
    expect(await storage.get('grant')).toEqual(stored)
  })

  it('a public client sends only client_id', async () => {
    const { server, client } = await setup({ clientSecret: null }, { clientSecret: undefined })
    await client.getAccessToken()
    const [request] = server.tokenRequests
    expect(request!.clientAuth).toBe('none')
    expect(request!.form.client_id).toBe('demo-client')
    expect(request!.headers.authorization).toBeUndefined()
  })
})

describe('invalid_grant', () => {
  it('deletes the stored grant, is never retried, and later calls report NO_GRANT', async () => {
    const { server, client, storage } = await setup()
    await client.getAccessToken()
    expect(await storage.get('grant')).toBeDefined()
    server.setRefreshToken('something-else')
    const error = await client.getAccessToken({ forceRefresh: true }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OAuthError)
    expect(error).toMatchObject({ error: 'invalid_grant', status: 400 })
    expect(server.tokenRequests).toHaveLength(2)
    expect(await storage.get('grant')).toBeUndefined()
    await expect(client.getAccessToken()).rejects.toMatchObject({ code: 'NO_GRANT' })
    expect(server.tokenRequests).toHaveLength(2)
  })
})

describe('storage', () => {
  it('a restarted client with the same configured refresh token resumes the rotated grant', async () => {
    const { server, storage } = await setup()
    const first = createRefreshClient(demoClient(server, { storage }))
    const token = await first.getAccessToken()
    const second = createRefreshClient(demoClient(server, { storage }))
    expect(await second.getAccessToken()).toBe(token)
    await second.getAccessToken({ forceRefresh: true })
    expect(server.tokenRequests.map((request) => request.form.refresh_token)).not.toContain(undefined)
    expect(server.tokenRequests[1]!.form.refresh_token).not.toBe('demo-refresh-token')
  })

  it('resumes a stored grant when no refresh token is configured', async () => {
    const { server, client, storage } = await setup()
    const token = await client.getAccessToken()
    const resumed = createRefreshClient(demoClient(server, { refreshToken: undefined, storage, storageKey: 'grant' }))
    expect(await resumed.getAccessToken()).toBe(token)
  })

  it('a different configured refresh token starts a new grant', async () => {
    const { server, client, storage } = await setup()
    await client.getAccessToken()
    server.setRefreshToken('brand-new-token')
    const other = createRefreshClient(demoClient(server, { refreshToken: 'brand-new-token', storage, storageKey: 'grant' }))
    await other.getAccessToken()
    expect(server.tokenRequests.at(-1)!.form.refresh_token).toBe('brand-new-token')
  })

  it('clear() forgets the grant in memory and in storage', async () => {
    const { server, client, storage } = await setup()
    await client.getAccessToken()
    await client.clear()
    expect(await storage.get('grant')).toBeUndefined()
    await expect(client.getAccessToken()).rejects.toMatchObject({ code: 'NO_GRANT' })
    expect(server.tokenRequests).toHaveLength(1)
  })

  it('a failing storage read is a StorageError and deletes nothing', async () => {
    const base = memoryStorage()
    const remove = vi.fn(base.delete)
    const storage: TokenStorage = { get: async () => Promise.reject(new Error('disk on fire')), set: base.set, delete: remove }
    const { server, client } = await setup({}, { storage })
    await expect(client.getAccessToken()).rejects.toMatchObject({ name: 'StorageError', code: 'STORAGE_ERROR' })
    expect(remove).not.toHaveBeenCalled()
    expect(server.tokenRequests).toHaveLength(0)
  })

  it('a failing storage write still hands out the token, reports it, and keeps the rotated refresh token', async () => {
    const base = memoryStorage()
    let failing = true
    const storage: TokenStorage = { ...base, set: async (key, value) => (failing ? Promise.reject(new Error('quota')) : base.set(key, value)) }
    const onStorageError = vi.fn()
    const { server, client } = await setup({}, { storage, onStorageError })
    const token = await client.getAccessToken()
    expect(server.issuedTokens).toContain(token)
    expect(onStorageError).toHaveBeenCalledOnce()
    expect(onStorageError.mock.calls[0]![0]).toMatchObject({ code: 'STORAGE_ERROR' })
    const rotated = server.validRefreshToken
    failing = false
    await client.getAccessToken({ forceRefresh: true })
    expect(server.tokenRequests[1]!.form.refresh_token).toBe(rotated)
    expect(await base.get('grant')).toMatchObject({ refreshToken: server.validRefreshToken })
  })
})

describe('secrets', () => {
  it('no inspection of the client shows a secret or a token', async () => {
    const { server, client } = await setup()
    const token = await client.getAccessToken()
    const shown = inspect(client, { depth: 10, showHidden: true }) + JSON.stringify(client)
    for (const secret of ['demo-secret', 'demo-refresh-token', token, server.validRefreshToken]) expect(shown).not.toContain(secret)
  })
})

describe('events', () => {
  it('tells one refresh event per token request, however many callers shared it, never with the refresh token', async () => {
    const { server, client } = await setup({ latencyMs: 20 })
    const events: unknown[] = []
    client.on('refresh', (event) => events.push(event))
    const tokens = await Promise.all(Array.from({ length: 100 }, () => client.getAccessToken()))
    expect(server.tokenRequests).toHaveLength(1)
    expect(events).toEqual([{ reason: 'expired', rotated: true, tokenSet: expect.objectContaining({ accessToken: tokens[0], tokenType: 'Bearer', fields: {} }) }])
    expect(JSON.stringify(events)).not.toContain('demo-refresh-token')
    for (const token of server.issuedTokens.filter((value) => value.startsWith('rt-'))) expect(JSON.stringify(events)).not.toContain(token)
  })

  it('names why each refresh ran: forced, rejected by the API, or a token without expiry', async () => {
    const { server, client } = await setup({ rotate: false })
    const reasons: string[] = []
    client.on('refresh', ({ reason, rotated }) => reasons.push(`${reason}${rotated ? ' rotated' : ''}`))
    await client.getAccessToken()
    await client.getAccessToken({ forceRefresh: true })
    server.revokeAccessTokens()
    expect((await client.fetch(server.apiUrl)).status).toBe(200)
    expect(reasons).toEqual(['expired', 'forced', 'rejected'])
  })

  it('tells one error event for a failed refresh shared by 50 callers, and none for the callers that only waited', async () => {
    const { server, client } = await setup({ latencyMs: 10 }, { clientAuthentication: 'body' })
    const errors: unknown[] = []
    client.on('error', ({ error }) => errors.push(error))
    server.fault({ error: 'invalid_scope' })
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => client.getAccessToken()))
    expect(results.every((result) => result.status === 'rejected')).toBe(true)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(OAuthError)
    expect(await client.getAccessToken()).toMatch(/^at-/)
    expect(errors).toHaveLength(1)
  })

  it('keeps working when a listener throws, and stops calling one that unsubscribed', async () => {
    const { client } = await setup()
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    let calls = 0
    client.on('refresh', () => {
      throw new Error('listener bug')
    })
    const off = client.on('refresh', () => calls++)
    try {
      await client.getAccessToken()
      off()
      await client.getAccessToken({ forceRefresh: true })
      expect(calls).toBe(1)
      expect(error).toHaveBeenCalledTimes(2)
    } finally {
      error.mockRestore()
    }
  })
})

describe('getTokenSet', () => {
  it('resolves the token set of the last answer without the refresh token, refreshing as getAccessToken would', async () => {
    const { server, client } = await setup()
    const set = await client.getTokenSet()
    expect(set).toEqual({ accessToken: server.issuedTokens[0], tokenType: 'Bearer', obtainedAt: expect.any(Number), expiresAt: expect.any(Number), fields: {} })
    expect(await client.getTokenSet()).toEqual(set)
    expect(server.tokenRequests).toHaveLength(1)
    expect((await client.getTokenSet({ forceRefresh: true })).accessToken).not.toBe(set.accessToken)
  })

  it('hands out a copy: changing it changes nothing stored', async () => {
    const { client, storage } = await setup()
    const set = await client.getTokenSet()
    set.fields.extra = 1
    set.accessToken = 'changed'
    expect((await client.getTokenSet()).accessToken).not.toBe('changed')
    expect((await storage.get('grant'))?.fields ?? {}).toEqual({})
  })
})

describe('keepAlive', () => {
  it('makes no token request while the grant was refreshed within maxIdleMs', async () => {
    const { server, client } = await setup()
    await client.getAccessToken()
    expect(await client.keepAlive({ maxIdleMs: 60_000 })).toBe(false)
    expect(server.tokenRequests).toHaveLength(1)
  })

  it('refreshes a grant idle for longer, tells a keep-alive refresh event, and resolves true', async () => {
    const { server, client } = await setup()
    const reasons: string[] = []
    client.on('refresh', ({ reason }) => reasons.push(reason))
    await client.getAccessToken()
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 61_000 })
    expect(await client.keepAlive({ maxIdleMs: 60_000 })).toBe(true)
    expect(server.tokenRequests).toHaveLength(2)
    expect(reasons).toEqual(['expired', 'keep-alive'])
  })

  it('refreshes a grant never refreshed, and one whose refresh token expires within maxIdleMs', async () => {
    const storage = memoryStorage()
    const refreshTokenExpiresAt = Date.now() + 30_000
    await storage.set('grant', { accessToken: 'stored', refreshToken: 'demo-refresh-token', obtainedAt: Date.now(), refreshTokenExpiresAt, grantId: 'g' })
    const { server, client } = await setup({}, { storage, refreshToken: undefined })
    expect(await client.keepAlive({ maxIdleMs: 60_000 })).toBe(true)
    const fresh = await setup()
    expect(await fresh.client.keepAlive({ maxIdleMs: 60_000 })).toBe(true)
    expect([server.tokenRequests.length, fresh.server.tokenRequests.length]).toEqual([1, 1])
  })

  it('makes one token request for concurrent calls of three clients sharing a locked storage; one call resolves true', async () => {
    const storage = lockedStorage()
    const server = await serve({ revokeOnReuse: true })
    const clients = Array.from({ length: 3 }, () => createRefreshClient(demoClient(server, { storage, storageKey: 'grant' })))
    const results = await Promise.all(clients.flatMap((client) => [client.keepAlive({ maxIdleMs: 1_000 }), client.keepAlive({ maxIdleMs: 1_000 })]))
    expect(results.filter(Boolean)).toHaveLength(1)
    expect(server.tokenRequests).toHaveLength(1)
    expect(server.grantRevoked).toBe(false)
  })

  it('refuses a missing or negative maxIdleMs with a ConfigError', async () => {
    const { client, server } = await setup()
    await expect(client.keepAlive({} as never)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: 'Option "maxIdleMs" is required: a number of milliseconds' })
    await expect(client.keepAlive({ maxIdleMs: -1 })).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    await expect(client.keepAlive({ maxIdleMs: 1, idle: 2 } as never)).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    expect(server.tokenRequests).toHaveLength(0)
  })
})
