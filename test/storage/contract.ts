import { describe, expect, it, vi } from 'vitest'
import { createRefreshClient, OAuthError, StorageError } from '../../src/index.js'
import type { Lease, StoredTokenSet, TokenStorage } from '../../src/storage/types.js'
import { demoClient, serve } from '../support/loopback.js'

let keyCount = 0
/** A key no other test uses, shaped like the client's own keys (URL, client id, non-ASCII). */
const freshKey = (label: string) => `https://auth.example.com/token#client-é-${label}-${++keyCount}`

/** A token set with every field the client stores, unicode and JSON-hostile text, and long tokens. */
export function fullTokenSet(overrides: Partial<StoredTokenSet> = {}): StoredTokenSet {
  return {
    accessToken: `at-${'x'.repeat(4096)}-🔑-名前-"quoted"-\\back\\slash-\n-\u0000-é`,
    refreshToken: `rt-${'y'.repeat(2048)}-тест-🔁`,
    expiresAt: 1_900_000_000_123,
    obtainedAt: 1_899_999_000_456,
    scope: 'read:äpfel write:🍎 offline_access',
    grantId: 'grant-Ω-1',
    ...overrides,
  }
}

/**
 * The behaviour every `TokenStorage` adapter must show. Each adapter's test file runs it; each
 * test takes a new storage from `makeStorage` and keys of its own.
 */
export function describeStorageContract(name: string, makeStorage: () => TokenStorage | Promise<TokenStorage>): void {
  describe(`${name}: TokenStorage contract`, () => {
    it('resolves undefined for a missing key', async () => {
      const storage = await makeStorage()
      expect(await storage.get(freshKey('missing'))).toBeUndefined()
    })

    it('gives back a full token set exactly as stored', async () => {
      const storage = await makeStorage()
      const key = freshKey('full')
      await storage.set(key, fullTokenSet())
      expect(await storage.get(key)).toStrictEqual(fullTokenSet())
    })

    it('gives back a token set with only the required fields, adding none', async () => {
      const storage = await makeStorage()
      const key = freshKey('minimal')
      await storage.set(key, { refreshToken: 'rt-minimal', grantId: 'g-minimal' })
      expect(await storage.get(key)).toStrictEqual({ refreshToken: 'rt-minimal', grantId: 'g-minimal' })
    })

    it('replaces the whole value on overwrite, keeping no field of the old one', async () => {
      const storage = await makeStorage()
      const key = freshKey('overwrite')
      await storage.set(key, fullTokenSet())
      await storage.set(key, { refreshToken: 'rt-rotated', grantId: 'grant-Ω-1', obtainedAt: 2 })
      expect(await storage.get(key)).toStrictEqual({ refreshToken: 'rt-rotated', grantId: 'grant-Ω-1', obtainedAt: 2 })
    })

    it('deletes a key, and resolves when deleting a missing one', async () => {
      const storage = await makeStorage()
      const key = freshKey('delete')
      await storage.set(key, fullTokenSet())
      await expect(storage.delete(key)).resolves.toBeUndefined()
      expect(await storage.get(key)).toBeUndefined()
      await expect(storage.delete(key)).resolves.toBeUndefined()
      await expect(storage.delete(freshKey('never-set'))).resolves.toBeUndefined()
    })

    it('keeps keys apart, including keys that share a prefix', async () => {
      const storage = await makeStorage()
      const first = freshKey('isolation')
      const second = `${first}:more`
      await storage.set(first, fullTokenSet({ grantId: 'first' }))
      await storage.set(second, fullTokenSet({ grantId: 'second' }))
      expect(await storage.get(first)).toStrictEqual(fullTokenSet({ grantId: 'first' }))
      expect(await storage.get(second)).toStrictEqual(fullTokenSet({ grantId: 'second' }))
      await storage.delete(first)
      expect(await storage.get(first)).toBeUndefined()
      expect(await storage.get(second)).toStrictEqual(fullTokenSet({ grantId: 'second' }))
    })

    it('stores and returns copies, so mutating either object changes nothing stored', async () => {
      const storage = await makeStorage()
      const key = freshKey('copies')
      const written = fullTokenSet()
      await storage.set(key, written)
      written.refreshToken = 'mutated-after-set'
      const read = await storage.get(key)
      read!.refreshToken = 'mutated-after-get'
      delete read!.accessToken
      expect(await storage.get(key)).toStrictEqual(fullTokenSet())
    })

    it('ends concurrent sets to one key with one written value intact', async () => {
      const storage = await makeStorage()
      const key = freshKey('race')
      const values = Array.from({ length: 8 }, (_, i) =>
        fullTokenSet({
          accessToken: `at-${i}-${'a'.repeat(i * 100)}`,
          refreshToken: `rt-${i}`,
          expiresAt: 1_000 + i,
          obtainedAt: 2_000 + i,
          scope: `scope-${i}`,
          grantId: `grant-${i}`,
        }),
      )
      await Promise.all(values.map((value) => storage.set(key, value)))
      const stored = await storage.get(key)
      expect(values).toContainEqual(stored)
    })

    it('persists every one of concurrent sets to different keys', async () => {
      const storage = await makeStorage()
      const entries = Array.from({ length: 8 }, (_, i) => [freshKey(`parallel-${i}`), fullTokenSet({ grantId: `g-${i}` })] as const)
      await Promise.all(entries.map(([key, value]) => storage.set(key, value)))
      for (const [key, value] of entries) expect(await storage.get(key)).toStrictEqual(value)
    })
  })
}

