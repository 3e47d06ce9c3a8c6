import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixtureBindings, race, startWorkers, type RaceFigures } from '../../bench/figures/isolates.mjs'
import { startLocalServer, type LocalServer, type LocalServerOptions } from '../../examples/local-server/server.mjs'
import { bundle, CONDITIONS } from './support/bundle.js'
import { installPackedPackage, ROOT, type Consumer } from './support/package.js'
import { CREDENTIALS, workerExampleBindings } from './support/scenario.js'

// Real workerd through miniflare, running test/runtime/fixtures/durable-object/worker.js bundled
// from the packed package. Each Worker script is an isolate of its own; the first hosts the
// `Grants` object, the others bind it by script name. A driver Worker sends each isolate its
// concurrent requests through a service binding: each is a request of its own in that isolate.

let consumer: Consumer
let script: string
const servers: LocalServer[] = []
/** Everything workerd printed, to catch its warnings about I/O shared across requests. */
let runtimeOutput = ''

beforeAll(async () => {
  consumer = await installPackedPackage()
  const fixture = await consumer.add('fixture', join(ROOT, 'test/runtime/fixtures/durable-object/worker.js'))
  script = await bundle(join(fixture, 'worker.js'), CONDITIONS.workerd)
})
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()))
  await consumer?.remove()
})

/** The local server in the mode that punishes a second refresh: a spent refresh token revokes the grant. */
async function serve(options: LocalServerOptions = {}) {
  const server = await startLocalServer({ revokeOnReuse: true, backlog: 2048, ...options })
  servers.push(server)
  return server
}

interface Answer<T = unknown> {
  ok: boolean
  value?: T
  error?: ErrorReport
}
interface ErrorReport {
  name: string
  message: string
  code?: string
  reason?: string
  status?: number
  error?: string
  isOAuthRefreshError: boolean
  isOAuthError: boolean
  isNoGrantError: boolean
  cause?: ErrorReport
  json: string
}
/** An event of a client (in an isolate) or of the object's hooks, its error described. */
interface EventReport {
  type: 'refresh' | 'end' | 'error' | 'alarm'
  reason?: string
  rotated?: boolean
  tokenSet?: { accessToken: string; tokenType: string; expiresAt?: number; obtainedAt?: number; fields: Record<string, unknown> }
  error?: ErrorReport
}

interface Setup {
  isolates?: number
  persist?: string
  env?: Record<string, string>
}

/** The fixture in `isolates` isolates, the grant in the object, against `server`. */
function startFixture(server: LocalServer, { isolates = 1, persist, env = {} }: Setup = {}) {
  const workers = startWorkers({ script, bindings: { ...fixtureBindings(server), ...env }, isolates, persist, onOutput: (chunk) => (runtimeOutput += chunk) })
  return { ...workers, get: <T = Answer>(isolate: string, path: string, init?: RequestInit) => workers.get(isolate, path, init) as Promise<{ status: number; body: T }> }
}

const rpcs = async (workers: ReturnType<typeof startFixture>) => Promise.all(workers.isolates.map(async (isolate) => (await workers.get<number>(isolate, '/rpcs')).body))

