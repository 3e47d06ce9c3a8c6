import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, StorageError } from '../../src/errors.js'
import { redisStorage, type RedisLike } from '../../src/storage/redis.js'
import { describeWithRedis, startRedis, type RedisServer } from '../support/redis.js'
import { describeClientPersistence, describeStorageContract, describeStorageLease, describeStorageLock, fullTokenSet, lockBackend } from './contract.js'

let server: RedisServer
const opened: Array<() => Promise<unknown>> = []

/** A node-redis v5 client on the test's server, with the offline queue off as the README advises. */
async function nodeRedis() {
  const client = createClient({ url: server.url, disableOfflineQueue: true })
  client.on('error', () => undefined)
  await client.connect()
  opened.push(async () => client.destroy())
  return client
}

/** An ioredis v5 client on the test's server, with the offline queue off as the README advises. */
async function ioredis() {
  const client = new Redis(server.port, '127.0.0.1', { enableOfflineQueue: false, lazyConnect: true, maxRetriesPerRequest: 1 })
  client.on('error', () => undefined)
  await client.connect()
  opened.push(async () => client.disconnect())
  return client
}

const CLIENTS = { 'node-redis': nodeRedis, ioredis } as const

describeWithRedis('redisStorage', () => {
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await Promise.all(opened.splice(0).map((close) => close().catch(() => undefined)))
    await server?.stop()
  })

  for (const [name, connect] of Object.entries(CLIENTS)) {
    describeStorageContract(`redisStorage (${name})`, async () => redisStorage(await connect()))
    describeClientPersistence(`redisStorage (${name})`, async () => redisStorage(await connect()))
    const backend = lockBackend(async (leaseMs) => {
      const client = await connect()
      return { storage: redisStorage(client, { leaseMs }), close: () => (client instanceof Redis ? client.disconnect() : client.destroy()) }
    })
    describeStorageLock(`redisStorage (${name})`, backend)
    describeStorageLease(`redisStorage (${name})`, backend)
  }

  describe('redisStorage', () => {
    it("stores each grant as JSON text under 'oauth-refresh:{key}' by default, and a custom prefix before every key", async () => {
      const client = await nodeRedis()
      await redisStorage(client).set('grant', fullTokenSet())
      expect(JSON.parse((await client.get('oauth-refresh:{grant}'))!)).toStrictEqual(fullTokenSet())
      const app = redisStorage(client, { prefix: 'tenant-a:' })
      const other = redisStorage(await ioredis(), { prefix: 'tenant-b:' })
      await app.set('grant', fullTokenSet({ grantId: 'a' }))
      expect(await other.get('grant')).toBeUndefined()
      await other.set('grant', fullTokenSet({ grantId: 'b' }))
      await other.delete('grant')
      expect(await app.get('grant')).toStrictEqual(fullTokenSet({ grantId: 'a' }))
      await app.lock!('grant', async () => {
        expect(await client.get('tenant-a:{grant}:lock')).toEqual(expect.any(String))
      })
      expect(await client.exists('tenant-a:{grant}:lock')).toBe(0)
    })

    it('rejects a stored value that is not JSON or not a token set with a StorageError', async () => {
      const client = await ioredis()
      const storage = redisStorage(client, { prefix: 'bad:' })
      await client.set('bad:{text}', 'rt-plain')
      await expect(storage.get('text')).rejects.toMatchObject({ code: 'STORAGE_ERROR', message: 'Redis holds a value that is not JSON' })
      await client.set('bad:{number}', '42')
      await expect(storage.get('number')).rejects.toMatchObject({ code: 'STORAGE_ERROR', message: 'Redis holds a value that is not a token set' })
    })

    it('answers every call with a StorageError within commandTimeoutMs while Redis is unreachable, whatever the offline queue', async () => {
      // Clients with their offline queue on (the default): commands wait for a connection that never comes.
      const queueing = createClient({ url: 'redis://127.0.0.1:1', socket: { reconnectStrategy: 50 } })
      queueing.on('error', () => undefined)
      void queueing.connect().catch(() => undefined)
      const queued = new Redis(1, '127.0.0.1', { retryStrategy: () => 50, maxRetriesPerRequest: null })
      queued.on('error', () => undefined)
      try {
        for (const client of [queueing, queued] as RedisLike[]) {
          const storage = redisStorage(client, { commandTimeoutMs: 200 })
          for (const call of [() => storage.get('grant'), () => storage.set('grant', fullTokenSet()), () => storage.delete('grant'), () => storage.lock!('grant', async () => 'ran')]) {
            const error = await call().catch((e: unknown) => e)
            expect(error).toBeInstanceOf(StorageError)
            expect(error).toMatchObject({ code: 'STORAGE_ERROR', message: expect.stringMatching(/^Redis \w[\w ]* failed: no answer within 200 ms$/) })
          }
        }
      } finally {
        queued.disconnect()
        await queueing.destroy()
      }
    })

    it('keeps tokens out of its errors, even when Redis refuses a command that carries them', async () => {
      const client = await nodeRedis()
      const storage = redisStorage(client, { prefix: 'readonly:' })
      // A key of another type makes Redis refuse the write of the whole token set.
      await client.lPush('readonly:{grant}', 'x')
      const error = await storage.get('grant').catch((e: unknown) => e)
      expect(error).toBeInstanceOf(StorageError)
      const written = await storage.lock!('grant', (lease) => lease!.set(fullTokenSet())).catch((e: unknown) => e)
      expect(written).toBeInstanceOf(StorageError)
      for (const failure of [error, written]) {
        const shown = `${String(failure)} ${JSON.stringify(failure)} ${String((failure as Error).cause)} ${Object.values(failure as object).join(' ')}`
        expect(shown).not.toContain('rt-')
        expect(shown).not.toContain('at-')
      }
    })

    it('throws a ConfigError for a value that is not a Redis client, an unknown option, a bad prefix or a bad number', async () => {
      for (const value of [undefined, null, {}, 'redis', { get() {}, set() {} }]) {
        expect(() => redisStorage(value as unknown as RedisLike)).toThrow(ConfigError)
      }
      const client = await nodeRedis()
      const bad: unknown[] = [null, 'prefix', { leaseMS: 5000 }, { prefix: ['a'] }, { leaseMs: 99 }, { leaseMs: 1000.5 }, { leaseMs: '1000' }, { commandTimeoutMs: 0 }, { commandTimeoutMs: 2 ** 31 }, { ttl: 1 }]
      for (const options of bad) expect(() => redisStorage(client, options as never), JSON.stringify(options)).toThrow(ConfigError)
      expect(() => redisStorage(client, { leaseMS: 5000 } as never)).toThrow('Option "leaseMS" is not a known option; did you mean "leaseMs"?')
      expect(() => redisStorage(client, { leaseMs: 99 })).toThrow('"leaseMs" must be an integer from 100 to 2147483647')
      expect(() => redisStorage(client, { prefix: '', leaseMs: 100, commandTimeoutMs: 100 })).not.toThrow()
    })
  })
})
