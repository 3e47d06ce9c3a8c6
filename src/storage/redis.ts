import { ConfigError, StorageError } from '../errors.js'
import { rejectUnknown } from '../option-names.js'
import { hasMethods, parseTokenSet } from './adapter.js'
import { leasedLock, type LeaseSteps, type LockSteps, type Seen } from './lease.js'
import type { TokenStorage } from './types.js'

/** The part of a node-redis v5 client (`createClient()` from `redis`) the adapter uses. */
export interface NodeRedisLike {
  sendCommand(args: string[]): Promise<unknown>
}

/** The part of an ioredis v5 client (`new Redis()`) the adapter uses. */
export interface IORedisLike {
  call(command: string, args: string[]): Promise<unknown>
}

/** A Redis (or Valkey) client, typed structurally: a node-redis v5 or an ioredis v5 client fits as it is. */
export type RedisLike = NodeRedisLike | IORedisLike

/** How grants and their locks are laid out in Redis, and how long the adapter waits for it. */
export interface RedisStorageOptions {
  /** A string put before every key the adapter uses. Default `'oauth-refresh:'`. */
  prefix?: string
  /**
   * How long the refresh lock outlives its holder's last renewal, in milliseconds: a process that
   * dies holding it blocks the grant that long. The holder renews it every third of this.
   * Default 10,000; at least 100.
   */
  leaseMs?: number
  /**
   * The longest wait for one Redis call, in milliseconds; a call still unanswered then rejects
   * with a `StorageError`. Both clients queue commands while disconnected, by default for ever.
   * Default 2,000.
   */
  commandTimeoutMs?: number
}

const MIN_MS = 100
const MAX_MS = 2 ** 31 - 1

// A grant is stored as JSON text. A claim compares the grant with the text the holder read
// ('1' and the text), or with none ('0'): -1, changed; 0, recorded; more, wait that many ms.
// KEYS: lease, grant, record. ARGV: holder, has read, read, refresh token, record ms, lease ms.
const CLAIM = `
local grant = redis.call('GET', KEYS[2])
if (ARGV[2] == '1' and grant ~= ARGV[3]) or (ARGV[2] == '0' and grant) then return -1 end
local mine = ARGV[1] .. '\\n' .. ARGV[4]
local record = redis.call('GET', KEYS[3])
local lease = redis.call('GET', KEYS[1])
if record ~= mine then
  if record and string.sub(record, string.find(record, '\\n', 1, true) + 1) == ARGV[4] then
    return math.max(redis.call('PTTL', KEYS[3]), 1)
  end
  if lease and lease ~= ARGV[1] then return math.max(redis.call('PTTL', KEYS[1]), 1) end
end
if not lease or lease == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[6]) end
redis.call('SET', KEYS[3], mine, 'PX', ARGV[5])
return 0`

// KEYS: grant, record. ARGV: holder, has read, read, new text. 1 when the grant is the new text.
const REPLACE = `
local grant = redis.call('GET', KEYS[1])
if grant == ARGV[4] then return 1 end
if (ARGV[2] == '1' and grant ~= ARGV[3]) or (ARGV[2] == '0' and grant) then return 0 end
redis.call('SET', KEYS[1], ARGV[4])
local record = redis.call('GET', KEYS[2])
if record and string.sub(record, 1, #ARGV[1] + 1) == ARGV[1] .. '\\n' then redis.call('DEL', KEYS[2]) end
return 1`

