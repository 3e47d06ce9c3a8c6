import { IDBFactory } from 'fake-indexeddb'
import { afterAll, expect, it } from 'vitest'
import { StorageError } from '../../src/errors.js'
// Imported where IndexedDB does not exist: the import itself must not throw.
import { indexedDBStorage } from '../../src/storage/indexeddb.js'
import { fullTokenSet } from './contract.js'

afterAll(() => {
  delete (globalThis as { indexedDB?: IDBFactory }).indexedDB
})

it('imports and creates the storage without IndexedDB', () => {
  expect(typeof indexedDB).toBe('undefined')
  expect(() => indexedDBStorage()).not.toThrow()
})

it('rejects every operation with a StorageError at first use', async () => {
  const storage = indexedDBStorage()
  for (const operation of [() => storage.get('k'), () => storage.set('k', fullTokenSet()), () => storage.delete('k')]) {
    const error = await operation().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StorageError)
    expect(error).toMatchObject({ code: 'STORAGE_ERROR', message: 'IndexedDB is not available in this context' })
  }
})

it('works once IndexedDB is there, keeping no earlier failure', async () => {
  const storage = indexedDBStorage()
  await expect(storage.get('k')).rejects.toBeInstanceOf(StorageError)
  Object.assign(globalThis, { indexedDB: new IDBFactory() })
  await storage.set('k', fullTokenSet())
  expect(await storage.get('k')).toStrictEqual(fullTokenSet())
})