/** How the lock cases get adapter instances over one shared backend, as separate processes would. */
export interface LockBackend {
  /** A new adapter instance, with a lock whose lease lasts `leaseMs` past its holder's last renewal. */
  open(leaseMs: number): TokenStorage | Promise<TokenStorage>
  /** Cuts `storage` off from the backend (closes its connection), as a killed process would be. */
  cutOff(storage: TokenStorage): void | Promise<void>
}

/** A `LockBackend` whose `connect(leaseMs)` opens a connection of its own and an adapter on it; cutting off closes it. */
export function lockBackend(connect: (leaseMs: number) => Promise<{ storage: TokenStorage; close(): unknown }>): LockBackend {
  const closers = new WeakMap<TokenStorage, () => unknown>()
  return {
    async open(leaseMs) {
      const { storage, close } = await connect(leaseMs)
      closers.set(storage, close)
      return storage
    },
    cutOff: async (storage) => void (await closers.get(storage)!()),
  }
}

type Locking = TokenStorage & Required<Pick<TokenStorage, 'lock'>>

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The behaviour of an adapter's `lock`, for adapters that have one. A lease longer than any test
 * here (`LONG_LEASE_MS`) makes a lock that is never released time the test out, rather than
 * pass once the lease ends.
 */
export function describeStorageLock(name: string, backend: LockBackend): void {
  const LONG_LEASE_MS = 60_000
  // Renewed every third of it: long enough for a busy machine to renew in time.
  const SHORT_LEASE_MS = 1000
  const withLock = async (leaseMs: number) => {
    const storage = await backend.open(leaseMs)
    if (!storage.lock) throw new Error(`${name} has no lock`)
    return storage as Locking
  }

  /** Takes `key`'s lock with a task that runs until `release()`; resolves once the task runs. */
  async function hold(storage: Locking, key: string) {
    let started!: () => void
    const running = new Promise<void>((resolve) => (started = resolve))
    let release!: () => void
    const held = storage.lock(key, () => (started(), new Promise<void>((resolve) => (release = resolve))))
    await running
    return { release, held }
  }

  describe(`${name}: TokenStorage lock`, () => {
    it("lets one holder at a time run, across two instances over the same backend, and settles as the task does", async () => {
      const [first, second] = [await withLock(LONG_LEASE_MS), await withLock(LONG_LEASE_MS)]
      const key = freshKey('exclusion')
      let active = 0
      let most = 0
      const task = async (i: number) => {
        most = Math.max(most, ++active)
        await pause(20)
        active--
        return i
      }
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? first : second).lock(key, () => task(i))))
      expect(results).toEqual([0, 1, 2, 3, 4, 5])
      expect(most).toBe(1)
    })

    it('keeps the locks of different keys apart', async () => {
      const [first, second] = [await withLock(LONG_LEASE_MS), await withLock(LONG_LEASE_MS)]
      const key = freshKey('apart')
      const { release, held } = await hold(first, key)
      await expect(second.lock(`${key}:other`, async () => 'other')).resolves.toBe('other')
      release()
      await held
    })

    it("releases the lock when the task throws, and rejects with the task's own error", async () => {
      const [first, second] = [await withLock(LONG_LEASE_MS), await withLock(LONG_LEASE_MS)]
      const key = freshKey('throws')
      const failure = new Error('refresh failed')
      await expect(first.lock(key, () => Promise.reject(failure))).rejects.toBe(failure)
      await expect(second.lock(key, async () => 'next')).resolves.toBe('next')
      await expect(first.lock(key, async () => 'again')).resolves.toBe('again')
    })

    it('keeps the lock while its holder renews it, and hands it over once the holder stops renewing', async () => {
      const [holder, waiter] = [await withLock(SHORT_LEASE_MS), await withLock(SHORT_LEASE_MS)]
      const key = freshKey('takeover')
      const { release, held } = await hold(holder, key)
      let cutOff = false
      const waited = waiter.lock(key, async () => cutOff)
      // Three leases long: only renewals keep the waiter out.
      await pause(3 * SHORT_LEASE_MS)
      cutOff = true
      await backend.cutOff(holder)
      expect(await waited, 'the waiter ran only after the holder stopped renewing').toBe(true)
      release()
      await held.catch(() => undefined)
    })
  })
}

