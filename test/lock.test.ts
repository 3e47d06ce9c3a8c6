import { afterEach, describe, expect, it, vi } from 'vitest'
import { exclusive } from '../src/lock.js'
import { memoryStorage } from '../src/storage/memory.js'
import type { TokenStorage } from '../src/storage/types.js'

afterEach(() => {
  vi.unstubAllGlobals()
})

/** Web Locks that record each request's name and grant it, or refuse it with `refusal`. */
function webLocks(refusal?: Error) {
  const names: string[] = []
  const request = (name: string, run: () => Promise<unknown>) => {
    names.push(name)
    return refusal ? Promise.reject(refusal) : run()
  }
  vi.stubGlobal('navigator', { locks: { request } })
  return names
}

/** A storage whose lock records each key and runs the task, or fails with `failure` without running it. */
function lockingStorage(failure?: Error) {
  const keys: string[] = []
  const storage: TokenStorage = {
    ...memoryStorage(),
    async lock(key, task) {
      keys.push(key)
      if (failure) throw failure
      return task()
    },
  }
  return { storage, keys }
}

describe('exclusive', () => {
  it("runs the task under the storage's own lock for the grant's key, not under Web Locks", async () => {
    const names = webLocks()
    const { storage, keys } = lockingStorage()
    await expect(exclusive(storage, 'grant-a', async () => 'token')).resolves.toBe('token')
    expect(keys).toEqual(['grant-a'])
    expect(names).toEqual([])
  })

  it("gives back the task's failure under the storage's lock, running it once", async () => {
    const { storage } = lockingStorage()
    const task = vi.fn(() => Promise.reject(new Error('refresh failed')))
    await expect(exclusive(storage, 'grant', task)).rejects.toThrow('refresh failed')
    expect(task).toHaveBeenCalledOnce()
  })

  it('never runs the task without the storage lock when taking that lock fails', async () => {
    webLocks()
    const { storage } = lockingStorage(new Error('lease unavailable'))
    const task = vi.fn(async () => 'token')
    await expect(exclusive(storage, 'grant', task)).rejects.toThrow('lease unavailable')
    expect(task).not.toHaveBeenCalled()
  })

  it("takes the origin's Web Lock named after the key where the storage has no lock", async () => {
    const names = webLocks()
    await expect(exclusive(memoryStorage(), 'grant-b', async () => 'token')).resolves.toBe('token')
    expect(names).toEqual(['oauth-refresh:grant-b'])
  })

  it('runs the task without a lock where Web Locks refuse it (a sandboxed frame)', async () => {
    const names = webLocks(new DOMException('opaque origin', 'SecurityError'))
    const task = vi.fn(async () => 'token')
    await expect(exclusive(memoryStorage(), 'grant', task)).resolves.toBe('token')
    expect(names).toHaveLength(1)
    expect(task).toHaveBeenCalledOnce()
  })

  it("gives back the task's failure under a Web Lock without running it again", async () => {
    webLocks()
    const task = vi.fn(() => Promise.reject(new Error('refresh failed')))
    await expect(exclusive(memoryStorage(), 'grant', task)).rejects.toThrow('refresh failed')
    expect(task).toHaveBeenCalledOnce()
  })

  it('runs the task as it is where there is neither a storage lock nor Web Locks', async () => {
    vi.stubGlobal('navigator', undefined)
    const task = vi.fn(async () => 'token')
    await expect(exclusive(memoryStorage(), 'grant', task)).resolves.toBe('token')
    expect(task).toHaveBeenCalledOnce()
  })
})
