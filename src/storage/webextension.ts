import { ConfigError } from '../errors.js'
import { rejectUnknown } from '../option-names.js'
import { asTokenSet, backendCall, deleteListeners, hasMethods } from './adapter.js'
import type { TokenStorage } from './types.js'

/**
 * The part of an extension storage area the adapter uses: the promise API of
 * `chrome.storage.local`, `chrome.storage.session` and Firefox's `browser.storage.local`, typed
 * structurally so that neither `@types/chrome` nor a WebExtension polyfill is needed.
 */
export interface StorageAreaLike {
  get(keys: string): Promise<Record<string, unknown>>
  set(items: Record<string, unknown>): Promise<void>
  remove(keys: string): Promise<void>
  /** Only `storage.sync` has a per-item quota; the adapter refuses that area. */
  readonly QUOTA_BYTES_PER_ITEM?: never
  /**
   * The area's own change event (`chrome.storage.local.onChanged`, `browser.storage.local.onChanged`),
   * which `onDelete` listens to: a key whose change has an `oldValue` and no `newValue` was removed.
   */
  readonly onChanged?: { addListener(callback: (changes: Record<string, { oldValue?: unknown; newValue?: unknown }>) => void): void }
}

/** How grants are laid out in the storage area. */
export interface WebExtensionStorageOptions {
  /** Put before every storage key. Default none: the client's default key starts with `oauth-refresh:`. */
  prefix?: string
}

/**
 * A `TokenStorage` that keeps grants in an extension's storage area, as plain objects under
 * `prefix + key`. The extension's service worker and its pages (popup, options, side panel) share
 * the area, and the client's Web Locks keep one refresh at a time among them.
 *
 * - `chrome.storage.local` (or `browser.storage.local`): the grant survives the service worker
 *   stopping, a browser restart and an extension update; the extension's content scripts can
 *   read it too.
 * - `chrome.storage.session`: in memory, gone when the browser ends; hidden from content
 *   scripts unless the extension allows them.
 * - `chrome.storage.sync` is refused: it copies the grant to the user's other browsers, which
 *   would then refresh one rotating grant at once.
 *
 * Content scripts run in the page's origin: they share neither the extension's Web Locks nor a
 * single flight. Let them ask the service worker through messaging to call the API (or for a
 * token).
 *
 * `onDelete` listens to the area's `onChanged`, so that a sign-out in the service worker ends the
 * grant in the extension's pages and the other way round. `onChanged` reaches the context that
 * made the change too: this storage object is not told of deletes it made itself (its own client
 * made them; a `clear()` followed at once by a sign-in is not ended by its own late event), but
 * of those of any other code, in this context too. Without `area.onChanged` there is no
 * `onDelete`, and other contexts notice at their next refresh.
 *
 * A stored value that is not an object and any failure of the area (quota, a read-only area)
 * reject with a `StorageError` (code `STORAGE_ERROR`). Bad options throw a `ConfigError`.
 *
 * @example
 * import { createRefreshClient } from 'oauth-refresh'
 * import { webExtensionStorage } from 'oauth-refresh/webextension'
 *
 * const client = createRefreshClient({
 *   tokenUrl: 'https://auth.example.com/oauth/token',
 *   clientId: 'my-extension',
 *   storage: webExtensionStorage(chrome.storage.local), // Firefox: browser.storage.local
 * })
 * @see https://developer.chrome.com/docs/extensions/reference/api/storage
 */
export function webExtensionStorage(area: StorageAreaLike, options: WebExtensionStorageOptions = {}): TokenStorage {
  if (!hasMethods(area, ['get', 'set', 'remove'])) {
    throw new ConfigError('"area" must be an extension storage area such as chrome.storage.local, with get, set and remove methods')
  }
  if ('QUOTA_BYTES_PER_ITEM' in area) {
    throw new ConfigError('"area" must not be storage.sync: it copies the grant to other browsers; use storage.local')
  }
  rejectUnknown(options, ['prefix'])
  // No prefix by default: the client's default storage key already starts with 'oauth-refresh:'.
  const { prefix = '' } = options
  if (typeof prefix !== 'string') throw new ConfigError('"prefix" must be a string')

  const read = async (fullKey: string) => (await backendCall('Extension storage get', () => area.get(fullKey)))[fullKey]
  const storage: TokenStorage = {
    async get(key) {
      const value = await read(prefix + key)
      return value === undefined ? undefined : asTokenSet(value, 'Extension storage')
    },
    async set(key, value) {
      await backendCall('Extension storage set', () => area.set({ [prefix + key]: value }))
    },
    async delete(key) {
      await backendCall('Extension storage remove', () => area.remove(prefix + key))
    },
  }
  const { onChanged } = area
  // No onDelete at all, rather than one that never calls: the client then knows none will come.
  if (typeof onChanged?.addListener !== 'function') return storage

  const listeners = deleteListeners()
  // Removals made through this object whose change events have not come yet, by storage key.
  const own = new Map<string, number>()
  let watching = false

  return {
    ...storage,
    async delete(key) {
      const fullKey = prefix + key
      // Only a remove that removes something fires onChanged: count only those. An unreadable
      // key counts as not ours: a listener told of it once too often finds no grant to end.
      const mine = watching && (await read(fullKey).catch(() => undefined)) !== undefined
      if (mine) own.set(fullKey, (own.get(fullKey) ?? 0) + 1)
      try {
        await storage.delete(key)
      } catch (error) {
        if (mine) own.set(fullKey, own.get(fullKey)! - 1)
        throw error
      }
    },
    onDelete(key, listener) {
      if (!watching) {
        watching = true
        onChanged.addListener((changes) => {
          for (const [fullKey, change] of Object.entries(changes)) {
            // Firefox may report keys that did not change (its bug 1833153): a removal had a value.
            if (change.newValue !== undefined || change.oldValue === undefined || !fullKey.startsWith(prefix)) continue
            const mine = own.get(fullKey) ?? 0
            if (mine) own.set(fullKey, mine - 1)
            else listeners.tell(fullKey.slice(prefix.length))
          }
        })
      }
      return listeners.add(key, listener)
    },
  }
}
