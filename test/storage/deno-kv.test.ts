import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openKv } from '@deno/kv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, StorageError } from '../../src/errors.js'
import { denoKVStorage, type DenoKVAtomicLike, type DenoKVLike } from '../../src/storage/deno-kv.js'
import { describeClientPersistence, describeStorageContract, describeStorageLease, describeStorageLock, fullTokenSet, lockBackend } from './contract.js'

// @deno/kv: Deno KV for Node.js, on the same SQLite file format as `Deno.openKv(path)`.
type KV = DenoKVLike & { close(): void }

let dir: string
let path: string
let kv: KV
const opened: KV[] = []

/** A new connection to the shared KV file, as another process would open. */
async function connect(): Promise<KV> {
  const connection: KV = await openKv(path)
  opened.push(connection)
  return connection
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oauth-refresh-deno-kv-'))
  path = join(dir, 'kv.sqlite3')
  kv = await connect()
})

afterAll(async () => {
  for (const connection of opened) {
    try {
      connection.close()
    } catch {
      // Closed by a test already.
    }
  }
  await rm(dir, { recursive: true, force: true })
})

describeStorageContract('denoKVStorage', () => denoKVStorage(kv))
describeClientPersistence('denoKVStorage', () => denoKVStorage(kv))

const backend = lockBackend(async (leaseMs) => {
  const connection = await connect()
  return { storage: denoKVStorage(connection, { leaseMs }), close: () => connection.close() }
})
describeStorageLock('denoKVStorage', backend)
describeStorageLease('denoKVStorage', backend)

const rejection = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error)

/** `kv` whose operations fail with `failure()` while it returns an error, counting the attempts. */
function failing(failure: () => Error | undefined) {
  let attempts = 0
  const fail = <T>(run: () => Promise<T>) => () => {
    attempts++
    const error = failure()
    return error ? Promise.reject(error) : run()
  }
  const flaky: DenoKVLike = {
    get: (key) => fail(() => kv.get(key))(),
    set: (key, value) => fail(() => kv.set(key, value))(),
    delete: (key) => fail(() => kv.delete(key))(),
    atomic: () => kv.atomic(),
  }
  return { flaky, attempts: () => attempts }
}

/** `kv` whose atomic commits fail with SQLite's busy error the first `count` times; tells when the next one was sent. */
function busyCommits(count: number) {
  let busy = count
  let sentAt: number | undefined
  const wrap = (operation: DenoKVAtomicLike): DenoKVAtomicLike => ({
    check: (...checks) => wrap(operation.check(...checks)),
    set: (key, value) => wrap(operation.set(key, value)),
    delete: (key) => wrap(operation.delete(key)),
    commit: () => {
      if (busy-- > 0) return Promise.reject(new TypeError('database is locked'))
      if (busy === -1) sentAt = Date.now()
      return operation.commit()
    },
  })
  const slow: DenoKVLike = { get: (key) => kv.get(key), set: (key, value) => kv.set(key, value), delete: (key) => kv.delete(key), atomic: () => wrap(kv.atomic()) }
  return { slow, sentAt: () => sentAt }
}

/** `connection` whose operations wait while it is paused, as a process stalled (GC, a blocked event loop) would. */
function pausable(connection: DenoKVLike) {
  let resume: (() => void) | undefined
  let gate = Promise.resolve()
  const after = <T>(run: () => Promise<T>) => gate.then(run)
  const wrap = (operation: DenoKVAtomicLike): DenoKVAtomicLike => ({
    check: (...checks) => wrap(operation.check(...checks)),
    set: (key, value) => wrap(operation.set(key, value)),
    delete: (key) => wrap(operation.delete(key)),
    commit: () => after(() => operation.commit()),
  })
  const stalled: DenoKVLike = {
    get: (key) => after(() => connection.get(key)),
    set: (key, value) => after(() => connection.set(key, value)),
    delete: (key) => after(() => connection.delete(key)),
    atomic: () => wrap(connection.atomic()),
  }
  return {
    stalled,
    pause: () => void (gate = new Promise<void>((resolve) => (resume = resolve))),
    resume: () => resume?.(),
  }
}

