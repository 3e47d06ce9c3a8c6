import 'fake-indexeddb/auto'
import { forceCloseDatabase } from 'fake-indexeddb'
import { createStore, get, keys, set } from 'idb-keyval'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ConfigError, StorageError } from '../../src/errors.js'
import { createRefreshClient, type RefreshClientEvents } from '../../src/index.js'
import { indexedDBStorage } from '../../src/storage/indexeddb.js'
import type { TokenStorage } from '../../src/storage/types.js'
import { demoClient, serve } from '../support/loopback.js'
import { describeClientPersistence, describeStorageContract, fullTokenSet } from './contract.js'

describeStorageContract('indexedDBStorage', () => indexedDBStorage())
describeStorageContract('indexedDBStorage with its own names', () => indexedDBStorage({ dbName: 'contract-db', storeName: 'contract-store' }))
describeClientPersistence('indexedDBStorage', () => indexedDBStorage())

describe('indexedDBStorage', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it("keeps grants in the 'oauth-refresh' database, 'grants' store by default", async () => {
    await indexedDBStorage().set('default-names', fullTokenSet())
    expect(await get('default-names', createStore('oauth-refresh', 'grants'))).toStrictEqual(fullTokenSet())
  })

  it("leaves an app's own default idb-keyval store untouched", async () => {
    await set('shared-key', 'the app value')
    const storage = indexedDBStorage()
    expect(await storage.get('shared-key')).toBeUndefined()
    await storage.set('shared-key', fullTokenSet())
    await storage.delete('shared-key')
    await storage.set('another-key', fullTokenSet())
    expect(await get('shared-key')).toBe('the app value')
    expect(await keys()).toEqual(['shared-key'])
  })

  it('keeps storages with different database and store names apart', async () => {
    const first = indexedDBStorage({ dbName: 'first-db', storeName: 'first-store' })
    const second = indexedDBStorage({ dbName: 'second-db', storeName: 'second-store' })
    await first.set('same-key', fullTokenSet({ grantId: 'first' }))
    expect(await second.get('same-key')).toBeUndefined()
    await second.set('same-key', fullTokenSet({ grantId: 'second' }))
    expect(await first.get('same-key')).toStrictEqual(fullTokenSet({ grantId: 'first' }))
    expect(await get('same-key', createStore('first-db', 'first-store'))).toStrictEqual(fullTokenSet({ grantId: 'first' }))
    expect(await get('same-key', createStore('second-db', 'second-store'))).toStrictEqual(fullTokenSet({ grantId: 'second' }))
  })

  it('rejects with a StorageError carrying the cause when the database refuses', async () => {
    await set('x', 1, createStore('taken-db', 'someone-elses-store'))
    const storage = indexedDBStorage({ dbName: 'taken-db', storeName: 'grants' })
    for (const operation of [() => storage.get('k'), () => storage.set('k', fullTokenSet()), () => storage.delete('k')]) {
      const error = await operation().catch((e: unknown) => e)
      expect(error).toBeInstanceOf(StorageError)
      expect(error).toMatchObject({ code: 'STORAGE_ERROR', cause: { name: 'NotFoundError' } })
    }
  })

  it('reopens the database after the browser closes the connection', async () => {
    const open = indexedDB.open.bind(indexedDB)
    const requests: IDBOpenDBRequest[] = []
    vi.spyOn(indexedDB, 'open').mockImplementation((name, version) => {
      const request = open(name, version)
      requests.push(request)
      return request
    })
    const storage = indexedDBStorage({ dbName: 'closing-db' })
    await storage.set('k', fullTokenSet())
    expect(requests).toHaveLength(1)
    // fake-indexeddb's types ask for the class; it takes the connection.
    forceCloseDatabase(requests[0]!.result as never)
    expect(await storage.get('k')).toStrictEqual(fullTokenSet())
    expect(requests).toHaveLength(2)
  })

  it('throws a ConfigError for an unknown option, naming the one it probably meant', () => {
    expect(() => indexedDBStorage({ name: 'x' } as never)).toThrow(
      expect.objectContaining({ name: 'ConfigError', message: 'Option "name" is not a known option; did you mean "dbName"?' }),
    )
    expect(() => indexedDBStorage({ dbName: 'x', store: 'y' } as never)).toThrow('Option "store" is not a known option; did you mean "storeName"?')
  })

  it('throws a ConfigError for options that are not an object', () => {
    for (const options of [null, 'grants', 42]) {
      expect(() => indexedDBStorage(options as never), String(options)).toThrow(expect.objectContaining({ name: 'ConfigError', message: '"options" must be an object' }))
    }
  })

  it('throws a ConfigError for an empty or non-string name', () => {
    expect(() => indexedDBStorage({ dbName: '' })).toThrow(ConfigError)
    expect(() => indexedDBStorage({ storeName: 42 as unknown as string })).toThrow(ConfigError)
  })
})

