import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { denoKVPlace, holderConfig, RACE_SERVER, rotationRace } from '../../bench/figures/deno-kv.mjs'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { installPackedPackage, type Consumer } from './support/package.js'
import { CREDENTIALS } from './support/scenario.js'

// Deno processes (`npx deno`) on the packed package share one grant in one Deno KV file.
let consumer: Consumer
let place: Awaited<ReturnType<typeof denoKVPlace>>
const servers: LocalServer[] = []

beforeAll(async () => {
  consumer = await installPackedPackage()
  place = await denoKVPlace({ entries: { core: await consumer.entry(), denoKV: await consumer.entry('./deno-kv') } })
})
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()))
  await place?.close()
  await consumer?.remove()
})

describe('oauth-refresh/deno-kv across Deno processes', () => {
  it('three processes, 50 concurrent calls each, 5 rounds each finding the token due, rotation with revocation on reuse: one token request per round, no failed call, the grant alive', async () => {
    const rounds = 5
    const server = await startLocalServer(RACE_SERVER)
    servers.push(server)
    const kvPath = place.kvPath()
    const run = await rotationRace(place, server, { kvPath, processes: 3, concurrency: 50, rounds, leaseMs: 2000 })
    expect(run.errors).toEqual({})
    expect(run.ok).toBe(3 * 50 * rounds)
    expect(server.tokenRequests, 'one token request per round: the first and 4 expiries').toHaveLength(rounds)
    expect(server.grantRevoked).toBe(false)
    // Alive: a new process refreshes with the stored, rotated refresh token.
    const rotated = server.validRefreshToken
    server.revokeAccessTokens()
    const next = await place.start({ ...holderConfig(server, kvPath), leaseMs: 2000, lock: true, mode: 'rounds', rounds: 1, periodMs: 0, concurrency: 1 })
    next.go(Date.now())
    expect(await next.next()).toEqual({ ok: 1, errors: {} })
    expect(server.tokenRequests.at(-1)!.form.refresh_token).toBe(rotated)
  })

  it('a process killed while it holds the lock mid-refresh: the others get one token after the lease ends, within leaseMs and a poll', async () => {
    const leaseMs = 1000
    const server = await startLocalServer({ revokeOnReuse: true })
    servers.push(server)
    server.fault({ hang: true })
    const config = { ...holderConfig(server, place.kvPath()), leaseMs, lock: true, mode: 'token', rounds: 0, periodMs: 0, concurrency: 0 }
    const killed = await place.start(config)
    killed.go(Date.now())
    while (server.tokenRequests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    // It holds the lock and its token request hangs. The others start and wait for the lock.
    const others = await Promise.all([place.start(config), place.start(config)])
    for (const other of others) other.go(Date.now())
    const answers = others.map((other) => other.next())
    let answered = false
    for (const answer of answers) void answer.then(() => (answered = true))
    await new Promise((resolve) => setTimeout(resolve, 2.5 * leaseMs))
    expect(answered, 'the others wait while the holder renews its lease').toBe(false)

    const killedAt = Date.now()
    killed.kill('SIGKILL')
    const [first, second] = await Promise.all(answers)
    const takeoverMs = Math.max(first.at, second.at) - killedAt
    console.info(`takeover after SIGKILL: ${takeoverMs} ms (leaseMs ${leaseMs})`)
    expect(first.token).toBeDefined()
    expect(second.token).toBe(first.token)
    expect(server.tokenRequests.map((request) => request.form.refresh_token), 'one more token request, with the unspent token').toEqual([CREDENTIALS.refreshToken, CREDENTIALS.refreshToken])
    expect(server.grantRevoked).toBe(false)
    // The bound: leaseMs after the holder's last renewal (before the kill), a poll (≤ 150 ms), and
    // the taking over, refreshing and storing on a busy machine (allowed 850 ms).
    expect(takeoverMs).toBeLessThan(leaseMs + 1000)
    expect(await killed.exited).toBeNull()
  })
})
