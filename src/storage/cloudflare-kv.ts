import { ConfigError, StorageError } from '../errors.js'
import { rejectUnknown } from '../option-names.js'
import { backendCall, hasMethods, parseTokenSet } from './adapter.js'
import type { TokenStorage } from './types.js'

/**
 * The part of a Workers KV binding (`KVNamespace`) the adapter uses, typed structurally so that
 * `env.MY_KV` fits without `@cloudflare/workers-types`.
 */
export interface KVNamespaceLike {
  get(key: string, type: 'text'): Promise<string | null>
  put(key: string, value: string, options?: { expirationTtl?: number }): Promise<void>
  delete(key: string): Promise<void>
}

/** How grants are laid out in the namespace. */
export interface CloudflareKVStorageOptions {
  /** Put before every storage key. Default none: the client's default key starts with `oauth-refresh:`. */
  prefix?: string
  /** Seconds after each write at which KV deletes the grant; an integer of at least 60, the minimum KV allows. Default: never. */
  expirationTtl?: number
}

const MAX_KEY_BYTES = 512
const MIN_EXPIRATION_TTL = 60

/**
 * A `TokenStorage` that keeps grants in Cloudflare Workers KV, as JSON text under `prefix + key`.
 *
 * KV's limits shape how far it can keep a rotating refresh token safe:
 * - **Eventual consistency.** A write is visible at once where it was made, but other locations
 *   may read the old value for about 60 seconds.
 * - **One write per second per key.** Faster writes to one key may fail (a `StorageError`).
 * - **No single flight across isolates.** One client shares one refresh among the requests of its
 *   isolate, but two isolates (or locations) can refresh the same grant at once. With a provider
 *   that rotates refresh tokens, the second refresh then sends a spent token and gets
 *   `invalid_grant`; where its read of KV is stale, it may delete the grant the first just stored. Prefer one grant per isolate-affine key (e.g. per
 *   user or session), or keep the grant in a Durable Object when every isolate must share one
 *   refresh strictly.
 *
 * A key longer than 512 bytes (KV's limit), a stored value that is not a JSON object, and any KV
 * failure reject with a `StorageError` (code `STORAGE_ERROR`). Bad or unknown options throw a
 * `ConfigError`.
 *
 * @example
 * import { createRefreshClient } from 'oauth-refresh'
 * import { cloudflareKVStorage } from 'oauth-refresh/cloudflare-kv'
 *
 * let client // at module scope: the requests of one isolate share one refresh
 * export default {
 *   async fetch(request, env) {
 *     client ??= createRefreshClient({
 *       tokenUrl: 'https://auth.example.com/oauth/token',
 *       clientId: env.CLIENT_ID,
 *       clientSecret: env.CLIENT_SECRET,
 *       refreshToken: env.REFRESH_TOKEN,
 *       storage: cloudflareKVStorage(env.TOKENS),
 *     })
 *     return client.fetch('https://api.example.com/me')
 *   },
 * }
 * @see https://developers.cloudflare.com/kv/concepts/how-kv-works/
 */
export function cloudflareKVStorage(namespace: KVNamespaceLike, options: CloudflareKVStorageOptions = {}): TokenStorage {
  if (!hasMethods(namespace, ['get', 'put', 'delete'])) {
    throw new ConfigError('"namespace" must be a Workers KV binding with get, put and delete methods')
  }
  rejectUnknown(options, ['prefix', 'expirationTtl'])
  // No prefix by default: the client's default storage key already starts with 'oauth-refresh:'.
  const { prefix = '', expirationTtl } = options
  if (typeof prefix !== 'string') throw new ConfigError('"prefix" must be a string')
  if (expirationTtl !== undefined && !(Number.isInteger(expirationTtl) && expirationTtl >= MIN_EXPIRATION_TTL)) {
    throw new ConfigError(`"expirationTtl" must be an integer of at least ${MIN_EXPIRATION_TTL} seconds`)
  }
  const putOptions = expirationTtl === undefined ? undefined : { expirationTtl }
  const encoder = new TextEncoder()

  const kvKey = (key: string): string => {
    const fullKey = prefix + key
    if (encoder.encode(fullKey).length > MAX_KEY_BYTES) {
      throw new StorageError(`Cloudflare KV keys are at most ${MAX_KEY_BYTES} bytes; use a shorter prefix or storageKey`)
    }
    return fullKey
  }

  return {
    async get(key) {
      const fullKey = kvKey(key)
      const text = await backendCall('Cloudflare KV get', () => namespace.get(fullKey, 'text'))
      return text === null ? undefined : parseTokenSet(text, 'Cloudflare KV')
    },
    async set(key, value) {
      const fullKey = kvKey(key)
      await backendCall('Cloudflare KV put', () => namespace.put(fullKey, JSON.stringify(value), putOptions))
    },
    async delete(key) {
      const fullKey = kvKey(key)
      await backendCall('Cloudflare KV delete', () => namespace.delete(fullKey))
    },
  }
}
