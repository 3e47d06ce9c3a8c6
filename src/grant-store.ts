import * as v from 'valibot'
import { ConfigError, NoGrantError, type NoGrantReason, type OAuthError, type OAuthRefreshError, StorageError } from './errors.js'
import type { EndReason, Events, RefreshClientEvents } from './events.js'
import { exclusive } from './lock.js'
import { type ClientConfig, refuseWhitespace } from './options.js'
import { parseWith, string, text } from './schemas.js'
import type { Lease, StoredTokenSet } from './storage/types.js'

/** A stored grant that holds an access token. */
export type Grant = StoredTokenSet & { accessToken: string }

/** A grant given by the app after a sign-in (`setRefreshToken`). */
export interface SignIn {
  /** The access token obtained with the refresh token: the first call uses it instead of refreshing. */
  accessToken?: string | undefined
  /** The lifetime of `accessToken` in seconds, as `expires_in`. */
  expiresIn?: number | undefined
  /** The scope granted. */
  scope?: string | undefined
}

/** The grant's dealings with storage: what is in memory, and how it is loaded, saved and forgotten. */
export interface GrantStore {
  /** The newest grant this client knows, in memory. */
  current(): StoredTokenSet | undefined
  /** Whether storage was read since the client started or was cleared. */
  loaded(): boolean
  /** Bumped when the grant is replaced or cleared here: work begun before must not bring the old one back. */
  epoch(): number
  /** Why there is no grant, as the error a caller gets. */
  none(): NoGrantError
  /** Reads storage and keeps the newest grant; throws when the grant was replaced or cleared since `at`. */
  load(at: number): Promise<StoredTokenSet | undefined>
  /** Keeps `next` in memory, then in storage (through `lease`, when given); a failed write is reported, not thrown. Throws when the grant was replaced or cleared since `at`. */
  save(next: StoredTokenSet, at: number, lease?: Lease): Promise<void>
  /** Keeps `set` in memory only, until `save` stores it; not when the grant was replaced or cleared since `at`. */
  hold(set: StoredTokenSet, at: number): void
  /** After the provider ended `dead` with `error`: a grant another context rotated meanwhile, or none. */
  replacement(dead: StoredTokenSet, error: OAuthError): Promise<StoredTokenSet | undefined>
  /** Starts a new grant from a sign-in, under the grant's lock. */
  set(refreshToken: string, signIn?: SignIn): Promise<void>
  /**
   * Forgets the grant, in memory at once, then in storage. `last` runs first, under the grant's
   * lock, with the newest grant (to revoke it); it returns the reason to report.
   */
  clear(last?: (grant: StoredTokenSet | undefined) => Promise<{ reason: EndReason; error?: OAuthRefreshError | undefined }>): Promise<void>
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

/** What tells one grant from the next: a sign-in of a configured client keeps its `grantId` (so a restart resumes it) but not its lineage. */
const lineage = (set: StoredTokenSet) => set.signIn ?? set.grantId

const SignInSchema = v.strictObject({
  refreshToken: text,
  accessToken: v.optional(text),
  expiresIn: v.optional(v.custom<number>((value) => typeof value === 'number' && value > 0 && value < 1e9, 'must be a number of seconds above 0')),
  scope: v.optional(string),
})

/**
 * Creates the store of one client's grant over `config.storage`. Storage wins over the
 * configuration for a grant rotated elsewhere: the newest grant of this configuration is kept.
 * It emits `end` once per grant.
 */
export function createGrantStore(config: ClientConfig, events: Events<RefreshClientEvents>): GrantStore {
  const { storage, storageKey: key } = config
  const configured = config.refreshToken && { refreshToken: config.refreshToken, grantId: fingerprint(config.refreshToken) }
  let grant: StoredTokenSet | undefined
  let loaded = false
  let epoch = 0
  // Grants obtained before this moment are not taken from storage: they were cleared or ended;
  // nor is the cleared grant, which another context may rotate and store again.
  let since = 0
  let cleared: string | undefined
  // Why the last grant ended; undefined while this client has or may find one.
  let ended: NoGrantError | undefined
  // Whether `end` is still to be told for the grant this client has or may find.
  let alive = true
  let watching = false

  /** A stored value of this configuration's grant, as new as the one in memory or newer. */
  const isNewerGrant = (set: StoredTokenSet | undefined): set is StoredTokenSet =>
    !!set && (!configured || set.grantId === configured.grantId) && lineage(set) !== cleared && (set.obtainedAt ?? 0) >= (grant?.obtainedAt ?? since)

  const adopt = (set: StoredTokenSet) => {
    ended = undefined
    alive = true
    return (grant = set)
  }

  const none = () => ended ?? new NoGrantError('missing')

  /** Drops the grant (`last`, the one in memory unless told) from memory; whether `end` is to be told for it. */
  function forget(reason: NoGrantReason, error?: OAuthError, last = grant): boolean {
    // An ended grant is refused by `since`; a cleared one also when another context rotates it on.
    if (last && reason !== 'rejected') cleared = lineage(last)
    grant = undefined
    loaded = true
    since = Date.now()
    ended = new NoGrantError(reason, error)
    const told = alive
    alive = false
    return told
  }

  function end(reason: 'rejected' | 'elsewhere', error?: OAuthError) {
    if (forget(reason, error)) events.emit('end', { reason, error })
  }

  /** Listens, once, for sign-outs in other contexts. */
  function watch() {
    if (watching || !storage.onDelete) return
    watching = true
    storage.onDelete(key, () => {
      if (grant) {
        epoch++
        end('elsewhere')
      }
    })
  }

  function report(error: StorageError) {
    if (config.onStorageError) config.onStorageError(error)
    else console.warn(`oauth-refresh: ${error.message}`, error.cause)
  }

  /** Runs a storage call whose failure the caller must see. */
  async function call<T>(request: () => Promise<T>, failure: string): Promise<T> {
    try {
      return await request()
    } catch (cause) {
      throw cause instanceof StorageError ? cause : new StorageError(failure, cause)
    }
  }

  /** Runs a storage write; a failure is reported, not thrown: the grant in memory stays usable. */
  const attempt = (write: () => Promise<void>, failure: string) => call(write, failure).catch(report)

  const read = async () => asStored(await call(() => storage.get(key), 'Reading the grant failed'))

  /** Reads storage where a failure only means that no newer grant is known: it is reported. */
  const readOrReport = () => read().catch((error: StorageError) => void report(error))

  /** Makes storage hold what memory holds, after work that storage may have overtaken. */
  const restore = () => attempt(() => (grant ? storage.set(key, grant) : storage.delete(key)), 'Restoring the grant failed')

  return {
    current: () => grant,
    loaded: () => loaded,
    epoch: () => epoch,
    none,

    /**
     * A failed or unreadable read throws, and no token request is made: storage may hold a grant
     * rotated elsewhere, whose spent predecessor (the one in memory) would make the provider
     * revoke the grant.
     */
    async load(at) {
      watch()
      const stored = await read()
      if (at !== epoch) throw none()
      if (isNewerGrant(stored)) adopt(stored)
      else if (!loaded && !grant && configured) adopt({ ...configured })
      loaded = true
      return grant
    },

    hold(set, at) {
      if (at === epoch) adopt(set)
    },

    async save(next, at, lease) {
      if (at !== epoch) throw none()
      // In memory first, so a caller that gave up waiting can't refresh with the spent token.
      adopt(next)
      await attempt(() => (lease ? lease.set(next) : storage.set(key, next)), 'Storing the grant failed; it is kept in memory')
      if (at !== epoch) {
        // The grant was replaced or cleared meanwhile, and that write may have landed before this one.
        await restore()
        throw none()
      }
    },

    /** The refused grant is deleted, from storage only if storage still holds it. */
    async replacement(dead, error) {
      const stored = await readOrReport()
      if (isNewerGrant(stored) && stored.refreshToken !== dead.refreshToken) return adopt(stored)
      if (stored?.refreshToken === dead.refreshToken) await attempt(() => storage.delete(key), 'Deleting the grant failed')
      if (grant?.refreshToken === dead.refreshToken) end('rejected', error)
    },

    async set(refreshToken, signIn = {}) {
      const { accessToken, expiresIn, scope } = parseWith(SignInSchema, { ...signIn, refreshToken }, (message) => new ConfigError(message))
      refuseWhitespace('refreshToken', refreshToken)
      const now = Date.now()
      const next: StoredTokenSet = {
        refreshToken,
        // A configured client resumes a stored grant only under its configured token's fingerprint.
        grantId: configured ? configured.grantId : fingerprint(refreshToken),
        ...(configured && { signIn: fingerprint(refreshToken) }),
        obtainedAt: now,
        ...(accessToken && { accessToken, ...(expiresIn && { expiresAt: now + expiresIn * 1000 }) }),
        ...(scope !== undefined && { scope }),
      }
      epoch++
      watch()
      adopt(next)
      loaded = true
      await exclusive(storage, key, () => call(() => storage.set(key, next), 'Storing the grant failed; it is kept in memory'), config.maxWaitMs)
    },

    async clear(last) {
      const known = grant ?? (loaded ? undefined : configured || undefined)
      epoch++
      const told = forget('cleared', undefined, known)
      let outcome: { reason: EndReason; error?: OAuthRefreshError | undefined } = { reason: 'cleared' }
      const forgetStored = async () => {
        if (last) {
          const stored = await readOrReport()
          outcome = await last(stored && (!configured || stored.grantId === configured.grantId) ? stored : known)
        }
        await call(() => storage.delete(key), 'Deleting the grant failed')
      }
      try {
        // Revocation runs under the lock, so that it can never race a rotation elsewhere.
        await (last ? exclusive(storage, key, forgetStored, config.maxWaitMs) : forgetStored())
      } finally {
        if (told) events.emit('end', outcome)
      }
    },
  }
}