describe('denoKVStorage', () => {
  it("stores each grant under ['oauth-refresh', key] by default, as a structured value", async () => {
    await denoKVStorage(kv).set('default-prefix', fullTokenSet())
    expect((await kv.get(['oauth-refresh', 'default-prefix'])).value).toStrictEqual(fullTokenSet())
  })

  it('puts a custom prefix before every key and keeps prefixes apart', async () => {
    const app = denoKVStorage(kv, { prefix: ['tenant', 7n, 'a'] })
    const other = denoKVStorage(kv, { prefix: ['tenant', 7n, 'b'] })
    await app.set('grant', fullTokenSet({ grantId: 'a' }))
    expect((await kv.get(['tenant', 7n, 'a', 'grant'])).value).toStrictEqual(fullTokenSet({ grantId: 'a' }))
    expect(await other.get('grant')).toBeUndefined()
    await other.set('grant', fullTokenSet({ grantId: 'b' }))
    await other.delete('grant')
    expect(await app.get('grant')).toStrictEqual(fullTokenSet({ grantId: 'a' }))
    await denoKVStorage(kv, { prefix: [] }).set('bare', fullTokenSet())
    expect((await kv.get(['bare'])).value).toStrictEqual(fullTokenSet())
  })

  it('keeps its lease beside the grant, and deletes it when the task is done', async () => {
    const storage = denoKVStorage(kv, { prefix: ['leases'] })
    const during = await storage.lock!('grant', async () => (await kv.get(['leases', 'grant', 'lock'])).value)
    expect(during).toStrictEqual({ holder: expect.any(String), expiresAt: expect.any(Number) })
    expect((await kv.get(['leases', 'grant', 'lock'])).value).toBeNull()
  })

  it('writes a lease that is live when it is taken, however long "database is locked" held up its commit', async () => {
    // Seven busy answers back off for at least 127 ms, longer than the 100 ms lease.
    const { slow, sentAt } = busyCommits(7)
    const storage = denoKVStorage(slow, { prefix: ['busy-lease'], leaseMs: 100 })
    const lease = await storage.lock!('grant', async () => (await kv.get(['busy-lease', 'grant', 'lock'])).value as { expiresAt: number })
    expect(lease).toStrictEqual({ holder: expect.any(String), expiresAt: expect.any(Number) })
    expect(lease.expiresAt, 'the lease ends after the commit that wrote it was sent').toBeGreaterThan(sentAt()!)
  })

  it('never renews nor deletes a lease that another holder took over while its own holder was stalled', async () => {
    const lockKey = ['stalled', 'grant', 'lock']
    const { stalled, pause, resume } = pausable(await connect())
    const holder = denoKVStorage(stalled, { prefix: ['stalled'], leaseMs: 300 })
    const successor = denoKVStorage(await connect(), { prefix: ['stalled'], leaseMs: 60_000 })
    let started!: () => void
    const running = new Promise<void>((resolve) => (started = resolve))
    let release!: () => void
    const held = holder.lock!('grant', () => (started(), new Promise<void>((resolve) => (release = resolve))))
    await running
    pause()
    // The stalled holder's lease lapses; the successor takes it, then the holder wakes up and ends.
    const [before, after] = await successor.lock!('grant', async () => {
      const before = await kv.get(lockKey)
      resume()
      release()
      await held
      return [before, await kv.get(lockKey)]
    })
    expect(before!.value).toStrictEqual({ holder: expect.any(String), expiresAt: expect.any(Number) })
    expect(after, "the successor's lease, untouched").toStrictEqual(before)
  })

  it('retries "database is locked" (SQLite busy) until the operation goes through', async () => {
    let busy = 3
    const { flaky, attempts } = failing(() => (busy-- > 0 ? new TypeError('database is locked') : undefined))
    const storage = denoKVStorage(flaky, { prefix: ['busy'] })
    await storage.set('grant', fullTokenSet())
    expect(attempts()).toBe(4)
    expect(await storage.get('grant')).toStrictEqual(fullTokenSet())
  })

  it('gives up on a database that stays locked with a StorageError', async () => {
    const { flaky, attempts } = failing(() => new TypeError('database is locked'))
    const error = await rejection(denoKVStorage(flaky).get('grant'))
    expect(error).toBeInstanceOf(StorageError)
    expect(error).toMatchObject({ code: 'STORAGE_ERROR', message: 'Deno KV get failed', cause: expect.any(TypeError) })
    expect(attempts()).toBe(20)
  })

  it('turns any other failure into a StorageError at once, with the failure as cause', async () => {
    const { flaky, attempts } = failing(() => new TypeError('Key too large for write'))
    await expect(denoKVStorage(flaky).delete('grant')).rejects.toMatchObject({ code: 'STORAGE_ERROR', message: 'Deno KV delete failed' })
    expect(attempts()).toBe(1)
    // Real failures of KV itself: a key over its 2 KiB limit, and a closed database.
    const storage = denoKVStorage(kv)
    await expect(storage.set('k'.repeat(3000), fullTokenSet())).rejects.toMatchObject({ code: 'STORAGE_ERROR', message: 'Deno KV set failed' })
    const closed = await connect()
    closed.close()
    for (const operation of [() => denoKVStorage(closed).get('grant'), () => denoKVStorage(closed).lock!('grant', async () => 'ran')]) {
      const error = await rejection(operation())
      expect(error).toBeInstanceOf(StorageError)
      expect(error).toMatchObject({ code: 'STORAGE_ERROR', cause: expect.any(Error) })
    }
  })

  it('rejects a stored value that is not a token set with a StorageError', async () => {
    const storage = denoKVStorage(kv, { prefix: ['not-object'] })
    for (const [name, value] of [['number', 42], ['string', 'rt'], ['array', []]] as const) {
      await kv.set(['not-object', name], value)
      await expect(storage.get(name)).rejects.toMatchObject({ code: 'STORAGE_ERROR', message: 'Deno KV holds a value that is not a token set' })
    }
  })

  it('throws a ConfigError for a value that is not a Deno.Kv', () => {
    for (const value of [undefined, null, {}, 'kv', { get() {}, set() {}, delete() {} }]) {
      expect(() => denoKVStorage(value as unknown as DenoKVLike)).toThrow(ConfigError)
    }
  })

  it('throws a ConfigError for an unknown option, a bad prefix or a bad leaseMs', () => {
    const bad: unknown[] = [
      null,
      { leaseMS: 5000 },
      { prefix: 'oauth-refresh' },
      { prefix: [{}] },
      { prefix: [Symbol('s')] },
      { leaseMs: 99 },
      { leaseMs: 1000.5 },
      { leaseMs: '1000' },
      { leaseMs: Number.POSITIVE_INFINITY },
      { leaseMs: 2 ** 31 },
    ]
    for (const options of bad) {
      expect(() => denoKVStorage(kv, options as never), JSON.stringify(options)).toThrow(ConfigError)
    }
    expect(() => denoKVStorage(kv, { leaseMS: 5000 } as never)).toThrow('Option "leaseMS" is not a known option; did you mean "leaseMs"?')
    expect(() => denoKVStorage(kv, { leaseMs: 2 ** 31 })).toThrow('"leaseMs" must be an integer from 100 to 2147483647')
    expect(() => denoKVStorage(kv, 'prefix' as never)).toThrow('"options" must be an object')
    expect(() => denoKVStorage(kv, { prefix: ['a', 1, 2n, true, new Uint8Array([1])], leaseMs: 100 })).not.toThrow()
  })
})
