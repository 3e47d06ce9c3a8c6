import { createClient } from 'redis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { holderConfig, RACE_SERVER, rotationRace } from '../../bench/figures/deno-kv.mjs'
import { PAUSE_POINTS } from '../../bench/figures/holder-run.mjs'
import { redisPlace } from '../../bench/figures/redis.mjs'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { describeWithRedis, startRedis, type RedisServer } from '../support/redis.js'
import { installPackedPackage, type Consumer } from './support/package.js'
import { expectAliveAndNewest, pauseAt, sentRefreshTokens } from './support/pause.js'
import { CREDENTIALS } from './support/scenario.js'

// Node processes on the packed package share one grant in one Redis (redis-server, started here).
let consumer: Consumer
let redis: RedisServer
let entries: { core: string; redis: string }
const servers: LocalServer[] = []
const places: Array<ReturnType<typeof redisPlace>> = []

const place = (redisClient: 'node-redis' | 'ioredis' = 'node-redis') => {
  const created = redisPlace({ entries, redisUrl: redis.url, redisClient })
  places.push(created)
  return created
}
const server = async (options: Parameters<typeof startLocalServer>[0]) => {
  const started = await startLocalServer(options)
  servers.push(started)
  return started
}

describeWithRedis('oauth-refresh/redis across Node processes', () => {
  beforeAll(async () => {
    ;[consumer, redis] = await Promise.all([installPackedPackage(), startRedis()])
    entries = { core: await consumer.entry(), redis: await consumer.entry('./redis') }
  })
  afterAll(async () => {
    await Promise.all(places.map((created) => created.close()))
    await Promise.all(servers.map((started) => started.close()))
    await redis?.stop()
    await consumer?.remove()
  })

  it('four processes, 50 concurrent calls each, 5 rounds each finding the token due, rotation with revocation on reuse: one token request per round, no failed call, the grant alive', async () => {
    const rounds = 5
    const race = await server(RACE_SERVER)
    const holders = place()
    const run = await rotationRace(holders, race, { kvPath: '', processes: 4, concurrency: 50, rounds, leaseMs: 2000 })
    expect(run.errors).toEqual({})
    expect(run.ok).toBe(4 * 50 * rounds)
    expect(race.tokenRequests, 'one token request per round: the first and 4 expiries').toHaveLength(rounds)
    await expectAliveAndNewest(holders, race, { ...holderConfig(race, ''), leaseMs: 2000, lock: true })
  })

  it('a process killed while its token request is out: the others get one token once its lease and its in-flight record have ended', async () => {
    const leaseMs = 1000
    const timeoutMs = 3000
    const hanging = await server({ revokeOnReuse: true })
    hanging.fault({ hang: true })
    const holders = place('ioredis')
    const config = { ...holderConfig(hanging, ''), leaseMs, timeoutMs, lock: true, mode: 'token', rounds: 0, periodMs: 0, concurrency: 0 }
    const killed = await holders.start(config)
    killed.go(Date.now())
    while (hanging.tokenRequests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    const others = await Promise.all([holders.start(config), holders.start(config)])
    const killedAt = Date.now()
    killed.kill('SIGKILL')
    for (const other of others) other.go(Date.now())
    const [first, second] = await Promise.all(others.map((other) => other.next()))
    const takeoverMs = Math.max(first.at, second.at) - killedAt
    console.info(`takeover after SIGKILL with a request out: ${takeoverMs} ms (leaseMs ${leaseMs}, timeoutMs ${timeoutMs})`)
    expect(first.token).toBeDefined()
    expect(second.token).toBe(first.token)
    expect(sentRefreshTokens(hanging), 'one more token request, with the unspent token').toEqual([CREDENTIALS.refreshToken, CREDENTIALS.refreshToken])
    expect(hanging.grantRevoked).toBe(false)
    // The bound: the record's deadline (timeoutMs + leaseMs after the claim, before the kill), a
    // poll, and the refresh and write on a busy machine (allowed 1,000 ms).
    expect(takeoverMs).toBeLessThan(timeoutMs + leaseMs + 1000)
  })

  for (const point of PAUSE_POINTS) {
    it(`a holder stopped past its lease ${point === 'server' ? 'while the server holds its answer' : `at "${point}"`}, then continued: no spent refresh token presented, the grant alive, storage on the newest refresh token`, async () => {
      const leaseMs = 1000
      const rotating = await server({ revokeOnReuse: true })
      const holders = place()
      const config = { ...holderConfig(rotating, ''), leaseMs, lock: true }
      const answers = await pauseAt(holders, rotating, config, point, leaseMs + 600)
      expect(answers.map((answer) => answer.error)).toEqual([undefined, undefined, undefined])
      const sent = sentRefreshTokens(rotating)
      expect(new Set(sent).size, `no refresh token sent twice: ${sent.length} sent`).toBe(sent.length)
      await expectAliveAndNewest(holders, rotating, config)
    })
  }

  it('a holder stopped past its in-flight deadline, before writing its answer, against a provider with a grace period: storage never rolls back', async () => {
    const leaseMs = 1000
    const timeoutMs = 1000
    const graceful = await server({ revokeOnReuse: true, graceMs: 60_000 })
    const holders = place()
    const config = { ...holderConfig(graceful, ''), leaseMs, timeoutMs, lock: true }
    // The others wait out its lease and its record (timeoutMs + leaseMs), then send the spent token.
    const answers = await pauseAt(holders, graceful, config, 'answer', timeoutMs + 2 * leaseMs + 1000)
    expect(answers.every((answer) => answer.token)).toBe(true)
    expect(sentRefreshTokens(graceful), 'the documented window: the spent token, sent again past the deadline').toEqual([CREDENTIALS.refreshToken, CREDENTIALS.refreshToken])
    await expectAliveAndNewest(holders, graceful, config)
  })

  it('Redis restarted mid-run: StorageErrors while it is down, tokens again once it is back, the grant kept', async () => {
    const { createRefreshClient, StorageError } = await import(entries.core)
    const { redisStorage } = await import(entries.redis)
    const rotating = await server({ revokeOnReuse: true })
    const connection = createClient({ url: redis.url, disableOfflineQueue: true, socket: { reconnectStrategy: 50 } })
    connection.on('error', () => undefined)
    await connection.connect()
    try {
      const client = createRefreshClient({ ...CREDENTIALS, tokenUrl: rotating.tokenUrl, storage: redisStorage(connection, { commandTimeoutMs: 500 }) })
      await client.getAccessToken()
      await redis.stop()
      for (let i = 0; i < 3; i++) {
        const error = await client.getAccessToken({ forceRefresh: true }).catch((e: unknown) => e)
        expect(error).toBeInstanceOf(StorageError)
      }
      expect(rotating.tokenRequests, 'no token request while storage cannot be read').toHaveLength(1)
      await redis.start()
      // The restarted server is empty (no persistence): the client's grant in memory carries on.
      let token: string | undefined
      for (let tries = 0; !token && tries < 100; tries++) {
        token = await client.getAccessToken({ forceRefresh: true }).catch(() => new Promise<undefined>((resolve) => setTimeout(resolve, 50)))
      }
      expect(token).toBeDefined()
      expect(rotating.grantRevoked).toBe(false)
      const stored = JSON.parse((await connection.get(Object.values(await connection.keys('oauth-refresh:*')).find((key) => !key.includes('}:'))!))!)
      expect(stored.refreshToken).toBe(rotating.validRefreshToken)
    } finally {
      connection.destroy()
    }
  })
})
