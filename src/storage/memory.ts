import type { StoredTokenSet, TokenStorage } from './types.js'

/**
 * A `TokenStorage` that keeps grants in this context's memory: the default. Grants are gone when
 * the process, Worker isolate or page ends. Values are copied in and out, so a caller can never
 * change a stored grant by mutating an object it holds.
 *
 * @example
 * const storage = memoryStorage()
 * const client = createRefreshClient({ tokenUrl, clientId, refreshToken, storage })
 */
export function memoryStorage(): TokenStorage {
  const data = new Map<string, StoredTokenSet>()
  return {
    async get(key) {
      const value = data.get(key)
      return value && { ...value }
    },
    async set(key, value) {
      data.set(key, { ...value })
    },
    async delete(key) {
      data.delete(key)
    },
  }
}
