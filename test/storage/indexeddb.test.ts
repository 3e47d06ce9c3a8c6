import 'fake-indexeddb/auto'
import { forceCloseDatabase } from 'fake-indexeddb'
import { createStore, get, keys, set } from 'idb-keyval'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ConfigError, StorageError } from '../../src/errors.js'
import { indexedDBStorage } from '../../src/storage/indexeddb.js'
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
