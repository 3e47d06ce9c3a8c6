import { createClient } from 'redis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { holderConfig, RACE_SERVER, rotationRace } from '../../bench/figures/deno-kv.mjs'
import { redisPlace } from '../../bench/figures/redis.mjs'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { describeWithRedis, startRedis, type RedisServer } from '../support/redis.js'
import { installPackedPackage, type Consumer } from './support/package.js'
import { describeFailingHolders, expectAliveAndNewest } from './support/pause.js'
import { CREDENTIALS } from './support/scenario.js'

// Node processes on the packed package share one grant in one Redis (redis-server, started here).
let consumer: Consumer
let redis: RedisServer
let entries: { core: string; redis: string }
const servers: LocalServer[] = []
const places: Array<ReturnType<typeof redisPlace>> = []
let ioredisHolders: ReturnType<typeof redisPlace> | undefined

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
    // Tokens of 2 s, refreshed after 1 s: four processes each take the lock in turn well within that.
    const race = await server({ ...RACE_SERVER, expiresIn: 2 })
    const holders = place()
    const run = await rotationRace(holders, race, { kvPath: '', processes: 4, concurrency: 50, rounds, periodMs: 2400, leaseMs: 2000 })
    expect(run.errors).toEqual({})
    expect(run.ok).toBe(4 * 50 * rounds)
    expect(race.tokenRequests, 'one token request per round: the first and 4 expiries').toHaveLength(rounds)
    await expectAliveAndNewest(holders, race, { ...holderConfig(race, ''), leaseMs: 2000, lock: true })
  })

  // ioredis here, node-redis in the race above.
  describeFailingHolders(() => (ioredisHolders ??= place('ioredis')), () => '')

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
