import { ConfigError } from '../errors.js'
import { rejectUnknown } from '../option-names.js'
import { asTokenSet, backendCall, hasMethods } from './adapter.js'
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

  return {
    async get(key) {
      const fullKey = prefix + key
      const items = await backendCall('Extension storage get', () => area.get(fullKey))
      return items[fullKey] === undefined ? undefined : asTokenSet(items[fullKey], 'Extension storage')
    },
    async set(key, value) {
      await backendCall('Extension storage set', () => area.set({ [prefix + key]: value }))
    },
    async delete(key) {
      await backendCall('Extension storage remove', () => area.remove(prefix + key))
    },
  }
}
