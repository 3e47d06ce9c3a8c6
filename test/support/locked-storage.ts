import { memoryStorage, type TokenStorage } from '../../src/index.js'

/**
 * One memory storage with one lock, shared by several clients as processes share a Deno KV file
 * or a Redis: each `lock` task runs after the one before has settled.
 */
export function lockedStorage(): TokenStorage & { locks: string[] } {
  const base = memoryStorage()
  let queue = Promise.resolve()
  const locks: string[] = []
  return {
    ...base,
    locks,
    lock(key, task) {
      locks.push(key)
      const run = queue.then(() => task())
      queue = run.then(
        () => undefined,
        () => undefined,
      )
      return run
    },
  }
}
