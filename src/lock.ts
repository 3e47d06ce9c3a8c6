import { TokenRequestError } from './errors.js'
import type { Lease, TokenStorage } from './storage/types.js'

interface LockManager {
  request<T>(name: string, options: { signal?: AbortSignal }, run: () => Promise<T>): Promise<T>
}

/**
 * Runs `task`, the refresh of the grant stored under `key`, under the lock that keeps it the only
 * one wherever the grant's holders run: the storage's own lock when it has one (every process
 * sharing that storage), else the origin's Web Locks (tabs and workers), else none, where the
 * client's single flight is all there is. Web Locks that refuse (a sandboxed frame) count as none.
 *
 * `boundMs`, longer than any refresh may take, bounds a Web Lock: the wait for it (then a
 * `TIMEOUT` error, the task never run) and the hold (then the lock is given up while the task runs
 * on). A Web Lock ends only when its holder settles, so a refresh stuck in a frozen tab or on a
 * storage call that never settles would otherwise block every context of the origin for good.
 * A storage lock is a lease and ends by itself.
 * `task` gets the storage lock's `Lease`, when it hands one.
 */
export function exclusive<T>(storage: TokenStorage, key: string, task: (lease?: Lease) => Promise<T>, boundMs?: number): Promise<T> {
  if (storage.lock) return storage.lock(key, task)
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks
  if (!locks) return task()
  let result: Promise<T> | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  const bound = (end: () => void) => {
    if (boundMs) timer = setTimeout(end, boundMs)
  }
  const waiting = new AbortController()
  bound(() => waiting.abort())
  return locks
    .request(`oauth-refresh:${key}`, { signal: waiting.signal }, () => {
      clearTimeout(timer)
      const running = (result = task())
      return new Promise<void>((release: () => void) => {
        bound(release)
        running.then(release, release)
      })
    })
    .then(
      () => result!,
      () => {
        if (result) return result
        if (waiting.signal.aborted) throw new TokenRequestError('TIMEOUT', `No lock after ${boundMs} ms`)
        return task()
      },
    )
    .finally(() => clearTimeout(timer))
}