/** Resolves at the next delete of `key` that `storage` is told of. */
const told = (storage: TokenStorage, key: string) =>
  new Promise<void>((resolve) => {
    const off = storage.onDelete!(key, () => {
      off()
      resolve()
    })
  })

describe('indexedDBStorage onDelete (BroadcastChannel)', () => {
  afterEach(() => {
    vi.unstubAllGlobals()
    vi.restoreAllMocks()
  })

  it('tells another storage object of the same names which key was deleted', async () => {
    const here = indexedDBStorage({ dbName: 'bc-db' })
    const there = indexedDBStorage({ dbName: 'bc-db' })
    const seen: string[] = []
    here.onDelete!('k', () => seen.push('k'))
    here.onDelete!('j', () => seen.push('j'))
    await there.set('k', fullTokenSet())
    const notice = told(here, 'k')
    await there.delete('other')
    await there.delete('k')
    await notice
    expect(seen).toEqual(['k'])
  })

  it('is not told of its own deletes (its own client made them)', async () => {
    const here = indexedDBStorage({ dbName: 'bc-own' })
    const there = indexedDBStorage({ dbName: 'bc-own' })
    const listener = vi.fn()
    here.onDelete!('k', listener)
    await here.delete('k')
    // Messages arrive in order: once the later one from `there` is here, the first would have been.
    const barrier = told(here, 'barrier')
    await there.delete('barrier')
    await barrier
    expect(listener).not.toHaveBeenCalled()
  })

  it('is not told of deletes in a database or store of other names, nor of a failed delete (it posts after the delete)', async () => {
    const here = indexedDBStorage({ dbName: 'bc/names', storeName: 'grants' })
    const listener = vi.fn()
    here.onDelete!('k', listener)
    await indexedDBStorage({ dbName: 'bc/names-2', storeName: 'grants' }).delete('k')
    await indexedDBStorage({ dbName: 'bc', storeName: 'names/grants' }).delete('k')
    const failing = indexedDBStorage({ dbName: 'bc/names', storeName: 'grants' })
    vi.stubGlobal('indexedDB', undefined)
    await expect(failing.delete('k')).rejects.toBeInstanceOf(StorageError)
    vi.unstubAllGlobals()
    const barrier = told(here, 'barrier')
    await failing.delete('barrier')
    await barrier
    expect(listener).not.toHaveBeenCalled()
  })

  it('stops calling a listener once it unsubscribed; a listener that throws does not stop the others', async () => {
    const here = indexedDBStorage({ dbName: 'bc-off' })
    const there = indexedDBStorage({ dbName: 'bc-off' })
    const gone = vi.fn()
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    here.onDelete!('k', () => {
      throw new Error('listener failed')
    })
    here.onDelete!('k', gone)()
    const notice = told(here, 'k')
    await there.delete('k')
    await notice
    expect(gone).not.toHaveBeenCalled()
    expect(error).toHaveBeenCalledWith('oauth-refresh: an onDelete listener threw', expect.objectContaining({ message: 'listener failed' }))
  })

  it('keeps nothing alive in Node: its channel is unref()ed', async () => {
    const ports = () => process.getActiveResourcesInfo().filter((name) => name === 'MessagePort').length
    const before = ports()
    const storage = indexedDBStorage({ dbName: 'bc-unref' })
    storage.onDelete!('k', () => {})
    await storage.delete('k')
    expect(ports()).toBe(before)
  })

  it('has no onDelete where BroadcastChannel is missing: other contexts notice at their next refresh', async () => {
    vi.stubGlobal('BroadcastChannel', undefined)
    const storage = indexedDBStorage({ dbName: 'bc-missing' })
    expect(storage).not.toHaveProperty('onDelete')
    await storage.set('k', fullTokenSet())
    await storage.delete('k')
    expect(await storage.get('k')).toBeUndefined()
  })

  it("ends another client's grant when one client of the same names signs out: end 'elsewhere', NO_GRANT, no token request", async () => {
    const server = await serve()
    const options = demoClient(server, { storageKey: 'bc-client', revocationUrl: server.revocationUrl })
    const here = createRefreshClient({ ...options, storage: indexedDBStorage({ dbName: 'bc-client' }) })
    const there = createRefreshClient({ ...options, storage: indexedDBStorage({ dbName: 'bc-client' }) })
    const ends: RefreshClientEvents['end'][] = []
    const ended = new Promise<void>((resolve) => there.on('end', (event) => (ends.push(event), resolve())))
    await there.getAccessToken()
    expect(await here.clear({ revoke: true })).toEqual({ revoked: true })
    await ended
    expect(ends).toEqual([{ reason: 'elsewhere' }])
    const requests = server.tokenRequests.length
    await expect(there.getAccessToken()).rejects.toMatchObject({ code: 'NO_GRANT', reason: 'elsewhere' })
    expect(server.tokenRequests).toHaveLength(requests)
  })
})
