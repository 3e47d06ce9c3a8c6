import { OAuthRefreshError, StorageError } from './errors.js'
import type { ClientConfig } from './options.js'
import type { Lease, StoredTokenSet } from './storage/types.js'

/** A stored grant that holds an access token. */
export type Grant = StoredTokenSet & { accessToken: string }

/** The grant's dealings with storage: what is in memory, and how it is loaded, saved and forgotten. */
export interface GrantStore {
  /** The newest grant this client knows, in memory. */
  current(): StoredTokenSet | undefined
  /** Whether storage was read since the client started or was cleared. */
  loaded(): boolean
  /** Bumped by `clear()`: work begun before it must not bring the grant back. */
  epoch(): number
  /** Reads storage and keeps the newest grant; throws when `clear()` ran since `at`. */
  load(at: number): Promise<StoredTokenSet | undefined>
  /** Keeps `next` in memory, then in storage (through `lease`, when given); a failed write is reported, not thrown. Throws when `clear()` ran since `at`. */
  save(next: Grant, at: number, lease?: Lease): Promise<void>
  /** After the provider refused `dead`: a grant another context rotated meanwhile, or none. */
  replacement(dead: StoredTokenSet): Promise<StoredTokenSet | undefined>
  /** Forgets the grant, in memory and in storage. */
  clear(): Promise<void>
}

/** A short, stable, non-reversible tag of a refresh token (FNV-1a), so storage can tell grants apart. */
export function fingerprint(value: string): string {
  let hash = 2166136261
  for (let i = 0; i < value.length; i++) hash = Math.imul(hash ^ value.charCodeAt(i), 16777619)
  return (hash >>> 0).toString(36)
}

/** What a storage returned, as a token set, none, or a `StorageError` naming the mistake. */
function asStored(value: unknown): StoredTokenSet | undefined {
  if (value == null || typeof (value as StoredTokenSet).refreshToken === 'string') return (value ?? undefined) as StoredTokenSet | undefined
  throw new StorageError(`Storage returned ${typeof value === 'string' ? 'a string (no JSON.parse in get?)' : 'a value'} that is not a token set`)

}

/**
 * Creates the store of one client's grant over `config.storage`. Storage wins over the
 * configuration for a grant rotated elsewhere: the newest grant of this configuration is kept.
 */
export function createGrantStore(config: ClientConfig): GrantStore {
  const { storage, storageKey: key } = config
  const configured = config.refreshToken && { refreshToken: config.refreshToken, grantId: fingerprint(config.refreshToken) }
  let grant: StoredTokenSet | undefined
  let loaded = false
  // Bumped by clear(): nothing in flight brings the grant back, and a cleared client takes no
  // grant from storage (another context may store the grant again).
  let epoch = 0

  /** A stored value of this configuration's grant, as new as the one in memory or newer; none after clear(). */
  const isNewerGrant = (set: StoredTokenSet | undefined): set is StoredTokenSet =>
    epoch === 0 && !!set && (!configured || set.grantId === configured.grantId) && (set.obtainedAt ?? 0) >= (grant?.obtainedAt ?? 0)

  const cleared = () => new OAuthRefreshError('NO_GRANT', 'The grant was cleared')

  function report(error: StorageError) {
    if (config.onStorageError) config.onStorageError(error)
    else console.warn(`oauth-refresh: ${error.message}`, error.cause)
  }

  /** Runs a storage write; a failure is reported, not thrown: the grant in memory stays usable. */
  async function attempt(write: () => Promise<void>, failure: string) {
    try {
      await write()
    } catch (cause) {
      report(cause instanceof StorageError ? cause : new StorageError(failure, cause))
    }
  }

  async function read(): Promise<StoredTokenSet | undefined> {
    let value: unknown
    try {
      value = await storage.get(key)
    } catch (cause) {
      throw new StorageError('Reading the grant failed', cause)
    }
    return asStored(value)
  }

  return {
    current: () => grant,
    loaded: () => loaded,
    epoch: () => epoch,

    /**
     * A failed or unreadable read throws, and no token request is made: storage may hold a grant
     * rotated elsewhere, whose spent predecessor (the one in memory) would make the provider
     * revoke the grant.
     */
    async load(at) {
      const stored = await read()
      if (at !== epoch) throw cleared()
      if (isNewerGrant(stored)) grant = stored
      else if (!loaded && !grant && configured) grant = { ...configured }
      loaded = true
      return grant
    },

    async save(next, at, lease) {
      if (at !== epoch) throw cleared()
      // In memory first, so a caller that gave up waiting can't refresh with the spent token.
      grant = next
      await attempt(() => (lease ? lease.set(next) : storage.set(key, next)), 'Storing the grant failed; it is kept in memory')
      if (at !== epoch) {
        // clear() ran meanwhile, and its delete may have landed before this write.
        await attempt(() => storage.delete(key), 'Deleting the grant failed')
        throw cleared()
      }
    },

    /** The refused grant is deleted, from storage only if storage still holds it. */
    async replacement(dead) {
      let stored: StoredTokenSet | undefined
      await attempt(async () => void (stored = await read()), 'Reading the grant failed')
      if (isNewerGrant(stored) && stored.refreshToken !== dead.refreshToken) return (grant = stored)
      if (stored?.refreshToken === dead.refreshToken) await attempt(() => storage.delete(key), 'Deleting the grant failed')
      if (grant?.refreshToken === dead.refreshToken) grant = undefined
    },

    async clear() {
      epoch++
      grant = undefined
      loaded = true
      try {
        await storage.delete(key)
      } catch (cause) {
        throw new StorageError('Deleting the grant failed', cause)
      }
    },
  }
}
