import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalServer, type LocalServer, type LocalServerOptions } from '../../examples/local-server/server.mjs'
import { bundle, CONDITIONS } from './support/bundle.js'
import { installPackedPackage, ROOT, type Consumer } from './support/package.js'
import { CREDENTIALS } from './support/scenario.js'

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

/** Sends `n` concurrent requests to one isolate and counts the answers by status. */
const DRIVER = `export default {
  async fetch(request, env) {
    const { searchParams } = new URL(request.url)
    const target = env[searchParams.get('isolate')]
    const statuses = await Promise.all(Array.from({ length: Number(searchParams.get('n')) }, async () => {
      const response = await target.fetch('http://worker.test' + searchParams.get('path'))
      await response.arrayBuffer()
      return response.status
    }))
    const counts = {}
    for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1
    return Response.json(counts)
  },
}`

interface Answer {
  ok: boolean
  value?: { accessToken?: string } | string
  error?: ErrorReport
}
interface ErrorReport {
  name: string
  message: string
  code?: string
  status?: number
  error?: string
  isOAuthRefreshError: boolean
  isOAuthError: boolean
  cause?: ErrorReport
  json: string
}

interface Workers {
  isolates: string[]
  get<T = Answer>(isolate: string, path: string, init?: RequestInit): Promise<{ status: number; body: T }>
  /** `n` concurrent requests to `path` on every isolate at once; the failed ones (not 200). */
  burst(n: number, path: string): Promise<number>
  dispose(): Promise<void>
}

interface Setup {
  isolates?: number
  mode?: 'object' | 'kv'
  persist?: string
  env?: Record<string, string>
}

function startWorkers(server: LocalServer, { isolates = 1, mode = 'object', persist, env = {} }: Setup = {}): Workers {
  const bindings = {
    TOKEN_URL: server.tokenUrl,
    CLIENT_ID: CREDENTIALS.clientId,
    CLIENT_SECRET: CREDENTIALS.clientSecret,
    REFRESH_TOKEN: CREDENTIALS.refreshToken,
    API_URL: server.apiUrl,
    MODE: mode,
    ...env,
  }
  const names = Array.from({ length: isolates }, (_, i) => `isolate-${i}`)
  const compatibilityDate = '2026-04-01'
  const mf = new Miniflare({
    workers: [
      {
        name: 'driver',
        modules: [{ type: 'ESModule', path: 'driver.js', contents: DRIVER }],
        compatibilityDate,
        routes: ['driver.test/*'],
        serviceBindings: Object.fromEntries(names.map((name) => [name, name])),
      },
      ...names.map((name, i) => ({
        name,
        modules: [{ type: 'ESModule' as const, path: 'worker.js', contents: script }],
        compatibilityDate,
        routes: [`${name}.test/*`],
        bindings,
        kvNamespaces: { TOKENS: 'tokens' },
        durableObjects: { GRANTS: i === 0 ? { className: 'Grants', useSQLite: true } : { className: 'Grants', scriptName: names[0] } },
      })),
    ],
    durableObjectsPersist: persist ?? false,
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      for (const stream of [stdout, stderr]) stream.on('data', (chunk: Buffer) => (runtimeOutput += chunk))
    },
  })
  const get = async (isolate: string, path: string, init?: RequestInit) => {
    const response = await mf.dispatchFetch(`http://${isolate}.test${path}`, init as never)
    return { status: response.status, body: await response.json() }
  }
  return {
    isolates: names,
    get: get as Workers['get'],
    async burst(n, path) {
      const answers = await Promise.all(names.map((isolate) => get('driver', `/?isolate=${isolate}&n=${n}&path=${encodeURIComponent(path)}`)))
      return answers.reduce((failed, { body }) => failed + n - ((body as Record<string, number>)['200'] ?? 0), 0)
    },
    dispose: () => mf.dispose(),
  }
}

