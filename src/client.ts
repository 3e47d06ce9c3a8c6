import { createAuthorizedFetch } from './authorized-fetch.js'
import { OAuthRefreshError, StorageError, TokenRequestError } from './errors.js'
import { exclusive } from './lock.js'
import { parseOptions, type RefreshClientOptions } from './options.js'
import type { StoredTokenSet } from './storage/types.js'
import { createTokenEndpoint, isOAuthError } from './token-request.js'

/** Options of `getAccessToken`. */
export interface GetAccessTokenOptions {
  /** Refresh even if the current token looks valid (joins a refresh already in flight). */
  forceRefresh?: boolean
  /** Stops this caller's wait; the shared refresh goes on for the others. */
  signal?: AbortSignal
}

/** A client for one refresh-token grant. */
export interface RefreshClient {
  /** A valid access token; refreshes only when needed, one refresh shared by all callers. */
  getAccessToken(options?: GetAccessTokenOptions): Promise<string>
  /**
   * `fetch` with the access token attached. On a 401 it refreshes once (shared with every other
   * caller) and replays the request once; a second 401 is returned as it is.
   */
  fetch(input: Request | string | URL, init?: RequestInit): Promise<Response>
  /** Forgets the grant, in memory and in storage. */
  clear(): Promise<void>
}

type Grant = StoredTokenSet & { accessToken: string }

/** A short, stable, non-reversible tag of a refresh token (FNV-1a), so storage can tell grants apart. */
export function fingerprint(value: string): string {
  let hash = 2166136261
  for (let i = 0; i < value.length; i++) hash = Math.imul(hash ^ value.charCodeAt(i), 16777619)
  return (hash >>> 0).toString(36)
}

/** Waits for `promise` until `signal` aborts or `ms` pass: no caller hangs on a lost refresh. */
export function waitFor<T>(promise: Promise<T>, ms: number, signal: AbortSignal | undefined, onTimeout: () => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const settle = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', abort)
    }
    const abort = () => {
      settle()
      reject(signal!.reason)
    }
    const timer = setTimeout(() => {
      settle()
      onTimeout()
      reject(new TokenRequestError('TIMEOUT', `No token after ${ms} ms`))
    }, ms)
    promise.then(resolve, reject).finally(settle)
    if (signal?.aborted) abort()
    else signal?.addEventListener('abort', abort)
  })
}

