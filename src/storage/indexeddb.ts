import { createStore, del, get, set, type UseStore } from 'idb-keyval'
import { ConfigError, StorageError } from '../errors.js'
import { rejectUnknown } from '../option-names.js'
import { backendCall, deleteListeners } from './adapter.js'
import type { StoredTokenSet, TokenStorage } from './types.js'

/** Where in IndexedDB the grants live. */
export interface IndexedDBStorageOptions {
  /**
   * The database name. Default `'oauth-refresh'`, apart from idb-keyval's own `'keyval-store'` so
   * an app's idb-keyval data is never touched. Give every `storeName` a database of its own:
   * idb-keyval creates the store only when it creates the database.
   */
  dbName?: string
  /** The object store name. Default `'grants'`. */
  storeName?: string
}

/**
 * A `TokenStorage` that keeps grants in IndexedDB (through idb-keyval), so they survive a page
 * reload and are shared by the tabs, workers and extension service worker (MV3) of one origin.
 * Each of those contexts still runs its own single flight.
 *
 * Nothing touches IndexedDB until the first `get`, `set` or `delete`, so importing this module
 * where IndexedDB is missing is safe.
 *
 * Where `BroadcastChannel` exists, `onDelete` tells the clients of other contexts of the origin
 * (tabs, workers, an extension's pages and service worker) that a grant was deleted (a sign-out),
 * so they stop handing out the token they hold in memory. Each storage object posts its deletes on
 * a channel named after the database and store; it is not told of its own deletes (its own client
 * made them), but is told of those of every other storage object of these names, in this context
 * too: give each client its own `indexedDBStorage()`. Without `BroadcastChannel` there is no
 * `onDelete`, and other contexts notice at their next refresh. Where IndexedDB is missing or refuses (private mode, quota),
 * that call rejects with a `StorageError` (code `STORAGE_ERROR`) whose `cause` is the original
 * error; the next call tries again.
 *
 * @example
 * import { createRefreshClient } from 'oauth-refresh'
 * import { indexedDBStorage } from 'oauth-refresh/indexeddb'
 *
 * const client = createRefreshClient({
 *   tokenUrl: 'https://auth.example.com/oauth/token',
 *   clientId: 'my-app',
 *   refreshToken,
 *   storage: indexedDBStorage(), // or indexedDBStorage({ dbName: 'my-app-auth', storeName: 'grants' })
 * })
 */
export function indexedDBStorage(options: IndexedDBStorageOptions = {}): TokenStorage {
  rejectUnknown(options, ['dbName', 'storeName'])
  const { dbName = 'oauth-refresh', storeName = 'grants' } = options
  if (typeof dbName !== 'string' || dbName === '') throw new ConfigError('"dbName" must be a non-empty string')
  if (typeof storeName !== 'string' || storeName === '') throw new ConfigError('"storeName" must be a non-empty string')

  // idb-keyval opens the database on the store's first use, forgets a failed open and reopens
  // after the browser closes the connection (Safari), so keeping the store function is safe.
  let store: UseStore | undefined
  const run = async <T>(operation: string, action: (store: UseStore) => Promise<T>): Promise<T> => {
    if (typeof indexedDB === 'undefined') throw new StorageError('IndexedDB is not available in this context')
    return backendCall(`IndexedDB ${operation}`, () => action((store ??= createStore(dbName, storeName))))
  }

  const storage: TokenStorage = {
    get: (key) => run('get', (store) => get<StoredTokenSet>(key, store)),
    set: (key, value) => run('set', (store) => set(key, value, store)),
    delete: (key) => run('delete', (store) => del(key, store)),
  }
  // No onDelete at all, rather than one that never calls: the client then knows none will come.
  if (typeof BroadcastChannel !== 'function') return storage

  // Opened at the first onDelete or delete: a storage that is only read costs no channel.
  let channel: BroadcastChannel | undefined
  const listeners = deleteListeners()
  const open = () => {
    if (!channel) {
      channel = new BroadcastChannel(`oauth-refresh:${JSON.stringify([dbName, storeName])}`)
      // Node: an open channel would keep a finished script alive.
      ;(channel as { unref?: () => void }).unref?.()
      channel.onmessage = ({ data }: MessageEvent) => {
        if (typeof data === 'string') listeners.tell(data)
      }
    }
    return channel
  }

  return {
    ...storage,
    async delete(key) {
      await storage.delete(key)
      // After the delete: a context told of it reads storage without the grant.
      open().postMessage(key)
    },
    onDelete(key, listener) {
      open()
      return listeners.add(key, listener)
    },
  }
}
