import { ConfigError } from '../errors.js'
import { rejectUnknown } from '../option-names.js'
import { asTokenSet, backendCall, hasMethods } from './adapter.js'
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
const MAX_POLL_MS = 100

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const jitter = (ms: number) => ms * (0.5 + Math.random())

/**
 * A `TokenStorage` that keeps grants in Deno KV under `[...prefix, storageKey]`, with a lock that
 * keeps one refresh at a time across every process and isolate sharing the database: a local KV
 * file used by several `deno run`s (cron jobs, overlapping runs) or Deno Deploy's KV.
 *
 * The lock is a lease: an atomic `check` on the versionstamp of `[...prefix, storageKey, 'lock']`
 * takes it, its holder renews it every `leaseMs / 3` while the refresh runs and deletes it when
 * done. A process that dies holding it blocks the grant for at most `leaseMs` after its last
 * renewal; waiters look again every `min(leaseMs / 4, 100)` ms or so. Leases compare the clocks of
 * the processes involved, which must agree to well within `leaseMs`.
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
  const pollMs = Math.min(leaseMs / 4, MAX_POLL_MS)
  const grantKey = (key: string): DenoKVKey => [...prefix, key]
  const leaseKey = (key: string): DenoKVKey => [...prefix, key, 'lock']
  const lease = () => ({ expiresAt: Date.now() + leaseMs })

  /** Commits `[key, next()]` if `key` still has `versionstamp` (`null` deletes it); resolves the new versionstamp, or undefined when the check failed. */
  async function swap(key: DenoKVKey, versionstamp: string | null, next: (() => unknown) | null): Promise<string | undefined> {
    const result = await call('atomic commit', () => {
      const operation = kv.atomic().check({ key, versionstamp })
      // The value is made at each attempt: a lease that waited out "database is locked" starts when written.
      return (next === null ? operation.delete(key) : operation.set(key, next())).commit()
    })
    return result.ok ? result.versionstamp : undefined
  }

  async function acquire(key: DenoKVKey): Promise<string> {
    for (;;) {
      const { value, versionstamp } = await call('get', () => kv.get(key))
      const expiresAt = (value as { expiresAt?: unknown } | null)?.expiresAt
      const remaining = typeof expiresAt === 'number' ? expiresAt - Date.now() : 0
      if (remaining <= 0) {
        const taken = await swap(key, versionstamp, lease)
        if (taken) return taken
      }
      await sleep(jitter(Math.min(Math.max(remaining, 1), pollMs)))
    }
  }

  return {
    async get(key) {
      const { value } = await call('get', () => kv.get(grantKey(key)))
      return value === null ? undefined : asTokenSet(value, 'Deno KV')
    },
    async set(key, value) {
      await call('set', () => kv.set(grantKey(key), value))
    },
    async delete(key) {
      await call('delete', () => kv.delete(grantKey(key)))
    },
    async lock(key, task) {
      const lockKey = leaseKey(key)
      let held: string | undefined = await acquire(lockKey)
      let renewing = Promise.resolve()
      // One renewal at a time, each on the latest versionstamp. A failed one is tried again at
      // the next tick (if they all fail, the lease lapses); a failed check means it was lost.
      const renew = async () => {
        if (held) held = await swap(lockKey, held, lease).catch(() => held)
      }
      const timer = setInterval(() => (renewing = renewing.then(renew)), leaseMs / 3)
      try {
        return await task()
      } finally {
        clearInterval(timer)
        await renewing
        // A failed release is harmless: the lease ends by itself.
        if (held) await swap(lockKey, held, null).catch(() => undefined)
      }
    },
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
