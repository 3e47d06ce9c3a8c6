import { createAuthorizedFetch } from './authorized-fetch.js'
import { OAuthRefreshError, TokenRequestError } from './errors.js'
import { createGrantStore, type Grant } from './grant-store.js'
import { exclusive } from './lock.js'
import { parseOptions, type RefreshClientOptions } from './options.js'
import type { Lease, StoredTokenSet } from './storage/types.js'
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
  const store = createGrantStore(config)
  const { attempts, maxDelayMs } = config.endpoint.retry
  // Longer than any refresh can take: twice (a retry after invalid_grant, the Basic-to-body
  // fallback) every attempt timing out and backing off at the cap, plus such a span for storage.
  // Within setTimeout's 32-bit range.
  const maxWaitMs = Math.min((2 * attempts + 2) * (config.endpoint.timeoutMs + maxDelayMs), 2 ** 31 - 1)

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

  async function refresh(force: boolean, stale: string | undefined, lease?: Lease): Promise<Grant> {
    refreshedSince = Date.now()
    const at = store.epoch()
    let current = await store.load(at)
    for (let retried = false; ; retried = true) {
      if (!current) throw new OAuthRefreshError('NO_GRANT', 'No refresh token')
      if ((!force || retried) && isFresh(current, stale)) return current
      let answer
      try {
        answer = await endpoint.refresh(current.refreshToken, [config.endpoint.clientSecret, current.refreshToken, current.accessToken], lease)
      } catch (error) {
        if (!isOAuthError(error, 'invalid_grant')) throw error
        current = await store.replacement(current)
        if (!current || retried) throw error
        continue
      }
      // Another holder refreshed since the read: read again.
      if (!answer) {
        current = await store.load(at)
        continue
      }
      const now = Date.now()
      const next: Grant = {
        accessToken: answer.accessToken,
        refreshToken: answer.refreshToken ?? current.refreshToken,
        obtainedAt: now,
        expiresAt: answer.expiresIn && now + answer.expiresIn * 1000,
        scope: answer.scope ?? current.scope,
        grantId: current.grantId,
      }
      // No caller gets the new access token before storage has it, since all join `inflight`.
      await store.save(next, at, lease)
      return next
    }
  }

  async function token(force: boolean, stale: string | undefined, signal: AbortSignal | undefined): Promise<string> {
    const grant = store.current()
    if (!force && !inflight && store.loaded() && isFresh(grant, stale)) return grant.accessToken
    signal?.throwIfAborted()
    const joined = inflight
    if (!inflight) {
      const flight: Promise<Grant> = exclusive(storage, key, (lease) => refresh(force, stale, lease)).finally(() => forget(flight))
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
    clear: store.clear,
  }
}
