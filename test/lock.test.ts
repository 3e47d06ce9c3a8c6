import { afterEach, describe, expect, it, vi } from 'vitest'
import { createRefreshClient } from '../src/client.js'
import { StorageError } from '../src/errors.js'
import { exclusive } from '../src/lock.js'
import { memoryStorage } from '../src/storage/memory.js'
import type { Lease, TokenStorage } from '../src/storage/types.js'
import { demoClient, serve } from './support/loopback.js'

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

/** A memory storage whose lock hands its task a scripted Lease, logging each claim and write. */
function leasingStorage(claim: (refreshToken: string, timeoutMs: number) => Promise<boolean> = async () => true, refuseWrites = false) {
  const base = memoryStorage()
  const log: string[] = []
  const lease = (key: string): Lease => ({
    async claim(refreshToken, timeoutMs) {
      log.push(`claim ${refreshToken} ${timeoutMs}`)
      return claim(refreshToken, timeoutMs)
    },
    async set(value) {
      log.push(`set ${value.refreshToken}`)
      if (refuseWrites) throw new StorageError('refused')
      await base.set(key, value)
    },
  })
  const storage: TokenStorage = { ...base, lock: (key, task) => task(lease(key)) }
  return { base, storage, log }
}

describe('a refresh under a lock that hands a Lease', () => {
  it('claims before each send, a retry included, with the token it sends and the request timeout, and stores the answer through the lease', async () => {
    const server = await serve({ rotate: true })
    const { storage, base, log } = leasingStorage()
    server.fault({ status: 503 })
    const client = createRefreshClient(demoClient(server, { storage, storageKey: 'grant', timeoutMs: 4321 }))
    await client.getAccessToken()
    expect(server.tokenHits).toBe(2)
    expect(log).toEqual(['claim demo-refresh-token 4321', 'claim demo-refresh-token 4321', `set ${server.validRefreshToken}`])
    expect((await base.get('grant'))?.refreshToken).toBe(server.validRefreshToken)
  })

  it('sends nothing when the claim finds the grant changed, and takes the grant another holder stored', async () => {
    const server = await serve({ rotate: true, revokeOnReuse: true })
    const stored = { accessToken: 'at-from-another-holder', refreshToken: 'rt-other', obtainedAt: Date.now(), expiresAt: Date.now() + 3_600_000, grantId: 'g' }
    const { storage, base, log } = leasingStorage(async () => {
      // Another holder refreshed between this holder's read and its claim.
      await base.set('grant', { ...stored, grantId: (await base.get('grant'))?.grantId ?? 'g' })
      return false
    })
    const options = demoClient(server, { storage, storageKey: 'grant' })
    const first = createRefreshClient({ ...options, refreshToken: undefined })
    await base.set('grant', { refreshToken: 'demo-refresh-token', grantId: 'g' })
    expect(await first.getAccessToken()).toBe('at-from-another-holder')
    expect(server.tokenHits).toBe(0)
    expect(log).toEqual(['claim demo-refresh-token 10000'])
  })

  it('hands out the token when the lease refuses the write, and reports the refusal', async () => {
    const server = await serve({ rotate: true })
    const { storage } = leasingStorage(undefined, true)
    const onStorageError = vi.fn()
    const client = createRefreshClient(demoClient(server, { storage, storageKey: 'grant', onStorageError }))
    expect(server.issuedTokens).toContain(await client.getAccessToken())
    expect(onStorageError).toHaveBeenCalledOnce()
    expect(onStorageError.mock.calls[0]![0]).toBeInstanceOf(StorageError)
  })
})
