import type { Lease, TokenStorage } from './storage/types.js'

interface LockManager {
  request<T>(name: string, run: () => Promise<T>): Promise<T>
}

/**
 * Runs `task`, the refresh of the grant stored under `key`, under the lock that keeps it the only
 * one wherever the grant's holders run: the storage's own lock when it has one (every process
 * sharing that storage), else the origin's Web Locks (tabs and workers), else none, where the
 * client's single flight is all there is. Web Locks that refuse (a sandboxed frame) count as none.
 * `task` gets the storage lock's `Lease`, when it hands one.
 */
export function exclusive<T>(storage: TokenStorage, key: string, task: (lease?: Lease) => Promise<T>): Promise<T> {
  if (storage.lock) return storage.lock(key, task)
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks
  if (!locks) return task()
  let ran = false
  const locked = () => {
    ran = true
    return task()
  }
  return locks.request(`oauth-refresh:${key}`, locked).catch((error: unknown) => {
    if (ran) throw error
    return task()
  })
}