// KEYS: lease. ARGV: holder, lease ms (renews) or nothing (deletes).
const IF_HELD = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('DEL', KEYS[1])`

/**
 * A `TokenStorage` that keeps grants in Redis (or Valkey) as JSON text under `prefix + '{' +
 * storageKey + '}'`, with a lock that keeps one refresh at a time across every process and
 * machine sharing the server: a Node service on several machines, a queue worker and its cron job.
 *
 * The lock is a lease: `SET … NX PX leaseMs` takes it, its holder renews it every `leaseMs / 3`
 * by a Lua script that first compares the holder, and deletes it the same way when done. Its
 * task gets a {@link Lease}: before each token request one script checks that this holder still
 * holds the lease (or takes it back if free), that the grant is the text the holder read, and
 * that no other holder's in-flight record for that refresh token is live, then records its own
 * until the request's timeout plus `leaseMs`; the answer is written by a script that compares the
 * grant with the text read first. Redis's clock times every lease and record.
 *
 * So a holder that pauses (GC, a suspended VM) for less than its record's time costs nothing, and
 * a process killed holding the lock blocks the grant for at most `leaseMs` plus, if it died with
 * a request out, the request's timeout plus `leaseMs`. Keys of one grant share a hash tag (one
 * cluster slot, as a script's keys must be); only a single Redis server is tested.
 *
 * Every Redis call is bounded by `commandTimeoutMs`; a failure, a timeout, and a stored value that
 * is not a token set reject with a `StorageError`. Turn the client's offline queue off
 * (`disableOfflineQueue: true` in node-redis, `enableOfflineQueue: false` in ioredis) so that a
 * command given up on is not sent later. Bad options, unknown ones included, throw a `ConfigError`.
 *
 * @example
 * import { createClient } from 'redis'
 * import { createRefreshClient } from 'oauth-refresh'
 * import { redisStorage } from 'oauth-refresh/redis'
 *
 * const redis = await createClient({ url: process.env.REDIS_URL, disableOfflineQueue: true }).connect()
 * const client = createRefreshClient({
 *   tokenUrl: 'https://auth.example.com/oauth/token',
 *   clientId: process.env.CLIENT_ID!,
 *   refreshToken: process.env.REFRESH_TOKEN,
 *   storage: redisStorage(redis),
 * })
 * @see https://redis.io/docs/latest/develop/use/patterns/distributed-locks/
 */
export function redisStorage(client: RedisLike, options: RedisStorageOptions = {}): TokenStorage {
  const ioredis = hasMethods(client, ['call'])
  if (!ioredis && !hasMethods(client, ['sendCommand'])) throw new ConfigError('"client" must be a node-redis client (sendCommand) or an ioredis client (call)')
  rejectUnknown(options, ['prefix', 'leaseMs', 'commandTimeoutMs'])
  const { prefix = 'oauth-refresh:', leaseMs = 10_000, commandTimeoutMs = 2000 } = options
  if (typeof prefix !== 'string') throw new ConfigError('"prefix" must be a string')
  for (const [name, value] of [['leaseMs', leaseMs], ['commandTimeoutMs', commandTimeoutMs]] as const) {
    if (!(Number.isInteger(value) && value >= MIN_MS && value <= MAX_MS)) throw new ConfigError(`"${name}" must be an integer from ${MIN_MS} to ${MAX_MS}`)
  }
  const send = ioredis
    ? ([command, ...args]: string[]) => (client as IORedisLike).call(command!, args)
    : (args: string[]) => (client as NodeRedisLike).sendCommand(args)
  const keys = (key: string) => {
    const tag = `${prefix}{${key}}`
    return { grant: tag, lease: `${tag}:lock`, record: `${tag}:inflight` }
  }

  /** One Redis command, bounded in time; any failure is a StorageError without the command (it may hold tokens). */
  function command(what: string, args: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const fail = (reason: string) => reject(new StorageError(`Redis ${what} failed: ${reason}`))
      const timer = setTimeout(() => fail(`no answer within ${commandTimeoutMs} ms`), commandTimeoutMs)
      let sent: Promise<unknown>
      try {
        sent = Promise.resolve(send(args))
      } catch (error) {
        sent = Promise.reject(error)
      }
      sent.then(resolve, (error: unknown) => fail(error instanceof Error ? error.message : 'rejected')).finally(() => clearTimeout(timer))
    })
  }
  const script = (what: string, source: string, scriptKeys: string[], args: string[]) =>
    command(what, ['EVAL', source, String(scriptKeys.length), ...scriptKeys, ...args]) as Promise<number>
  const hasRead = (text: string | null | undefined) => (typeof text === 'string' ? ['1', text] : ['0', ''])

  function lockSteps(key: string): LockSteps {
    const { lease } = keys(key)
    return {
      async take(holder) {
        if ((await command('lock', ['SET', lease, holder, 'NX', 'PX', String(leaseMs)])) !== null) return true
        return Math.max(Number(await command('lock', ['PTTL', lease])), 1)
      },
      renew: async (holder) => void (await script('lock renewal', IF_HELD, [lease], [holder, String(leaseMs)])),
      release: async (holder) => void (await script('unlock', IF_HELD, [lease], [holder])),
    }
  }

  function leaseSteps(key: string, holder: string, read: Seen<string>): LeaseSteps {
    const { grant, lease, record } = keys(key)
    return {
      async claim(refreshToken, recordMs) {
        if (read.version === undefined) return false
        const step = await script('claim', CLAIM, [lease, grant, record], [holder, ...hasRead(read.version), refreshToken, String(recordMs), String(leaseMs)])
        return step === 0 || (step > 0 && step)
      },
      async replace(value) {
        const text = JSON.stringify(value)
        const stored = (await script('write', REPLACE, [grant, record], [holder, ...hasRead(read.version), text])) === 1
        if (stored) read.version = text
        return stored
      },
    }
  }

  const leased = leasedLock(leaseMs, lockSteps, leaseSteps)
  return {
    async get(key) {
      const text = (await command('get', ['GET', keys(key).grant])) as string | null
      leased.saw(key, text)
      return text === null ? undefined : parseTokenSet(text, 'Redis')
    },
    async set(key, value) {
      await command('set', ['SET', keys(key).grant, JSON.stringify(value)])
    },
    async delete(key) {
      await command('delete', ['DEL', keys(key).grant])
      leased.saw(key, null)
    },
    lock: leased.lock,
  }
}