const rpcs = async (workers: Workers) => Promise.all(workers.isolates.map(async (isolate) => (await workers.get<number>(isolate, '/rpcs')).body))

interface RaceFigures {
  mode: 'object' | 'kv'
  isolates: number
  concurrency: number
  expiries: number
  tokenRequests: number
  failedRequests: number
  grantAlive: boolean
  rpcs: number[]
}

/**
 * `isolates` × `concurrency` requests at once, once on a cold start and then each time the token
 * nears its expiry (`expiresIn` 3 s: the clients refresh after half of it, and each round waits
 * that long after the last one ended).
 */
async function race(mode: 'object' | 'kv', { isolates = 3, concurrency = 200, expiries = 5 } = {}): Promise<RaceFigures> {
  const expiresIn = 3
  const server = await serve({ expiresIn })
  const workers = startWorkers(server, { isolates, mode })
  try {
    let failedRequests = 0
    for (let round = 0; round <= expiries; round++) {
      // The token obtained in the last round is past its refresh point (half its lifetime).
      if (round > 0) await sleep((expiresIn * 1000) / 2 + 250)
      failedRequests += await workers.burst(concurrency, '/api/race')
    }
    const refreshTokens = server.tokenRequests.map((request) => request.form.refresh_token)
    return {
      mode,
      isolates,
      concurrency,
      expiries: expiries + 1,
      tokenRequests: refreshTokens.length,
      failedRequests,
      grantAlive: !server.grantRevoked && new Set(refreshTokens).size === refreshTokens.length,
      rpcs: mode === 'object' ? await rpcs(workers) : [],
    }
  } finally {
    await workers.dispose()
  }
}

describe('workerd (miniflare): oauth-refresh/durable-object', () => {
  it('the race: 3 isolates × 200 concurrent requests make one token request per expiry with the object (KV beside it)', { timeout: 60_000 }, async () => {
    const object = await race('object')
    const kv = await race('kv')
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
    const workers = startWorkers(server, { isolates: 2 })
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
    const first = startWorkers(server, { persist })
    let token: string | undefined
    try {
      expect((await first.get('isolate-0', '/api/me')).status).toBe(200)
      expect((await first.get('isolate-0', '/force')).body.ok).toBe(true)
      token = ((await first.get('isolate-0', '/token')).body.value as string)
    } finally {
      await first.dispose()
    }
    const second = startWorkers(server, { persist })
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
    const workers = startWorkers(server, { env: { REFRESH_TOKEN: '' } })
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

      expect((await user('bob', 'clear')).body).toEqual({ ok: true })
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
    const workers = startWorkers(server)
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
      expect((await workers.get('isolate-0', '/force')).body.error, 'the dead grant is gone').toMatchObject({ code: 'NO_GRANT', isOAuthRefreshError: true, message: 'No refresh token' })
      expect((await workers.get('isolate-0', '/direct')).body.error, 'a direct stub call throws an Error with the message').toMatchObject({ name: 'Error', message: expect.stringMatching(/No refresh token/) })
      expect((await workers.get('isolate-0', '/misspelt')).body.error).toMatchObject({ name: 'ConfigError', code: 'CONFIG_INVALID', message: 'Option "expiryLeeway" is not a known option; did you mean "expiryLeewaySeconds"?' })
    } finally {
      await workers.dispose()
    }

    const misconfigured = startWorkers(server, { env: { TOKEN_URL: 'ftp://auth.example.com/token' } })
    try {
      const error = (await misconfigured.get('isolate-0', '/token')).body.error
      expect(error).toMatchObject({ name: 'ConfigError', code: 'CONFIG_INVALID', isOAuthRefreshError: true, message: expect.stringMatching(/"tokenUrl" must use https:/) })
      expectNoSecret(error)
    } finally {
      await misconfigured.dispose()
    }
  })

  it('a Worker request that starts a refresh and ends before it completes does not lose it', async () => {
    const server = await serve()
    const workers = startWorkers(server)
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
})
