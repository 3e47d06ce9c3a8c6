import { afterEach, describe, expect, it, vi } from 'vitest'
import { createRefreshClient } from '../src/client.js'
import { StorageError } from '../src/errors.js'
import { exclusive } from '../src/lock.js'
import { memoryStorage } from '../src/storage/memory.js'
import type { Lease, TokenStorage } from '../src/storage/types.js'
import { demoClient, serve } from './support/loopback.js'

afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

/** Web Locks that record each request's name and grant it, or refuse it with `refusal`. */
function webLocks(refusal?: Error) {
  const names: string[] = []
  const request = (name: string, _options: object, run: () => Promise<unknown>) => {
    names.push(name)
    return refusal ? Promise.reject(refusal) : run()
  }
  vi.stubGlobal('navigator', { locks: { request } })
  return names
}

/**
 * A small Web Locks manager: one holder at a time, first come first served; a request whose
 * `signal` aborts before its turn leaves the queue with an AbortError, as `navigator.locks` does.
 */
function fifoLocks() {
  let tail: Promise<void> = Promise.resolve()
  const request = <T>(_name: string, options: { signal?: AbortSignal }, run: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      const turn = tail
      let release!: () => void
      tail = new Promise((done) => (release = done))
      const { signal } = options
      signal?.addEventListener('abort', () => reject(new DOMException('The request was aborted', 'AbortError')))
      void turn.then(() => {
        if (signal?.aborted) return release()
        run().then(resolve, reject).finally(release)
      })
    })
  vi.stubGlobal('navigator', { locks: { request } })
}

/** A task that records when it starts and finishes, settling when `finish` is called (or never). */
function recordedTask(name: string, log: string[]) {
  let finish!: (value: string) => void
  const task = vi.fn(() => {
    log.push(`${name} starts`)
    return new Promise<string>((resolve) => (finish = resolve)).then((value) => {
      log.push(`${name} ends`)
      return value
    })
  })
  return { task, finish: (value: string) => finish(value) }
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

  describe('with a bound (a Web Lock held by a refresh that never finishes)', () => {
    const BOUND = 1_000

    /** A refresh named `name` takes the lock; 10 ms later another one asks for it. */
    async function holderThenWaiter(name: string) {
      vi.useFakeTimers()
      fifoLocks()
      const log: string[] = []
      const holder = recordedTask(name, log)
      const next = recordedTask('next', log)
      const first = exclusive(memoryStorage(), 'grant', holder.task, BOUND)
      await vi.advanceTimersByTimeAsync(10)
      return { log, holder, next, first, second: exclusive(memoryStorage(), 'grant', next.task, BOUND) }
    }

    it('gives the lock up once the holder has held it for the bound, and the next refresh runs then', async () => {
      const { log, holder: hung, next, first, second } = await holderThenWaiter('hung')
      await vi.advanceTimersByTimeAsync(BOUND - 20)
      expect(log).toEqual(['hung starts'])
      await vi.advanceTimersByTimeAsync(20)
      expect(log).toEqual(['hung starts', 'next starts'])
      next.finish('token')
      await expect(second).resolves.toBe('token')
      // The hung refresh is not cancelled: its caller still gets its outcome if it ever comes.
      hung.finish('late')
      await expect(first).resolves.toBe('late')
      expect(vi.getTimerCount(), 'no timer is left behind').toBe(0)
    })

    it('never lets a second refresh start while a holder works within the bound', async () => {
      const { log, holder: slow, next, first, second } = await holderThenWaiter('slow')
      await vi.advanceTimersByTimeAsync(BOUND - 20)
      slow.finish('slow token')
      await vi.advanceTimersByTimeAsync(0)
      expect(log).toEqual(['slow starts', 'slow ends', 'next starts'])
      next.finish('next token')
      await expect(Promise.all([first, second])).resolves.toEqual(['slow token', 'next token'])
      expect(vi.getTimerCount(), 'no timer is left behind').toBe(0)
    })

    it('stops waiting for a lock held past the bound with a TIMEOUT, and never runs the task', async () => {
      vi.useFakeTimers()
      fifoLocks()
      const log: string[] = []
      // An unbounded holder, as an older version of the SDK in another tab would be.
      const hung = recordedTask('hung', log)
      void exclusive(memoryStorage(), 'grant', hung.task)
      await vi.advanceTimersByTimeAsync(10)
      const next = recordedTask('next', log)
      const waiter = exclusive(memoryStorage(), 'grant', next.task, BOUND)
      let failure: unknown
      waiter.catch((error: unknown) => (failure = error))
      await vi.advanceTimersByTimeAsync(BOUND)
      expect(failure).toMatchObject({ name: 'TokenRequestError', code: 'TIMEOUT' })
      hung.finish('late')
      await vi.advanceTimersByTimeAsync(0)
      expect(next.task).not.toHaveBeenCalled()
    })
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
