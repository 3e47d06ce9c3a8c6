import * as v from 'valibot'
import { createAuthorizedFetch } from './authorized-fetch.js'
import { ConfigError, NoGrantError, type OAuthRefreshError, TokenRequestError } from './errors.js'
import { createEvents, type Listener, type RefreshClientEvents, type RefreshReason, type TokenSet } from './events.js'
import { createGrantStore, type Grant, type SignIn } from './grant-store.js'
import { exclusive } from './lock.js'
import { parseOptions, type RefreshClientOptions } from './options.js'
import { parseWith } from './schemas.js'
import type { Lease, StoredTokenSet } from './storage/types.js'
import { createTokenEndpoint, deadline } from './token-request.js'

/** Options of `getAccessToken` and `getTokenSet`. */
export interface GetAccessTokenOptions {
  /** Refresh even if the current token looks valid (joins a refresh already in flight). */
  forceRefresh?: boolean
  /** Stops this caller's wait; the shared refresh goes on for the others. */
  signal?: AbortSignal
}

/** Options of `clear`. */
export interface ClearOptions {
  /** Also revoke the refresh token at `revocationUrl` (RFC 7009), under the grant's lock. */
  revoke?: boolean | undefined
}

/** What `clear` did at the provider. */
export interface ClearResult {
  /** Whether the provider confirmed the revocation. */
  revoked: boolean
  /** Why revocation failed; the local grant is forgotten all the same. */
  error?: OAuthRefreshError | undefined
}

/** Options of `keepAlive`. */
export interface KeepAliveOptions {
  /** Refresh when the grant's last refresh, by any context, is older than this, or its refresh token expires within it. */
  maxIdleMs: number
}

/** A client for one refresh-token grant. */
export interface RefreshClient {
  /** A valid access token; refreshes only when needed, one refresh shared by all callers. */
  getAccessToken(options?: GetAccessTokenOptions): Promise<string>
  /** The current token set with what the provider said besides the token; refreshes exactly when `getAccessToken` would. */
  getTokenSet(options?: GetAccessTokenOptions): Promise<TokenSet>
  /**
   * `fetch` with the access token attached. On a 401 it refreshes once (shared with every other
   * caller) and replays the request once; a second 401 is returned as it is.
   */
  fetch(input: Request | string | URL, init?: RequestInit): Promise<Response>
  /**
   * Forgets the grant, in memory at once and in storage under the grant's lock; with
   * `revoke: true` first revokes its newest refresh token at `revocationUrl` (RFC 7009).
   */
  clear(options?: ClearOptions): Promise<ClearResult>
  /**
   * Starts a new grant after a sign-in, under the grant's lock; the client is usable again after
   * `clear()`. With `accessToken` the first call uses it instead of refreshing.
   */
  setRefreshToken(refreshToken: string, signIn?: SignIn): Promise<void>
  /**
   * Refreshes, under the lock, when the grant's last refresh by any context is older than
   * `maxIdleMs` or its refresh token expires within that span; otherwise makes no token request.
   * Resolves to `true` when it refreshed.
   */
  keepAlive(options: KeepAliveOptions): Promise<boolean>
  /** Listens to `refresh`, `end` or `error`; returns the function that stops listening. */
  on<K extends keyof RefreshClientEvents>(type: K, listener: Listener<RefreshClientEvents[K]>): () => void
}

const noop = () => {}

const ClearSchema = v.strictObject({ revoke: v.optional(v.custom<boolean>((value) => typeof value === 'boolean', 'must be true or false')) }, 'must be an object')
const KeepAliveSchema = v.strictObject({ maxIdleMs: v.custom<number>((value) => typeof value === 'number' && value >= 0, 'must be a number of milliseconds') }, 'must be an object')

/** The token set a caller may see: the grant without its refresh token or fingerprints. */
function tokenSet({ refreshToken, grantId, signIn, ...rest }: Grant): TokenSet {
  return { tokenType: 'Bearer', ...rest, fields: { ...rest.fields } }
}

