import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { denoKVPlace, holderConfig, RACE_SERVER, rotationRace } from '../../bench/figures/deno-kv.mjs'
import { PAUSE_POINTS } from '../../bench/figures/holder-run.mjs'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { installPackedPackage, type Consumer } from './support/package.js'
import { expectAliveAndNewest, pauseAt, sentRefreshTokens } from './support/pause.js'
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

  it('a process killed while its token request is out: the others get one token once its lease and its in-flight record have ended', async () => {
    const leaseMs = 1000
    const timeoutMs = 3000
    const server = await startLocalServer({ revokeOnReuse: true })
    servers.push(server)
    server.fault({ hang: true })
    const config = { ...holderConfig(server, place.kvPath()), leaseMs, timeoutMs, lock: true, mode: 'token', rounds: 0, periodMs: 0, concurrency: 0 }
    const killed = await place.start(config)
    killed.go(Date.now())
    while (server.tokenRequests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    // It holds the lock and its token request hangs. The others start and wait for the lock.
    const others = await Promise.all([place.start(config), place.start(config)])
    for (const other of others) other.go(Date.now())
    const answers = others.map((other) => other.next())
    let answered = false
    for (const answer of answers) void answer.then(() => (answered = true))
    await new Promise((resolve) => setTimeout(resolve, 1.5 * leaseMs))
    expect(answered, 'the others wait while the holder renews its lease').toBe(false)

    const killedAt = Date.now()
    killed.kill('SIGKILL')
    const [first, second] = await Promise.all(answers)
    const takeoverMs = Math.max(first.at, second.at) - killedAt
    console.info(`takeover after SIGKILL with a request out: ${takeoverMs} ms (leaseMs ${leaseMs}, timeoutMs ${timeoutMs})`)
    expect(first.token).toBeDefined()
    expect(second.token).toBe(first.token)
    expect(sentRefreshTokens(server), 'one more token request, with the unspent token').toEqual([CREDENTIALS.refreshToken, CREDENTIALS.refreshToken])
    expect(server.grantRevoked).toBe(false)
    // The bound: the record's deadline (timeoutMs + leaseMs after the claim, before the kill), a
    // poll, and the refresh and write on a busy machine (allowed 1,000 ms).
    expect(takeoverMs).toBeLessThan(timeoutMs + leaseMs + 1000)
    expect(await killed.exited).toBeNull()
  })

  for (const point of PAUSE_POINTS) {
    it(`a holder stopped past its lease ${point === 'server' ? 'while the server holds its answer' : `at "${point}"`}, then continued: no spent refresh token presented, the grant alive, storage on the newest refresh token`, async () => {
      const leaseMs = 1000
      const server = await startLocalServer({ revokeOnReuse: true })
      servers.push(server)
      const config = { ...holderConfig(server, place.kvPath()), leaseMs, lock: true }
      const answers = await pauseAt(place, server, config, point, leaseMs + 600)
      expect(answers.map((answer) => answer.error)).toEqual([undefined, undefined, undefined])
      const sent = sentRefreshTokens(server)
      expect(new Set(sent).size, `no refresh token sent twice: ${sent.length} sent`).toBe(sent.length)
      await expectAliveAndNewest(place, server, config)
    })
  }

  it('a holder stopped past its in-flight deadline, before writing its answer, against a provider with a grace period: storage never rolls back', async () => {
    const leaseMs = 1000
    const timeoutMs = 1000
    const server = await startLocalServer({ revokeOnReuse: true, graceMs: 60_000 })
    servers.push(server)
    const config = { ...holderConfig(server, place.kvPath()), leaseMs, timeoutMs, lock: true }
    const answers = await pauseAt(place, server, config, 'answer', timeoutMs + 2 * leaseMs + 1000)
    expect(answers.every((answer) => answer.token)).toBe(true)
    expect(sentRefreshTokens(server), 'the documented window: the spent token, sent again past the deadline').toEqual([CREDENTIALS.refreshToken, CREDENTIALS.refreshToken])
    await expectAliveAndNewest(place, server, config)
  })
})
