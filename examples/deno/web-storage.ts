import type { StoredTokenSet, TokenStorage } from 'oauth-refresh'

/**
 * A `TokenStorage` on the Web Storage API. In Deno, `localStorage` persists on disk per main
 * module (or per `--location`), so a script resumes its rotated refresh token on the next run.
 * Values are JSON text under `prefix + key`. The data is plain text in Deno's directory
 * (`deno info` shows where): keep it on a machine you trust.
 *
 * @example
 * const client = createRefreshClient({ ...credentials, storage: webStorage(localStorage) })
 */
export function webStorage(storage: Storage, prefix = ''): TokenStorage {
  return {
    async get(key) {
      const text = storage.getItem(prefix + key)
      return text === null ? undefined : (JSON.parse(text) as StoredTokenSet)
    },
    async set(key, value) {
      storage.setItem(prefix + key, JSON.stringify(value))
    },
    async delete(key) {
      storage.removeItem(prefix + key)
    },
  }
}