/** Waits for `promise` until `signal` aborts or `ms` pass: no caller hangs on a lost refresh. */
export function waitFor<T>(promise: Promise<T>, ms: number, signal: AbortSignal | undefined, onTimeout: () => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const settle = () => {
      stop()
      signal?.removeEventListener('abort', abort)
    }
    const abort = () => {
      settle()
      reject(signal!.reason)
    }
    // A deadline, not a plain timer: after a pause, a refresh whose answer arrived still wins.
    const stop = deadline(ms, () => {
      settle()
      onTimeout()
      reject(new TokenRequestError('TIMEOUT', `No token after ${ms} ms`))
    })
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
  const { storage, storageKey: key, leewayMs, maxWaitMs } = config
  const endpoint = createTokenEndpoint(config.endpoint)
  const events = createEvents<RefreshClientEvents>()
  const store = createGrantStore(config, events)

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

  const isIdle = (set: StoredTokenSet, maxIdleMs: number) => {
    const now = Date.now()
    return now - (set.obtainedAt ?? 0) >= maxIdleMs || (set.refreshTokenExpiresAt ?? Infinity) - now <= maxIdleMs
  }

  /** Waits until no refresh of this client is in flight. */
  async function settled() {
    while (inflight) await inflight.then(noop, noop)
  }

  /**
   * Refreshes under the lock when `reason` calls for it, with the newest stored grant: one that
   * another context refreshed meanwhile may make the token request needless. Sets `done.refreshed`
   * when a token request succeeded.
   */
  async function refresh(reason: RefreshReason, stale: string | undefined, maxIdleMs: number, done: { refreshed?: boolean }, lease?: Lease): Promise<Grant> {
    refreshedSince = Date.now()
    const at = store.epoch()
    let current = await store.load(at)
    for (let retried = false; ; retried = true) {
      if (!current) throw store.none()
      const wanted = reason === 'keep-alive' ? isIdle(current, maxIdleMs) : (reason === 'forced' && !retried) || !isFresh(current, stale)
      if (!wanted) return current as Grant
      // RFC 9449 §5: a DPoP-bound refresh token sent without a proof may be refused as invalid_grant,
      // which would end a grant that was never spent.
      if (current.tokenType?.toLowerCase() === 'dpop' && config.endpoint.scheme.toLowerCase() !== 'dpop') {
        throw new ConfigError('Option "dpop" is required by this DPoP-bound grant')
      }
      let answer
      let rotated: StoredTokenSet | undefined
      try {
        const { accessToken, expiresAt, ...kept } = current
        answer = await endpoint.refresh(current.refreshToken, [config.endpoint.clientSecret, current.refreshToken, accessToken], async (refreshToken) => {
          // The old refresh token is spent: from here on only this one may be sent, and it is
          // stored even if the rest of the answer is unusable.
          store.hold((rotated = { ...kept, refreshToken, obtainedAt: Date.now() }), at)
        }, lease)
      } catch (error) {
        if (rotated) await store.save(rotated, at, lease)
        if (!endpoint.endsGrant(error)) throw error
        current = await store.replacement(current, error)
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
        tokenType: answer.tokenType,
        refreshTokenExpiresAt: answer.refreshTokenExpiresIn ? now + answer.refreshTokenExpiresIn * 1000 : answer.refreshToken ? undefined : current.refreshTokenExpiresAt,
        fields: answer.fields,
        grantId: current.grantId,
        signIn: current.signIn,
      }
      // No caller gets the new access token before storage has it, since all join `inflight`.
      await store.save(next, at, lease)
      done.refreshed = true
      events.emit('refresh', { tokenSet: tokenSet(next), rotated: next.refreshToken !== current.refreshToken, reason })
      return next
    }
  }

  /** Starts the refresh that this client's callers share until it settles. */
  function start(reason: RefreshReason, stale?: string, maxIdleMs = 0, done = {}): Promise<Grant> {
    const flight: Promise<Grant> = exclusive(storage, key, (lease) => refresh(reason, stale, maxIdleMs, done, lease), maxWaitMs).finally(() => forget(flight))
    flight.catch((error: unknown) => {
      if (!(error instanceof NoGrantError)) events.emit('error', { error })
    })
    return (inflight = flight)
  }

  async function token(force: boolean, stale: string | undefined, signal: AbortSignal | undefined): Promise<Grant> {
    const grant = store.current()
    if (!force && !inflight && store.loaded() && isFresh(grant, stale)) return grant
    signal?.throwIfAborted()
    const joined = inflight
    const shared = inflight ?? start(force ? 'forced' : stale ? 'rejected' : 'expired', stale)
    let next: Grant
    try {
      next = await waitFor(shared, maxWaitMs, signal, () => forget(shared))
    } catch (error) {
      // The grant was replaced (setRefreshToken) while this refresh ran: the new one serves.
      if (error instanceof NoGrantError && store.current()) return token(force, stale, signal)
      throw error
    }
    // A forced caller that joined a flight which only read a stored token still wants a new one;
    // so does one that joined a flight started for other callers (or keep-alive) and got back no
    // usable token.
    if ((force && (next.obtainedAt ?? 0) < refreshedSince) || (joined && !isFresh(next, stale))) return token(force, stale, signal)
    return next
  }

  return {
    getAccessToken: async (options = {}) => (await token(options.forceRefresh === true, undefined, options.signal)).accessToken,
    getTokenSet: async (options = {}) => tokenSet(await token(options.forceRefresh === true, undefined, options.signal)),
    fetch: createAuthorizedFetch(config, async (stale, signal) => (await token(false, stale, signal)).accessToken),
    async clear(options = {}) {
      const { revoke } = parseWith(ClearSchema, options, (message) => new ConfigError(message))
      const { revocationUrl } = config
      if (revoke && !revocationUrl) throw new ConfigError('Option "revocationUrl" is required by clear({ revoke: true })')
      let result: ClearResult = { revoked: false }
      // The newest refresh token is revoked, never one that a refresh in flight is spending.
      if (revoke) await settled()
      await store.clear(
        revoke
          ? async (grant) => {
            if (!grant) return { reason: 'cleared' }
            try {
              await endpoint.revoke(revocationUrl!, grant.refreshToken)
              result = { revoked: true }
              return { reason: 'revoked' }
            } catch (error) {
              result = { revoked: false, error: error as OAuthRefreshError }
              return { reason: 'cleared', error: result.error }
            }
          }
          : undefined,
      )
      return result
    },
    setRefreshToken: store.set,
    async keepAlive(options) {
      const { maxIdleMs } = parseWith(KeepAliveSchema, options, (message) => new ConfigError(message))
      await settled()
      const done = { refreshed: false }
      await start('keep-alive', undefined, maxIdleMs, done)
      return done.refreshed
    },
    on: events.on,
  }
}
