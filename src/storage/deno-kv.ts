import { ConfigError } from '../errors.js'
import { rejectUnknown } from '../option-names.js'
import { asTokenSet, backendCall, hasMethods } from './adapter.js'
import { jitter, leasedLock, sleep, type LeaseSteps, type LockSteps, type Seen } from './lease.js'
import type { TokenStorage } from './types.js'

/** A part of a Deno KV key. */
export type DenoKVKeyPart = string | number | bigint | boolean | Uint8Array
/** A Deno KV key: an array of parts. */
export type DenoKVKey = readonly DenoKVKeyPart[]

/** The part of a `Deno.AtomicOperation` the adapter uses. */
export interface DenoKVAtomicLike {
  check(...checks: { key: DenoKVKey; versionstamp: string | null }[]): DenoKVAtomicLike
  set(key: DenoKVKey, value: unknown): DenoKVAtomicLike
  delete(key: DenoKVKey): DenoKVAtomicLike
  commit(): Promise<{ ok: boolean; versionstamp?: string }>
}

/**
 * The part of a `Deno.Kv` the adapter uses, typed structurally so that the package needs no Deno
 * types: `await Deno.openKv()` fits.
 */
export interface DenoKVLike {
  get(key: DenoKVKey): Promise<{ value: unknown; versionstamp: string | null }>
  set(key: DenoKVKey, value: unknown): Promise<unknown>
  delete(key: DenoKVKey): Promise<void>
  atomic(): DenoKVAtomicLike
}

/** How grants and their locks are laid out in Deno KV. */
export interface DenoKVStorageOptions {
  /** Key parts before every grant's key. Default `['oauth-refresh']`. */
  prefix?: DenoKVKey
  /**
   * How long the refresh lock outlives its holder's last renewal, in milliseconds: a process that
   * dies holding it blocks the grant that long. The holder renews it every third of this.
   * Default 10,000; at least 100.
   */
  leaseMs?: number
}

const MIN_LEASE_MS = 100
const MAX_LEASE_MS = 2 ** 31 - 1
// "database is locked": SQLite's busy error, frequent when several processes share one file.
const BUSY_ATTEMPTS = 20
const BUSY_MAX_DELAY_MS = 250

/** A lease or an in-flight record, as stored: who holds it, and until when (epoch ms). */
interface Held {
  holder: string
  expiresAt: number
  /** In a record: the refresh token in flight. */
  refreshToken?: string
}

const isLive = (value: unknown, now: number): value is Held => typeof (value as Held | null)?.expiresAt === 'number' && (value as Held).expiresAt > now

/**
 * A `TokenStorage` that keeps grants in Deno KV under `[...prefix, storageKey]`, with a lock that
 * keeps one refresh at a time across every process and isolate sharing the database: a local KV
 * file used by several `deno run`s (cron jobs, overlapping runs) or Deno Deploy's KV.
 *
 * The lock is a lease: an atomic `check` on the versionstamp of `[...prefix, storageKey, 'lock']`
 * takes it, its holder renews it every `leaseMs / 3` while the refresh runs and deletes it when
 * done. Waiters look again every `min(leaseMs / 4, 100)` ms or so. Leases compare the clocks of
 * the processes involved, which must agree to well within `leaseMs`.
 *
 * Its task gets a {@link Lease}: before each token request the holder records "this refresh token
 * in flight until the request's timeout plus `leaseMs`" under `[...prefix, storageKey, 'inflight']`
 * in one atomic commit that checks the lease, the grant's versionstamp as the holder read it and
 * any other holder's record; the answer is stored only while the grant still has that
 * versionstamp. So a holder that pauses (GC, a suspended VM) for less than its record's time
 * costs nothing, and a process killed holding the lock blocks the grant for at most `leaseMs`
 * plus, if it died with a request out, the request's timeout plus `leaseMs`.
 *
 * Local KV is SQLite: with several processes on one file, operations often fail with
 * `TypeError: database is locked`. That is retried with backoff (for about 3 s); any other KV
 * failure, and a stored value that is not an object, reject with a `StorageError`. Bad options,
 * unknown ones included, throw a `ConfigError`.
 *
 * @example
 * import { createRefreshClient } from 'oauth-refresh'
 * import { denoKVStorage } from 'oauth-refresh/deno-kv'
 *
 * const client = createRefreshClient({
 *   tokenUrl: 'https://auth.example.com/oauth/token',
 *   clientId: Deno.env.get('CLIENT_ID')!,
 *   refreshToken: Deno.env.get('REFRESH_TOKEN'),
 *   storage: denoKVStorage(await Deno.openKv()),
 * })
 * @see https://docs.deno.com/api/deno/~/Deno.Kv
 */
