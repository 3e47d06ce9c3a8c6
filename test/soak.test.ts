import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, expect, it, vi } from 'vitest'
import { createRefreshClient, memoryStorage, OAuthRefreshError } from '../src/index.js'
import { startLocalServer, type Fault, type LocalServer } from '../examples/local-server/server.mjs'

// vitest workers run without --expose-gc; this gives the test a real collector to call.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const TOTAL = 20_000
// Every batch runs concurrently against a token that was revoked, or expired, just before it.
const BATCH = 200
const EXPIRE_EVERY = 3
const LIFETIME_SECONDS = 600
const FAULT_EVERY = 20
// Each costs exactly one extra token request: the server did not act on the first one.
const FAULTS: Fault[] = [{ status: 503 }, { status: 429, retryAfter: '0' }, { status: 502 }, { reset: 'before' }]
const HEAP_GROWTH_LIMIT = 4 * 1024 * 1024

let server: LocalServer | undefined
afterAll(() => {
  vi.useRealTimers()
  return server?.close()
})

function heapUsed(): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const timers = () => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length

it(`serves ${TOTAL} authorized requests through revocations and token endpoint faults`, async () => {
  vi.useFakeTimers({ toFake: ['Date'] })
  server = await startLocalServer({ expiresIn: LIFETIME_SECONDS })
  const storage = memoryStorage()
  const client = createRefreshClient({
    tokenUrl: server.tokenUrl,
    clientId: 'demo-client',
    clientSecret: 'demo-secret',
    refreshToken: 'demo-refresh-token',
    storage,
    storageKey: 'k',
    expiryLeewaySeconds: 0,
    retry: { baseDelayMs: 1, maxDelayMs: 50 },
  })
  const timersBefore = timers()
  let completed = 0
  let renewals = 0
  let revocations = 0
  let faults = 0
  const statuses = new Map<number | string, number>()
  const count = (key: number | string) => statuses.set(key, (statuses.get(key) ?? 0) + 1)

  // Renewing only between batches keeps the count exact: a request whose replay token is revoked
  // too (possible with a revocation mid-batch) correctly gets its second 401 as is.
  const renew = () => {
    renewals++
    if (renewals % FAULT_EVERY === 0) server!.fault(FAULTS[faults++ % FAULTS.length])
    if (renewals % EXPIRE_EVERY === 0) vi.setSystemTime(Date.now() + LIFETIME_SECONDS * 1000)
    else {
      revocations++
      server!.revokeAccessTokens()
    }
  }

  async function one(i: number): Promise<void> {
    try {
      const res = await client.fetch(`${server!.apiUrl}/items/${i}`, { method: i % 2 ? 'GET' : 'POST', body: i % 2 ? null : `n=${i}` })
      await res.arrayBuffer()
      count(res.status)
    } catch (error) {
      count(error instanceof OAuthRefreshError ? error.code : `untyped: ${String(error)}`)
    } finally {
      completed++
    }
  }

  let heapAfterWarmUp = 0
  for (let start = 0; start < TOTAL; start += BATCH) {
    if (start > 0) renew()
    await Promise.all(Array.from({ length: BATCH }, (_, k) => one(start + k)))
    // The server shares this heap; its request log is not the client's memory.
    server.apiLog.splice(0)
    if (start + BATCH === 2_000) heapAfterWarmUp = heapUsed()
  }
  const heapAtEnd = heapUsed()

  expect(completed).toBe(TOTAL)
  expect(Object.fromEntries(statuses)).toEqual({ 200: TOTAL })
  expect(faults).toBeGreaterThan(0)
  expect(server.tokenHits).toBe(1 + renewals + faults)
  // A revoked token costs each request of its batch one 401 and one replay; an expired one, none.
  expect(server.apiRequests).toBe(TOTAL + BATCH * revocations)
  expect(await storage.get('k')).toMatchObject({ refreshToken: server.validRefreshToken })
  expect(timers()).toBeLessThanOrEqual(timersBefore)
  expect(heapAtEnd - heapAfterWarmUp).toBeLessThan(HEAP_GROWTH_LIMIT)
  // Only keeps a hang from stalling the suite: on 2 busy cores, beside the workerd tests, the
  // soak alone has taken 55-60 s.
}, 180_000)