/** `storage` with one method failing while `failing()` is true, as a full disk or a dead binding would. */
function failingOn(storage: TokenStorage, method: 'get' | 'set', failing: () => boolean = () => true): TokenStorage {
  const fail = async () => {
    throw new Error(`${method} refused`)
  }
  return {
    get: (key) => (method === 'get' && failing() ? fail() : storage.get(key)),
    set: (key, value) => (method === 'set' && failing() ? fail() : storage.set(key, value)),
    delete: (key) => storage.delete(key),
  }
}

/**
 * How a client keeps its grant in a `TokenStorage` adapter, against the real loopback token
 * server with rotation. A second client on the same storage stands for a page reload or a new
 * Worker isolate. Each test takes a new storage from `makeStorage` and a storage key of its own.
 */
export function describeClientPersistence(name: string, makeStorage: () => TokenStorage | Promise<TokenStorage>): void {
  describe(`${name}: client persistence`, () => {
    /** A server that rotates, a storage, and client options on a fixed key of this test's own. */
    async function setup(label: string) {
      const server = await serve({ rotate: true })
      const storage = await makeStorage()
      const storageKey = freshKey(label)
      const options = demoClient(server, { storage, storageKey })
      return { server, storage, storageKey, options }
    }
    const sentRefreshTokens = (server: { tokenRequests: { form: Record<string, string> }[] }) =>
      server.tokenRequests.map((request) => request.form.refresh_token)

    it('a new client with the same configured refresh token resumes the rotated grant', async () => {
      const { server, storage, storageKey, options } = await setup('resume')
      const token = await createRefreshClient(options).getAccessToken()
      const rotated = server.validRefreshToken
      expect(rotated).not.toBe('demo-refresh-token')
      expect(await storage.get(storageKey)).toMatchObject({ accessToken: token, refreshToken: rotated })

      const reloaded = createRefreshClient(options)
      expect(await reloaded.getAccessToken()).toBe(token)
      expect(server.tokenRequests).toHaveLength(1)
      const next = await reloaded.getAccessToken({ forceRefresh: true })
      expect(sentRefreshTokens(server)).toEqual(['demo-refresh-token', rotated])
      expect(next).not.toBe(token)
      expect(await storage.get(storageKey)).toMatchObject({ accessToken: next, refreshToken: server.validRefreshToken })
    })

    it('a new client with no configured refresh token resumes the stored grant', async () => {
      const { server, storage, storageKey, options } = await setup('resume-unconfigured')
      const token = await createRefreshClient(options).getAccessToken()
      const rotated = server.validRefreshToken

      const resumed = createRefreshClient({ ...options, refreshToken: undefined })
      expect(await resumed.getAccessToken()).toBe(token)
      expect(server.tokenRequests).toHaveLength(1)
      const next = await resumed.getAccessToken({ forceRefresh: true })
      expect(sentRefreshTokens(server)).toEqual(['demo-refresh-token', rotated])
      expect(await storage.get(storageKey)).toMatchObject({ accessToken: next, refreshToken: server.validRefreshToken })
    })

    it('clear() deletes the grant from storage', async () => {
      const { server, storage, storageKey, options } = await setup('clear')
      const client = createRefreshClient(options)
      await client.getAccessToken()
      expect(await storage.get(storageKey)).toBeDefined()
      await client.clear()
      expect(await storage.get(storageKey)).toBeUndefined()

      const reloaded = createRefreshClient({ ...options, refreshToken: undefined })
      await expect(reloaded.getAccessToken()).rejects.toMatchObject({ code: 'NO_GRANT' })
      expect(server.tokenRequests).toHaveLength(1)
    })

    it('invalid_grant deletes the grant from storage', async () => {
      const { server, storage, storageKey, options } = await setup('invalid-grant')
      const client = createRefreshClient(options)
      await client.getAccessToken()
      expect(await storage.get(storageKey)).toBeDefined()
      server.setRefreshToken('other')

      const error = await client.getAccessToken({ forceRefresh: true }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(OAuthError)
      expect(error).toMatchObject({ code: 'OAUTH_ERROR', error: 'invalid_grant' })
      expect(server.tokenRequests).toHaveLength(2)
      expect(await storage.get(storageKey)).toBeUndefined()
    })

    it('a different configured refresh token starts a new grant and stores it', async () => {
      const { server, storage, storageKey, options } = await setup('new-grant')
      await createRefreshClient(options).getAccessToken()
      const old = (await storage.get(storageKey))!
      server.setRefreshToken('brand-new-token')

      const token = await createRefreshClient({ ...options, refreshToken: 'brand-new-token' }).getAccessToken()
      expect(sentRefreshTokens(server)).toEqual(['demo-refresh-token', 'brand-new-token'])
      const stored = await storage.get(storageKey)
      expect(stored).toMatchObject({ accessToken: token, refreshToken: server.validRefreshToken })
      expect(stored!.grantId).not.toBe(old.grantId)
    })

    it('a failing write still hands out the token, is reported once, and the rotated token is kept in memory', async () => {
      const { server, storage, storageKey, options } = await setup('failing-set')
      let failing = true
      const onStorageError = vi.fn()
      const client = createRefreshClient({ ...options, storage: failingOn(storage, 'set', () => failing), onStorageError })

      const tokens = await Promise.all([client.getAccessToken(), client.getAccessToken()])
      expect(server.issuedTokens).toContain(tokens[0])
      expect(tokens[1]).toBe(tokens[0])
      expect(onStorageError).toHaveBeenCalledOnce()
      expect(onStorageError.mock.calls[0]![0]).toBeInstanceOf(StorageError)
      expect(onStorageError.mock.calls[0]![0]).toMatchObject({ code: 'STORAGE_ERROR' })
      expect(await storage.get(storageKey)).toBeUndefined()

      const rotated = server.validRefreshToken
      failing = false
      const next = await client.getAccessToken({ forceRefresh: true })
      expect(sentRefreshTokens(server)).toEqual(['demo-refresh-token', rotated])
      expect(onStorageError).toHaveBeenCalledOnce()
      expect(await storage.get(storageKey)).toMatchObject({ accessToken: next, refreshToken: server.validRefreshToken })
    })

    it('a failing read is a StorageError: no token request, nothing deleted', async () => {
      const { server, storage, storageKey, options } = await setup('failing-get')
      await createRefreshClient(options).getAccessToken()
      const held = await storage.get(storageKey)
      expect(held).toBeDefined()

      const client = createRefreshClient({ ...options, storage: failingOn(storage, 'get') })
      const error = await client.getAccessToken().catch((e: unknown) => e)
      expect(error).toBeInstanceOf(StorageError)
      expect(error).toMatchObject({ code: 'STORAGE_ERROR' })
      expect(server.tokenHits).toBe(1)
      expect(await storage.get(storageKey)).toStrictEqual(held)
    })
  })
}

/** Runs `task` under `storage`'s lock, with the lease the lock hands it. */
function withLease<T>(storage: Locking, key: string, task: (lease: Lease) => Promise<T>): Promise<T> {
  return storage.lock(key, (lease) => {
    if (!lease) throw new Error('the lock handed its task no lease')
    return task(lease)
  })
}

/** Whether `promise` is still pending after `ms`. */
const pendingAfter = (promise: Promise<unknown>, ms: number) => Promise.race([promise.then(() => false), pause(ms).then(() => true)])

/**
 * The extended lock contract (`Lease`), for adapters whose lock hands its task one: the atomic
 * pre-send claim and the compare-and-set that keep a holder that pauses past its lease from
 * sending a spent refresh token or rolling storage back. Instances from `backend.open` stand for
 * separate processes over one storage.
 */
export function describeStorageLease(name: string, backend: LockBackend): void {
  // Long enough for a busy machine to renew in time; a record lasts a request's timeout plus about this.
  const LEASE_MS = 1000
  const open = async () => {
    const storage = await backend.open(LEASE_MS)
    if (!storage.lock) throw new Error(`${name} has no lock`)
    return storage as Locking
  }

  describe(`${name}: TokenStorage lease`, () => {
    it('claims a send while storage holds the grant the holder read, and refuses it once another holder changed it', async () => {
      const [holder, other] = [await open(), await open()]
      const key = freshKey('claim-changed')
      await other.set(key, fullTokenSet({ refreshToken: 'rt-1' }))
      await withLease(holder, key, async (lease) => {
        await holder.get(key)
        await other.set(key, fullTokenSet({ refreshToken: 'rt-2' }))
        expect(await lease.claim('rt-1', 60_000), 'storage changed since the read').toBe(false)
        expect((await holder.get(key))?.refreshToken).toBe('rt-2')
        expect(await lease.claim('rt-2', 60_000), 'read again').toBe(true)
      })
    })

    it('claims the first send of a grant only while storage still holds none', async () => {
      const [holder, other] = [await open(), await open()]
      const key = freshKey('claim-none')
      await withLease(holder, key, async (lease) => {
        expect(await holder.get(key)).toBeUndefined()
        expect(await lease.claim('rt-configured', 60_000)).toBe(true)
      })
      await withLease(holder, key, async (lease) => {
        expect(await holder.get(key)).toBeUndefined()
        await other.set(key, fullTokenSet())
        expect(await lease.claim('rt-configured', 60_000)).toBe(false)
      })
    })

    it("waits while another holder's in-flight record for the same refresh token is live, until that holder's answer is stored", async () => {
      const [first, second, writer] = [await open(), await open(), await open()]
      const key = freshKey('claim-wait')
      await writer.set(key, fullTokenSet({ refreshToken: 'rt-1' }))
      // The first holder claims rt-1 and ends without an answer, as one whose request is still out would.
      await withLease(first, key, async (lease) => {
        await first.get(key)
        expect(await lease.claim('rt-1', 60_000)).toBe(true)
      })
      await withLease(second, key, async (lease) => {
        await second.get(key)
        const claimed = lease.claim('rt-1', 60_000)
        expect(await pendingAfter(claimed, 3 * LEASE_MS), 'no second send of rt-1 while the record is live').toBe(true)
        await writer.set(key, fullTokenSet({ refreshToken: 'rt-2' }))
        expect(await claimed, 'the answer appeared: read again').toBe(false)
      })
    })

    it("claims once another holder's record has passed its deadline, and is not held up by a record for another refresh token", async () => {
      const [first, second] = [await open(), await open()]
      const key = freshKey('claim-deadline')
      await first.set(key, fullTokenSet({ refreshToken: 'rt-1' }))
      await withLease(first, key, async (lease) => {
        await first.get(key)
        expect(await lease.claim('rt-old', 60_000)).toBe(true)
      })
      await withLease(second, key, async (lease) => {
        await second.get(key)
        // This record lasts 1 ms plus the adapter's time to store an answer.
        expect(await lease.claim('rt-1', 1), 'a record for another token').toBe(true)
      })
      await withLease(first, key, async (lease) => {
        await first.get(key)
        expect(await lease.claim('rt-1', 60_000)).toBe(true)
      })
    })

    it('stores an answer by compare-and-set on the grant the holder read, and refuses it with a StorageError once the grant changed', async () => {
      const [holder, other] = [await open(), await open()]
      const key = freshKey('compare-and-set')
      await withLease(holder, key, async (lease) => {
        expect(await holder.get(key)).toBeUndefined()
        expect(await lease.claim('rt-configured', 60_000)).toBe(true)
        await lease.set(fullTokenSet({ refreshToken: 'rt-1' }))
        expect((await other.get(key))?.refreshToken).toBe('rt-1')
        // What it wrote is what it read: its next claim and write go through.
        expect(await lease.claim('rt-1', 60_000)).toBe(true)
        await lease.set(fullTokenSet({ refreshToken: 'rt-2' }))
        expect((await other.get(key))?.refreshToken).toBe('rt-2')
        await other.set(key, fullTokenSet({ refreshToken: 'rt-3' }))
        const refused = await lease.set(fullTokenSet({ refreshToken: 'rt-late' })).catch((error: unknown) => error)
        expect(refused).toBeInstanceOf(StorageError)
        expect(refused).toMatchObject({ code: 'STORAGE_ERROR' })
        expect(String(refused)).not.toContain('rt-')
      })
      expect((await other.get(key))?.refreshToken, 'never rolled back').toBe('rt-3')
      await withLease(holder, key, async (lease) => {
        expect(await holder.get(key)).toBeDefined()
        await other.delete(key)
        await expect(lease.set(fullTokenSet({ refreshToken: 'rt-after-delete' }))).rejects.toBeInstanceOf(StorageError)
      })
      expect(await other.get(key)).toBeUndefined()
    })

    it('refreshes once across clients on separate instances, and none sends a refresh token that was already sent', async () => {
      const server = await serve({ rotate: true })
      const storageKey = freshKey('clients')
      const clients = await Promise.all(Array.from({ length: 4 }, async () => createRefreshClient(demoClient(server, { storage: await open(), storageKey }))))
      const tokens = await Promise.all(clients.flatMap((client) => [client.getAccessToken(), client.getAccessToken()]))
      expect(new Set(tokens).size).toBe(1)
      await Promise.all(clients.map((client) => client.getAccessToken({ forceRefresh: true })))
      const sent = server.tokenRequests.map((request) => request.form.refresh_token)
      expect(new Set(sent).size, 'no refresh token sent twice').toBe(sent.length)
      expect((await (await open()).get(storageKey))?.refreshToken, 'storage ends on the newest refresh token').toBe(server.validRefreshToken)
    })
  })
}