export function denoKVStorage(kv: DenoKVLike, options: DenoKVStorageOptions = {}): TokenStorage {
  if (!hasMethods(kv, ['get', 'set', 'delete', 'atomic'])) throw new ConfigError('"kv" must be a Deno.Kv with get, set, delete and atomic methods')
  rejectUnknown(options, ['prefix', 'leaseMs'])
  const { prefix = ['oauth-refresh'], leaseMs = 10_000 } = options
  if (!Array.isArray(prefix) || !prefix.every(isKeyPart)) {
    throw new ConfigError('"prefix" must be an array of Deno KV key parts (strings, numbers, bigints, booleans, Uint8Arrays)')
  }
  if (!(Number.isInteger(leaseMs) && leaseMs >= MIN_LEASE_MS && leaseMs <= MAX_LEASE_MS)) {
    throw new ConfigError(`"leaseMs" must be an integer from ${MIN_LEASE_MS} to ${MAX_LEASE_MS}`)
  }
  const grantKey = (key: string): DenoKVKey => [...prefix, key]
  const leaseKey = (key: string): DenoKVKey => [...prefix, key, 'lock']
  const recordKey = (key: string): DenoKVKey => [...prefix, key, 'inflight']
  const get = (key: DenoKVKey) => call('get', () => kv.get(key))
  const commit = (operation: () => DenoKVAtomicLike) => call('atomic commit', () => operation().commit())

  function lockSteps(storageKey: string): LockSteps {
    const key = leaseKey(storageKey)
    // The lease is made at each attempt: one that waited out "database is locked" starts when written.
    const lease = (holder: string) => ({ holder, expiresAt: Date.now() + leaseMs })
    /** Commits `change` if `holder` holds the lease as read now. */
    const ifHeld = async (holder: string, change: (operation: DenoKVAtomicLike) => DenoKVAtomicLike) => {
      const { value, versionstamp } = await get(key)
      if ((value as Held | null)?.holder === holder) await commit(() => change(kv.atomic().check({ key, versionstamp })))
    }
    return {
      async take(holder) {
        const { value, versionstamp } = await get(key)
        if (isLive(value, Date.now())) return value.expiresAt - Date.now()
        return (await commit(() => kv.atomic().check({ key, versionstamp }).set(key, lease(holder)))).ok || 0
      },
      renew: (holder) => ifHeld(holder, (operation) => operation.set(key, lease(holder))),
      release: (holder) => ifHeld(holder, (operation) => operation.delete(key)),
    }
  }

  function leaseSteps(key: string, holder: string, read: Seen<string>): LeaseSteps {
    return {
      async claim(refreshToken, recordMs) {
        const [lease, grant, record] = [await get(leaseKey(key)), await get(grantKey(key)), await get(recordKey(key))]
        const checks = [{ key: leaseKey(key), versionstamp: lease.versionstamp }, { key: grantKey(key), versionstamp: grant.versionstamp }, { key: recordKey(key), versionstamp: record.versionstamp }]
        if (grant.versionstamp !== read.version) return false
        const now = Date.now()
        const recorded = isLive(record.value, now) && record.value.refreshToken === refreshToken ? record.value : undefined
        if (recorded && recorded.holder !== holder) return recorded.expiresAt - now
        const another = isLive(lease.value, now) && lease.value.holder !== holder ? lease.value : undefined
        if (another && !recorded) return another.expiresAt - now
        const { ok } = await commit(() => {
          const operation = kv.atomic().check(...checks)
          operation.set(recordKey(key), { holder, refreshToken, expiresAt: Date.now() + recordMs })
          return another ? operation : operation.set(leaseKey(key), { holder, expiresAt: Date.now() + leaseMs })
        })
        return ok || 0
      },
      async replace(value) {
        for (;;) {
          const [grant, record] = [await get(grantKey(key)), await get(recordKey(key))]
          if (grant.versionstamp !== read.version) {
            // Written already, by an attempt whose answer was lost?
            const written = JSON.stringify(grant.value) === JSON.stringify(value)
            if (written) read.version = grant.versionstamp
            return written
          }
          const result = await commit(() => {
            const operation = kv.atomic().check({ key: grantKey(key), versionstamp: grant.versionstamp }, { key: recordKey(key), versionstamp: record.versionstamp }).set(grantKey(key), value)
            return (record.value as Held | null)?.holder === holder ? operation.delete(recordKey(key)) : operation
          })
          if (result.ok) {
            read.version = result.versionstamp ?? null
            return true
          }
        }
      },
    }
  }

  const leased = leasedLock(leaseMs, lockSteps, leaseSteps)
  return {
    async get(key) {
      const { value, versionstamp } = await get(grantKey(key))
      leased.saw(key, versionstamp)
      return value === null ? undefined : asTokenSet(value, 'Deno KV')
    },
    async set(key, value) {
      await call('set', () => kv.set(grantKey(key), value))
    },
    async delete(key) {
      await call('delete', () => kv.delete(grantKey(key)))
      leased.saw(key, null)
    },
    lock: leased.lock,
  }
}

function isKeyPart(part: unknown): part is DenoKVKeyPart {
  return ['string', 'number', 'bigint', 'boolean'].includes(typeof part) || part instanceof Uint8Array
}

// Deno throws a TypeError, @deno/kv (Deno KV for Node.js) an Error whose message says more.
const isBusy = (error: unknown) => error instanceof Error && error.message.includes('database is locked')

/** Runs a KV operation, retrying SQLite's busy error with backoff; any other failure is a StorageError. */
function call<T>(operation: string, request: () => Promise<T>): Promise<T> {
  return backendCall(`Deno KV ${operation}`, async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await request()
      } catch (error) {
        if (!isBusy(error) || attempt === BUSY_ATTEMPTS) throw error
      }
      await sleep(jitter(Math.min(2 ** attempt, BUSY_MAX_DELAY_MS)))
    }
  })
}