describe('workerd (miniflare): oauth-refresh/durable-object', () => {
  it('the race: 3 isolates × 200 concurrent requests make one token request per expiry with the object (KV beside it)', { timeout: 60_000 }, async () => {
    const onOutput = (chunk: string) => (runtimeOutput += chunk)
    const object = await race({ script, mode: 'object', onOutput })
    const kv = await race({ script, mode: 'kv', onOutput })
    const row = (f: RaceFigures) =>
      `| ${f.mode === 'object' ? 'RefreshGrantObject' : 'cloudflareKVStorage'} | ${f.isolates} × ${f.concurrency} | ${f.expiries} | ${f.tokenRequests} | ${(f.tokenRequests / f.expiries).toFixed(2)} | ${f.failedRequests} | ${f.grantAlive ? 'yes' : 'no (revoked)'} |`
    console.log(['| grant kept by | isolates × concurrent requests | expiries (cold start included) | token requests | per expiry | failed requests | grant alive |', '| --- | --- | --- | --- | --- | --- | --- |', row(object), row(kv)].join('\n'))

    expect(object.tokenRequests, 'one token request per expiry, the cold start included').toBe(object.expiries)
    expect(object.failedRequests).toBe(0)
    expect(object.grantAlive, 'no spent refresh token was ever sent').toBe(true)
    for (const count of object.rpcs) expect(count, 'an isolate asks the object once per token').toBeLessThanOrEqual(object.expiries)
    expect(runtimeOutput).not.toMatch(/different request|hung|cross-request/i)
  })

  it('no RPC on the hot path: once per token per isolate, plus once per 401', async () => {
    const server = await serve()
    const workers = startFixture(server, { isolates: 2 })
    try {
      expect(await workers.burst(100, '/api/me')).toBe(0)
      expect(await workers.burst(100, '/api/me')).toBe(0)
      expect(await rpcs(workers), 'one RPC per isolate for 200 requests').toEqual([1, 1])
      expect(server.tokenRequests).toHaveLength(1)

      server.revokeAccessTokens()
      expect(await workers.burst(100, '/api/me'), '100 concurrent 401s per isolate recovered').toBe(0)
      expect(await rpcs(workers), 'one more RPC per isolate after the 401s').toEqual([2, 2])
      expect(server.tokenRequests, 'both isolates reported the same refused token: one refresh').toHaveLength(2)
    } finally {
      await workers.dispose()
    }
  })

  it('a restart on the same storage resumes the rotated grant; the configured refresh token is never sent again', async () => {
    const server = await serve()
    const persist = join(consumer.dir, 'objects')
    const first = startFixture(server, { persist })
    let token: string | undefined
    try {
      expect((await first.get('isolate-0', '/api/me')).status).toBe(200)
      expect((await first.get('isolate-0', '/force')).body.ok).toBe(true)
      token = ((await first.get('isolate-0', '/token')).body.value as string)
    } finally {
      await first.dispose()
    }
    const second = startFixture(server, { persist })
    try {
      expect((await second.get('isolate-0', '/token')).body, 'the stored access token, without a token request').toEqual({ ok: true, value: token })
      expect(server.tokenRequests).toHaveLength(2)
      server.revokeAccessTokens()
      expect((await second.get('isolate-0', '/api/me')).status).toBe(200)
    } finally {
      await second.dispose()
    }
    const sent = server.tokenRequests.map((request) => request.form.refresh_token)
    expect(sent).toHaveLength(3)
    expect(new Set(sent).size, 'each refresh sent the latest rotated token').toBe(3)
    expect(sent.filter((sentToken) => sentToken === CREDENTIALS.refreshToken)).toHaveLength(1)
    expect(server.grantRevoked).toBe(false)
  })

  it('per-user grants: two names are two grants; setRefreshToken starts one, clear ends only it', async () => {
    const server = await serve({ refreshToken: 'alice-refresh-token' })
    const workers = startFixture(server, { env: { REFRESH_TOKEN: '' } })
    const user = (id: string, action: string, body?: string) => workers.get('isolate-0', `/users/${id}/${action}`, body === undefined ? undefined : { method: 'POST', body })
    try {
      expect((await user('alice', 'token')).body.error, 'no grant before setRefreshToken').toMatchObject({ code: 'NO_GRANT', isOAuthRefreshError: true })
      expect((await user('alice', 'set', 'alice-refresh-token')).body).toEqual({ ok: true })
      const alice = (await user('alice', 'token')).body.value
      server.setRefreshToken('bob-refresh-token')
      expect((await user('bob', 'set', 'bob-refresh-token')).body).toEqual({ ok: true })
      const bob = (await user('bob', 'token')).body.value
      expect(server.tokenRequests.map((request) => request.form.refresh_token)).toEqual(['alice-refresh-token', 'bob-refresh-token'])
      expect(alice).toEqual(expect.any(String))
      expect(bob).not.toBe(alice)

      expect((await user('bob', 'clear')).body).toEqual({ ok: true, value: { revoked: false } })
      expect((await user('bob', 'token')).body.error).toMatchObject({ code: 'NO_GRANT' })
      expect((await user('alice', 'token')).body, "alice's grant is untouched").toEqual({ ok: true, value: alice })
      expect((await user('carol', 'set', '')).body.error?.message, 'a direct RPC error keeps its message').toMatch(/"refreshToken" must be a non-empty string/)
      expect(server.tokenRequests).toHaveLength(2)
    } finally {
      await workers.dispose()
    }
  })

  it('errors cross RPC as the SDK classes with their codes, and carry no secret', async () => {
    const server = await serve({ revokeOnReuse: false })
    const workers = startFixture(server)
    const secrets = () => [CREDENTIALS.clientSecret, CREDENTIALS.refreshToken, ...server.issuedTokens]
    const expectNoSecret = (report: ErrorReport | undefined) => {
      for (const secret of secrets()) expect(JSON.stringify(report)).not.toContain(secret)
    }
    try {
      expect((await workers.get('isolate-0', '/token')).body.ok).toBe(true)
      server.fault({ reset: 'after' })
      server.fault({ reset: 'after' })
      const inDoubt = (await workers.get('isolate-0', '/force')).body.error
      expect(inDoubt).toMatchObject({ name: 'TokenRequestError', code: 'REFRESH_IN_DOUBT', isOAuthRefreshError: true, message: expect.stringMatching(/answer lost/) })
      expect(inDoubt?.cause, 'the retry met the rotated grant').toMatchObject({ name: 'OAuthError', code: 'OAUTH_ERROR', error: 'invalid_grant', isOAuthError: true })
      expectNoSecret(inDoubt)

      server.setRefreshToken('another-grant')
      const refused = (await workers.get('isolate-0', '/force')).body.error
      expect(refused).toMatchObject({ name: 'OAuthError', code: 'OAUTH_ERROR', status: 400, error: 'invalid_grant', isOAuthError: true, isOAuthRefreshError: true })
      expectNoSecret(refused)
      expect((await workers.get('isolate-0', '/force')).body.error, 'the dead grant is gone, and why, with the answer that ended it').toMatchObject({
        name: 'NoGrantError',
        code: 'NO_GRANT',
        reason: 'rejected',
        isNoGrantError: true,
        isOAuthRefreshError: true,
        message: 'The provider ended the grant (invalid_grant); sign in, then call setRefreshToken()',
        cause: { name: 'OAuthError', error: 'invalid_grant', isOAuthError: true },
      })
      expect((await workers.get('isolate-0', '/direct')).body.error, 'a direct stub call throws an Error with the message').toMatchObject({ name: 'Error', message: expect.stringMatching(/The provider ended the grant/) })
      expect((await workers.get('isolate-0', '/misspelt')).body.error).toMatchObject({ name: 'ConfigError', code: 'CONFIG_INVALID', message: 'Option "expiryLeeway" is not a known option; did you mean "expiryLeewaySeconds"?' })
    } finally {
      await workers.dispose()
    }

    const misconfigured = startFixture(server, { env: { TOKEN_URL: 'ftp://auth.example.com/token' } })
    try {
      const error = (await misconfigured.get('isolate-0', '/token')).body.error
      expect(error).toMatchObject({ name: 'ConfigError', code: 'CONFIG_INVALID', isOAuthRefreshError: true, message: expect.stringMatching(/"tokenUrl" must use https:/) })
      expectNoSecret(error)
    } finally {
      await misconfigured.dispose()
    }
  })

  it('after the provider ends the grant, an isolate hands out neither the refused token nor a cached one: it follows the object', async () => {
    const server = await serve({ revokeOnReuse: false })
    const workers = startFixture(server, { isolates: 2 })
    try {
      expect((await workers.get('isolate-0', '/api/me')).status).toBe(200)
      const cached = (await workers.get('isolate-1', '/token')).body
      expect(cached.ok, 'isolate-1 holds the same token').toBe(true)
      // The provider revokes the grant: its refresh token and its access tokens.
      server.setRefreshToken('another-grant')
      server.revokeAccessTokens()
      const failed = await workers.get<ErrorReport>('isolate-0', '/api/me')
      expect(failed).toMatchObject({ status: 502, body: { name: 'OAuthError', error: 'invalid_grant' } })
      expect((await workers.get('isolate-0', '/token')).body, 'the token the API just refused').toMatchObject({ ok: false, error: { code: 'NO_GRANT' } })

      expect((await workers.get('isolate-1', '/token')).body, 'no RPC on the hot path: isolate-1 cannot know yet').toEqual(cached)
      expect((await workers.get('isolate-1', '/force')).body.error).toMatchObject({ code: 'NO_GRANT' })
      expect((await workers.get('isolate-1', '/token')).body, 'the NO_GRANT answer ended the cached token').toMatchObject({ ok: false, error: { code: 'NO_GRANT' } })
      expect(server.tokenRequests).toHaveLength(2)

      const rejected = { type: 'end', reason: 'rejected', error: { name: 'OAuthError', error: 'invalid_grant' } }
      const ended = (events: EventReport[]) => events.filter((event) => event.type !== 'refresh')
      expect(ended((await workers.get<EventReport[]>('isolate-0', '/events')).body), 'the isolate whose refresh the provider refused').toMatchObject([rejected, { type: 'error', error: { error: 'invalid_grant' } }])
      expect(ended((await workers.get<EventReport[]>('isolate-1', '/events')).body), 'the other isolate, told by NO_GRANT').toMatchObject([rejected])
      expect((await workers.get<EventReport[]>('isolate-0', '/observed')).body.filter((event) => event.type === 'end'), "the object's onEnd").toMatchObject([rejected])
    } finally {
      await workers.dispose()
    }
  })

  it('a token the API refused is not handed out again when reporting it failed: the next call reports it again', async () => {
    const server = await serve()
    const workers = startFixture(server)
    try {
      const refused = (await workers.get('isolate-0', '/token')).body.value
      server.revokeAccessTokens()
      // A 503 whose Retry-After is past the retry cap: the object's refresh fails at once, the grant kept.
      server.fault({ status: 503, retryAfter: '120' })
      expect((await workers.get<ErrorReport>('isolate-0', '/api/me')).body, "the object's refresh failed").toMatchObject({ isOAuthRefreshError: true, status: 503 })
      const next = (await workers.get('isolate-0', '/token')).body
      expect(next.ok).toBe(true)
      expect(next.value, 'a new token, not the refused one').not.toBe(refused)
      expect(server.tokenRequests).toHaveLength(3)
    } finally {
      await workers.dispose()
    }
  })

  it('a Worker request that starts a refresh and ends before it completes does not lose it', async () => {
    const server = await serve()
    const workers = startFixture(server)
    try {
      server.fault({ delayMs: 1_000 })
      // This request answers at once and leaves its getAccessToken() behind, without waitUntil.
      expect((await workers.get('isolate-0', '/start')).body).toEqual({ ok: true })
      while (server.tokenRequests.length === 0) await sleep(5)
      const waiter = await workers.get('isolate-0', '/token')
      expect(waiter.body.ok, 'a later request of the isolate gets the token').toBe(true)
      expect((await workers.get<number>('isolate-0', '/settled')).body, 'workerd cancelled the first request and its RPC').toBe(1)
      expect(server.tokenRequests, 'the object finished the refresh the cancelled request started').toHaveLength(1)
      server.revokeAccessTokens()
      expect((await workers.get('isolate-0', '/api/me')).status, 'the rotated refresh token was stored').toBe(200)
      expect(server.tokenRequests).toHaveLength(2)
      expect(server.grantRevoked).toBe(false)
    } finally {
      await workers.dispose()
    }
  })

  it('getTokenSet, events and sign-in through createGrantClient: the token set is cached without the refresh token; bad input is a ConfigError', async () => {
    const server = await serve()
    const workers = startFixture(server)
    const events = async () => (await workers.get<EventReport[]>('isolate-0', '/events')).body
    try {
      server.fault({ extra: { instance_url: 'https://tenant.example.com' } })
      const first = (await workers.get<Answer<NonNullable<EventReport['tokenSet']>>>('isolate-0', '/tokenset')).body
      expect(first.value).toMatchObject({ tokenType: 'Bearer', expiresAt: expect.any(Number), obtainedAt: expect.any(Number), fields: { instance_url: 'https://tenant.example.com' } })
      expect((await workers.get('isolate-0', '/tokenset')).body, 'the cached token set, without an RPC').toEqual(first)
      expect(await rpcs(workers)).toEqual([1])
      for (const refreshToken of [CREDENTIALS.refreshToken, server.validRefreshToken]) expect(JSON.stringify(first)).not.toContain(refreshToken)

      server.revokeAccessTokens()
      expect((await workers.get('isolate-0', '/api/me')).status).toBe(200)
      expect((await workers.get('isolate-0', '/force')).body.ok).toBe(true)
      server.fault({ status: 503, retryAfter: '120' })
      expect((await workers.get('isolate-0', '/force')).body.error).toMatchObject({ status: 503 })
      expect((await workers.get('isolate-0', '/token')).body.ok, 'the grant outlived the failure').toBe(true)
      const seen = await events()
      expect(seen.map(({ type, reason, rotated }) => ({ type, reason, rotated }))).toEqual([
        { type: 'refresh', reason: 'expired', rotated: true },
        { type: 'refresh', reason: 'rejected', rotated: true },
        { type: 'refresh', reason: 'forced', rotated: true },
        { type: 'error', reason: undefined, rotated: undefined },
      ])
      expect(seen[0]!.tokenSet).toEqual(first.value)
      expect(seen[3]!.error, 'the failed RPC, once').toMatchObject({ name: 'TokenRequestError', status: 503 })
      for (const refreshToken of server.tokenRequests.map((request) => request.form.refresh_token)) expect(JSON.stringify(seen)).not.toContain(refreshToken)
      const observed = (await workers.get<EventReport[]>('isolate-0', '/observed')).body
      expect(observed.map(({ type, reason }) => [type, reason]), "the object's hooks saw its refreshes and the failure").toEqual([
        ['refresh', 'expired'],
        ['refresh', 'forced'],
        ['refresh', 'forced'],
        ['error', undefined],
      ])

      // Sign-in with the tokens of a code exchange: the access token is handed out as it is.
      server.setRefreshToken('signed-in-refresh-token')
      const signIn = (body: object) => workers.get('isolate-0', '/sign-in', { method: 'POST', body: JSON.stringify(body) })
      expect((await signIn({ refreshToken: 'signed-in-refresh-token', accessToken: 'exchanged-access-token', expiresIn: 3600 })).body).toEqual({ ok: true })
      const requests = server.tokenRequests.length
      expect((await workers.get('isolate-0', '/token')).body, 'the signed-in access token, no cached one of the old grant').toEqual({ ok: true, value: 'exchanged-access-token' })
      expect(server.tokenRequests).toHaveLength(requests)
      expect((await workers.get('isolate-0', '/api/me')).status, 'the API refused it: a refresh with the signed-in grant').toBe(200)
      expect(server.tokenRequests.at(-1)!.form.refresh_token).toBe('signed-in-refresh-token')

      expect((await signIn({ refreshToken: ' padded\n' })).body.error).toMatchObject({ name: 'ConfigError', code: 'CONFIG_INVALID', message: expect.stringMatching(/"refreshToken" has leading or trailing whitespace/) })
      expect((await signIn({ refreshToken: 'x', expiresIn: -1 })).body.error).toMatchObject({ name: 'ConfigError', message: expect.stringMatching(/"expiresIn"/) })
      expect((await signIn({ refreshToken: 'x', expiresAt: 1 })).body.error).toMatchObject({ name: 'ConfigError', message: expect.stringMatching(/"expiresAt" is not a known option/) })
      expect((await workers.get('isolate-0', '/force')).body.ok, 'refused sign-ins left the grant as it was').toBe(true)
      expect(server.grantRevoked).toBe(false)
      expect((await workers.get('isolate-0', '/spaced')).body.error).toMatchObject({ name: 'ConfigError', message: expect.stringMatching(/^"name" has leading or trailing whitespace/) })
    } finally {
      await workers.dispose()
    }
  })

  it("clear({ revoke: true }) revokes the newest refresh token at the object's revocationUrl; the isolates end the grant", async () => {
    const server = await serve()
    const workers = startFixture(server, { isolates: 2, env: { REVOCATION_URL: server.revocationUrl } })
    const clear = (isolate: string) => workers.get<Answer<{ revoked: boolean; error?: ErrorReport }>>(isolate, '/clear?revoke')
    const ends = async (isolate: string) => (await workers.get<EventReport[]>(isolate, '/events')).body.filter((event) => event.type === 'end')
    try {
      expect((await workers.get('isolate-0', '/token')).body.ok).toBe(true)
      expect((await workers.get('isolate-1', '/token')).body.ok).toBe(true)
      const newest = server.validRefreshToken
      expect(newest).not.toBe(CREDENTIALS.refreshToken)
      expect((await clear('isolate-0')).body).toEqual({ ok: true, value: { revoked: true } })
      expect(server.revocations.map((revocation) => revocation.token)).toEqual([newest])
      expect(await ends('isolate-0')).toEqual([{ type: 'end', reason: 'revoked' }])
      expect((await workers.get('isolate-0', '/token')).body.error).toMatchObject({ name: 'NoGrantError', reason: 'cleared', isNoGrantError: true })

      expect((await workers.get('isolate-1', '/token')).body.ok, 'isolate-1 cannot know before its next RPC').toBe(true)
      expect((await workers.get('isolate-1', '/force')).body.error).toMatchObject({ code: 'NO_GRANT', reason: 'cleared' })
      expect(await ends('isolate-1'), 'told once').toEqual([{ type: 'end', reason: 'elsewhere' }])
      expect((await workers.get('isolate-1', '/token')).body.error).toMatchObject({ code: 'NO_GRANT' })
      expect(await ends('isolate-1')).toHaveLength(1)

      // Signed in again; the provider fails the revocation: the grant is forgotten all the same.
      server.setRefreshToken('second-grant')
      expect((await workers.get('isolate-1', '/sign-in', { method: 'POST', body: JSON.stringify({ refreshToken: 'second-grant' }) })).body).toEqual({ ok: true })
      expect((await workers.get('isolate-1', '/token')).body.ok).toBe(true)
      server.faultRevocation({ status: 503 })
      const failed = (await clear('isolate-1')).body
      expect(failed).toMatchObject({ ok: true, value: { revoked: false, error: { isOAuthRefreshError: true, status: 503 } } })
      expect(await ends('isolate-1')).toMatchObject([{ reason: 'elsewhere' }, { reason: 'cleared', error: failed.value!.error }])
      expect((await workers.get('isolate-1', '/token')).body.error).toMatchObject({ code: 'NO_GRANT', reason: 'cleared' })
      const observed = (await workers.get<EventReport[]>('isolate-0', '/observed')).body
      expect(observed.filter((event) => event.type === 'end').map((event) => event.reason), "the object's onEnd").toEqual(['revoked', 'cleared'])
    } finally {
      await workers.dispose()
    }
  })

  it('keep-alive: createGrantClient(…).keepAlive asks the object; the alarm refreshes an idle grant, not a fresh one, and stops when the grant is gone', { timeout: 30_000 }, async () => {
    const server = await serve()
    const workers = startFixture(server, { env: { KEEP_ALIVE_MAX_IDLE_MS: '1500', KEEP_ALIVE_EVERY_MS: '300' } })
    const observed = async () => (await workers.get<EventReport[]>('isolate-0', '/observed')).body
    const alarms = async () => (await observed()).filter((event) => event.type === 'alarm').length
    try {
      const started = Date.now()
      expect((await workers.get('isolate-0', '/token')).body.ok).toBe(true)
      expect((await workers.get<number | null>('isolate-0', '/alarm')).body, 'the first use set the alarm').toEqual(expect.any(Number))
      while ((await alarms()) < 2) await sleep(50)
      expect(Date.now() - started, 'two alarms ran before the grant was idle').toBeLessThan(1_500)
      expect(server.tokenRequests, 'the grant is fresh: no token request').toHaveLength(1)
      while (server.tokenRequests.length < 2) await sleep(50)
      expect(Date.now() - started, 'the alarm refreshed the idle grant').toBeGreaterThanOrEqual(1_500)
      expect((await observed()).filter((event) => event.type === 'refresh').map((event) => event.reason)).toEqual(['expired', 'keep-alive'])

      expect((await workers.get('isolate-0', '/keep-alive/600000')).body, 'fresh: no refresh').toEqual({ ok: true, value: false })
      expect((await workers.get('isolate-0', '/keep-alive/0')).body, 'idle for 0 ms: a refresh').toEqual({ ok: true, value: true })
      expect(server.tokenRequests).toHaveLength(3)
      expect((await workers.get('isolate-0', '/keep-alive/-1')).body.error).toMatchObject({ name: 'ConfigError', message: expect.stringMatching(/"maxIdleMs"/) })
      expect((await workers.get('isolate-0', '/clear?revoke')).body.error, 'no revocationUrl').toMatchObject({ name: 'ConfigError', message: expect.stringMatching(/"revocationUrl"/) })

      expect((await workers.get('isolate-0', '/clear')).body).toEqual({ ok: true, value: { revoked: false } })
      const after = await alarms()
      while ((await alarms()) === after) await sleep(50)
      expect((await workers.get('isolate-0', '/alarm')).body, 'no grant, no next alarm').toBeNull()
      expect(server.tokenRequests).toHaveLength(3)
    } finally {
      await workers.dispose()
    }

    const misconfigured = startFixture(server, { env: { KEEP_ALIVE_MAX_IDLE_MS: '1000', KEEP_ALIVE_EVERY_MS: '-5' } })
    try {
      expect((await misconfigured.get('isolate-0', '/token')).body.error).toMatchObject({ name: 'ConfigError', message: 'Option "keepAlive.everyMs" must be a number of milliseconds above 0' })
    } finally {
      await misconfigured.dispose()
    }
  })

  it('examples/cloudflare-worker/durable-object runs as its wrangler.toml says: its isolates make one token request, and one per 401', async () => {
    const example = join(await consumer.add('examples', 'examples/cloudflare-worker'), 'cloudflare-worker', 'durable-object')
    const wrangler = await readFile(join(example, 'wrangler.toml'), 'utf8')
    const main = /^main = "(.+)"$/m.exec(wrangler)?.[1] ?? 'missing'
    const compatibilityDate = /^compatibility_date = "(.+)"$/m.exec(wrangler)?.[1] ?? ''
    expect(compatibilityDate >= '2024-04-03', 'RPC needs a compatibility date of 2024-04-03 or later').toBe(true)
    const [, binding = '', className = ''] = /^\[\[durable_objects\.bindings\]\]\nname = "(\w+)"\nclass_name = "(\w+)"$/m.exec(wrangler) ?? []
    expect(wrangler).toMatch(new RegExp(`^\\[\\[migrations\\]\\]\\ntag = "v1"\\nnew_sqlite_classes = \\["${className}"\\]$`, 'm'))
    const server = await serve()
    const workers = startWorkers({
      script: await bundle(join(example, main), CONDITIONS.workerd),
      isolates: 2,
      binding,
      className,
      compatibilityDate,
      // Every grant is idle to the Cron Trigger's keep-alive.
      bindings: { ...workerExampleBindings(server), GRANT_MAX_IDLE_DAYS: '0' },
      onOutput: (chunk) => (runtimeOutput += chunk),
    })
    try {
      expect(await workers.burst(100, '/me'), '100 concurrent requests on each of 2 cold isolates').toBe(0)
      expect(server.tokenRequests).toHaveLength(1)
      expect(server.apiLog.filter((entry) => entry.path === '/api/me')).toHaveLength(200)
      server.revokeAccessTokens()
      expect(await workers.burst(100, '/me'), '100 concurrent 401s on each isolate').toBe(0)
      expect(server.tokenRequests).toHaveLength(2)
      const cron = /^crons = \["(.+)"\]$/m.exec(wrangler)?.[1] ?? 'missing'
      expect(await workers.scheduled('isolate-1', cron)).toMatchObject({ outcome: 'ok' })
      expect(server.tokenRequests, "the Cron Trigger's keep-alive refreshed the idle grant").toHaveLength(3)
      expect(server.grantRevoked).toBe(false)
    } finally {
      await workers.dispose()
    }
  })
})