/**
 * Creates a client for one refresh-token grant (RFC 6749 §6). It validates `options` at once
 * (a `ConfigError` names a bad one), then hands out valid access tokens and authorized `fetch`
 * calls. Concurrent callers that need a new token share one token request; a rotated refresh
 * token is written to storage before any caller gets the new access token.
 *
 * @example
 * const client = createRefreshClient({
 *   tokenUrl: 'https://auth.example.com/oauth/token',
 *   clientId: 'my-client',
 *   clientSecret: env.CLIENT_SECRET,
 *   refreshToken: env.REFRESH_TOKEN,
 * })
 * const response = await client.fetch('https://api.example.com/me')
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 */
export function createRefreshClient(options: RefreshClientOptions): RefreshClient {
  const config = parseOptions(options)
  const { storage, storageKey: key, leewayMs } = config
  const endpoint = createTokenEndpoint(config.endpoint)
  const configured = config.refreshToken && { refreshToken: config.refreshToken, grantId: fingerprint(config.refreshToken) }
  const { attempts, maxDelayMs } = config.endpoint.retry
  // Longer than any refresh can take: twice (a retry after invalid_grant, the Basic-to-body
  // fallback) every attempt timing out and backing off at the cap, plus such a span for storage.
  // Within setTimeout's 32-bit range.
  const maxWaitMs = Math.min((2 * attempts + 2) * (config.endpoint.timeoutMs + maxDelayMs), 2 ** 31 - 1)

  let grant: StoredTokenSet | undefined
  let loaded = false
  // Bumped by clear(): nothing in flight brings the grant back, and a cleared client takes no
  // grant from storage (another context may store the grant again).
  let epoch = 0
  let inflight: Promise<Grant> | undefined
  // When the latest refresh began, under the lock: a token obtained before it was there to read.
  let refreshedSince = 0

  /** Lets the next caller start afresh once `flight` is settled or given up on. */
  const forget = (flight: Promise<Grant>) => {
    if (inflight === flight) inflight = undefined
  }

  const isFresh = (set: StoredTokenSet | undefined, stale?: string): set is Grant => {
    if (!set?.accessToken || set.accessToken === stale) return false
    if (set.expiresAt === undefined) return true
    const lifetime = set.expiresAt - (set.obtainedAt ?? set.expiresAt)
    return Date.now() < set.expiresAt - Math.min(leewayMs, lifetime / 2)
  }

  /** A stored value of this configuration's grant, as new as the one in memory or newer; none after clear(). */
  const isNewerGrant = (set: StoredTokenSet | undefined): set is StoredTokenSet =>
    epoch === 0 &&
    typeof set?.refreshToken === 'string' &&
    (!configured || set.grantId === configured.grantId) &&
    (set.obtainedAt ?? 0) >= (grant?.obtainedAt ?? 0)

  const cleared = () => new OAuthRefreshError('NO_GRANT', 'The grant was cleared')

  function report(error: StorageError) {
    if (config.onStorageError) config.onStorageError(error)
    else console.warn(`oauth-refresh: ${error.message}`)
  }

  /**
   * Reads storage and keeps the newest grant: another context may have rotated it. A failed read
   * throws, and no token request is made: storage may hold a grant rotated elsewhere, whose spent
   * predecessor (the one in memory) would make the provider revoke the grant.
   */
  async function load(at: number): Promise<StoredTokenSet | undefined> {
    let stored: StoredTokenSet | undefined
    try {
      stored = await storage.get(key)
    } catch (cause) {
      throw new StorageError('Reading the grant failed', cause)
    }
    if (at !== epoch) throw cleared()
    if (isNewerGrant(stored)) grant = stored
    else if (!loaded && !grant && configured) grant = { ...configured }
    loaded = true
    return grant
  }

  /** Runs a storage write; a failure is reported, not thrown: the grant in memory stays usable. */
  async function attempt(write: () => Promise<void>, failure: string) {
    try {
      await write()
    } catch (cause) {
      report(new StorageError(failure, cause))
    }
  }

  async function save(next: Grant, at: number) {
    await attempt(() => storage.set(key, next), 'Storing the grant failed; it is kept in memory')
    if (at !== epoch) {
      // clear() ran meanwhile, and its delete may have landed before this write.
      await attempt(() => storage.delete(key), 'Deleting the grant failed')
      throw cleared()
    }
  }

  /**
   * After `invalid_grant`: a grant that another context rotated meanwhile is returned; otherwise
   * the refused grant is deleted, from storage only if storage still holds it.
   */
  async function replacement(dead: StoredTokenSet): Promise<StoredTokenSet | undefined> {
    let stored: StoredTokenSet | undefined
    await attempt(async () => void (stored = await storage.get(key)), 'Reading the grant failed')
    if (isNewerGrant(stored) && stored.refreshToken !== dead.refreshToken) return (grant = stored)
    if (stored?.refreshToken === dead.refreshToken) await attempt(() => storage.delete(key), 'Deleting the grant failed')
    if (grant?.refreshToken === dead.refreshToken) grant = undefined
  }

  async function refresh(force: boolean, stale: string | undefined): Promise<Grant> {
    refreshedSince = Date.now()
    const at = epoch
    let current = await load(at)
    for (let retried = false; ; retried = true) {
      if (!current) throw new OAuthRefreshError('NO_GRANT', 'No refresh token')
      if ((!force || retried) && isFresh(current, stale)) return current
      let answer
      try {
        answer = await endpoint.refresh(current.refreshToken, [config.endpoint.clientSecret, current.refreshToken, current.accessToken])
      } catch (error) {
        if (!isOAuthError(error, 'invalid_grant')) throw error
        current = await replacement(current)
        if (!current || retried) throw error
        continue
      }
      if (at !== epoch) throw cleared()
      const now = Date.now()
      const next: Grant = {
        accessToken: answer.accessToken,
        refreshToken: answer.refreshToken ?? current.refreshToken,
        obtainedAt: now,
        expiresAt: answer.expiresIn && now + answer.expiresIn * 1000,
        scope: answer.scope ?? current.scope,
        grantId: current.grantId,
      }
      // In memory first, so a caller that gave up waiting can't refresh with the spent token;
      // no caller gets the new access token before storage has it, since all join `inflight`.
      grant = next
      await save(next, at)
      return next
    }
  }

  async function token(force: boolean, stale: string | undefined, signal: AbortSignal | undefined): Promise<string> {
    if (!force && !inflight && loaded && isFresh(grant, stale)) return grant.accessToken
    signal?.throwIfAborted()
    const joined = inflight
    if (!inflight) {
      const flight: Promise<Grant> = exclusive(storage, key, () => refresh(force, stale)).finally(() => forget(flight))
      inflight = flight
    }
    const shared = inflight
    const next = await waitFor(shared, maxWaitMs, signal, () => forget(shared))
    // A forced caller that joined a flight which only read a stored token still wants a new one;
    // so does one that joined a flight started for other callers and got back its stale token.
    if ((force && (next.obtainedAt ?? 0) < refreshedSince) || (joined && next.accessToken === stale)) return token(force, stale, signal)
    return next.accessToken
  }

  return {
    getAccessToken: (options = {}) => token(options.forceRefresh === true, undefined, options.signal),
    fetch: createAuthorizedFetch(config, (stale, signal) => token(false, stale, signal)),
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
