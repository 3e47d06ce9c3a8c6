import { StorageError } from '../errors.js'
import type { Lease, StoredTokenSet, TokenStorage } from './types.js'

/** Waits `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** `ms` spread over half to one and a half times itself, so waiters do not move in step. */
export const jitter = (ms: number) => ms * (0.5 + Math.random())

/** A name for one holder of one lease, unique across processes. */
export const newHolder = () => `${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}`

/** An adapter's atomic steps on one key's lease, each done in storage in one go. */
export interface LockSteps {
  /** Takes the lease for `holder` when nobody holds it: `true`, or how many ms the current holder's lease has left. */
  take(holder: string): Promise<true | number>
  /** Extends the lease while `holder` still holds it; leaves another holder's lease alone. */
  renew(holder: string): Promise<void>
  /** Ends the lease if `holder` still holds it. */
  release(holder: string): Promise<void>
}

/**
 * Runs `task` under `steps`' lease: takes it (looking again every `pollMs` or so), renews it
 * every `leaseMs / 3` while `task` runs, and ends it after. A failed renewal is tried again at
 * the next tick (if all fail, the lease lapses by itself); a failed release is harmless.
 */
async function runLeased<T>(steps: LockSteps, leaseMs: number, pollMs: number, task: (holder: string) => Promise<T>): Promise<T> {
  const holder = newHolder()
  for (let taken = await steps.take(holder); taken !== true; taken = await steps.take(holder)) {
    await sleep(jitter(Math.min(Math.max(taken, 1), pollMs)))
  }
  let renewing = Promise.resolve()
  const timer = setInterval(() => (renewing = renewing.then(() => steps.renew(holder)).catch(() => undefined)), leaseMs / 3)
  try {
    return await task(holder)
  } finally {
    clearInterval(timer)
    await renewing
    await steps.release(holder).catch(() => undefined)
  }
}

/**
 * What one atomic claim found: `true`, recorded; `false`, storage no longer holds the grant the
 * holder read; a number, another holder's record or lease is live for that many ms more.
 */
export type ClaimStep = boolean | number

/** An adapter's atomic steps behind a {@link Lease}, for one holder of one key. */
export interface LeaseSteps {
  /** The atomic pre-send step of `Lease.claim`, recording for `recordMs`. */
  claim(refreshToken: string, recordMs: number): Promise<ClaimStep>
  /**
   * Writes `value` if storage still holds the grant the holder read (then it is the grant read
   * from now on, and the holder's in-flight record goes); resolves whether storage holds `value`.
   */
  replace(value: StoredTokenSet): Promise<boolean>
}

const WRITE_RETRY_MAX_MS = 250
const MAX_POLL_MS = 100

/**
 * A {@link Lease} over an adapter's atomic `steps`. A claim's record lasts the request's timeout
 * plus `writeMs`; a waiting claim looks again every `pollMs` or so.
 */
function createLease(steps: LeaseSteps, writeMs: number, pollMs: number): Lease {
  let deadline = 0
  return {
    async claim(refreshToken, timeoutMs) {
      for (;;) {
        const start = Date.now()
        const step = await steps.claim(refreshToken, timeoutMs + writeMs)
        if (step === true) deadline = start + timeoutMs + writeMs
        if (typeof step === 'boolean') return step
        await sleep(jitter(Math.min(Math.max(step, 1), pollMs)))
      }
    },
    async set(value) {
      // The answer exists only in this process: a store that fails is tried until the deadline.
      for (let attempt = 1; ; attempt++) {
        let stored: boolean
        try {
          stored = await steps.replace(value)
        } catch (error) {
          if (Date.now() >= deadline) throw error
          await sleep(jitter(Math.min(10 * 2 ** attempt, WRITE_RETRY_MAX_MS)))
          continue
        }
        if (!stored) throw new StorageError('Storage no longer holds the grant this refresh replaced; the answer was not stored')
        return
      }
    },
  }
}

/** What a holder read of its grant: the adapter's version of it (`null`: none), or `undefined` before the first read. */
export interface Seen<V> {
  version: V | null | undefined
}

/** A storage's lock whose task gets a {@link Lease}, and the note of what each holder read. */
export interface LeasedLock<V> {
  /** Notes that `key`'s grant was read or written with `version`, if a holder of this instance holds `key`'s lease. */
  saw(key: string, version: V | null): void
  lock: NonNullable<TokenStorage['lock']>
}

/**
 * The `lock` of an adapter from its atomic steps: `lockSteps(key)` for the lease, and
 * `leaseSteps` for the claims and writes of one holder, which compare storage with `seen`.
 */
export function leasedLock<V>(
  leaseMs: number,
  lockSteps: (key: string) => LockSteps,
  leaseSteps: (key: string, holder: string, seen: Seen<V>) => LeaseSteps,
): LeasedLock<V> {
  const pollMs = Math.min(leaseMs / 4, MAX_POLL_MS)
  // One holder per key at a time in an instance: the lease keeps the others out.
  const reads = new Map<string, Seen<V>>()
  return {
    saw(key, version) {
      const seen = reads.get(key)
      if (seen) seen.version = version
    },
    lock: (key, task) =>
      runLeased(lockSteps(key), leaseMs, pollMs, async (holder) => {
        const seen: Seen<V> = { version: undefined }
        reads.set(key, seen)
        try {
          return await task(createLease(leaseSteps(key, holder, seen), leaseMs, pollMs))
        } finally {
          reads.delete(key)
        }
      }),
  }
}
