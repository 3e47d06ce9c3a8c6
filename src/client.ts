import { createAuthorizedFetch } from './authorized-fetch.js'
import { OAuthError, OAuthRefreshError, StorageError, TokenRequestError } from './errors.js'
import { parseOptions, type RefreshClientOptions } from './options.js'
import type { StoredTokenSet } from './storage/types.js'
import { createTokenEndpoint } from './token-request.js'

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
function fingerprint(value: string): string {
  let hash = 2166136261
  for (let i = 0; i < value.length; i++) hash = Math.imul(hash ^ value.charCodeAt(i), 16777619)
  return (hash >>> 0).toString(36)
}

/** Waits for `promise` until `signal` aborts or `ms` pass: no caller hangs on a lost refresh. */
function waitFor<T>(promise: Promise<T>, ms: number, signal: AbortSignal | undefined, onTimeout: () => void): Promise<T> {
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
    if (signal?.aborted) return abort()
    signal?.addEventListener('abort', abort)
    promise.then(
      (value) => (settle(), resolve(value)),
      (error: unknown) => (settle(), reject(error)),
    )
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
  // Longer than any refresh can take: every attempt timing out, every backoff at its cap, and storage.
  const maxWaitMs = (attempts + 1) * (config.endpoint.timeoutMs + maxDelayMs)

  let grant: StoredTokenSet | undefined
  let loaded = false
  // Memory holds a grant that storage failed to take; storage must not overwrite it.
  let unsaved = false
  // Bumped by clear(), so a refresh that was in flight does not bring the grant back.
  let epoch = 0
  let inflight: Promise<Grant> | undefined

  const isFresh = (set: StoredTokenSet | undefined, stale?: string): set is Grant => {
    if (!set?.accessToken || set.accessToken === stale) return false
    if (set.expiresAt === undefined) return true
    const lifetime = set.expiresAt - (set.obtainedAt ?? set.expiresAt)
    return Date.now() < set.expiresAt - Math.min(leewayMs, lifetime / 2)
  }

  function report(error: StorageError) {
    if (config.onStorageError) config.onStorageError(error)
    else console.warn(`oauth-refresh: ${error.message}`)
  }

  /** Reads storage: a stored grant of this configuration (maybe rotated, maybe by another context) wins. */
  async function load(): Promise<StoredTokenSet | undefined> {
    let stored: StoredTokenSet | undefined
    try {
      stored = await storage.get(key)
    } catch (cause) {
      throw new StorageError('Reading the grant failed', cause)
    }
    const usable = typeof stored?.refreshToken === 'string' && (!configured || stored.grantId === configured.grantId)
    if (usable && !unsaved) grant = stored
    else if (!loaded && !grant && configured) grant = { ...configured }
    loaded = true
    return grant
  }

  async function save(next: Grant) {
    try {
      await storage.set(key, next)
      unsaved = false
    } catch (cause) {
      unsaved = true
      report(new StorageError('Storing the grant failed; it is kept in memory', cause))
    }
  }

  /** After `invalid_grant`: delete the grant, unless another context has already replaced it. */
  async function forget(dead: StoredTokenSet) {
    if (grant?.refreshToken === dead.refreshToken) grant = undefined
    unsaved = false
    try {
      if ((await storage.get(key))?.refreshToken === dead.refreshToken) await storage.delete(key)
    } catch (cause) {
      report(new StorageError('Deleting the grant failed', cause))
    }
  }

  async function refresh(force: boolean, stale: string | undefined): Promise<Grant> {
    const at = epoch
    const current = await load()
    if (!current) throw new OAuthRefreshError('NO_GRANT', 'No refresh token')
    if (!force && isFresh(current, stale)) return current
    const secrets = [config.endpoint.clientSecret, current.refreshToken, current.accessToken]
    let answer
    try {
      answer = await endpoint.refresh(current.refreshToken, secrets)
    } catch (error) {
      if (error instanceof OAuthError && error.error === 'invalid_grant') await forget(current)
      throw error
    }
    if (at !== epoch) throw new OAuthRefreshError('NO_GRANT', 'The grant was cleared')
    const now = Date.now()
    const next: Grant = {
      accessToken: answer.accessToken,
      refreshToken: answer.refreshToken ?? current.refreshToken,
      obtainedAt: now,
      expiresAt: answer.expiresIn && now + answer.expiresIn * 1000,
      scope: answer.scope ?? current.scope,
      grantId: current.grantId,
    }
    await save(next)
    grant = next
    return next
  }

  async function token(force: boolean, stale: string | undefined, signal: AbortSignal | undefined): Promise<string> {
    if (!force && loaded && isFresh(grant, stale)) return grant.accessToken
    const shared = (inflight ??= refresh(force, stale).finally(() => {
      if (inflight === shared) inflight = undefined
    }))
    const next = await waitFor(shared, maxWaitMs, signal, () => {
      if (inflight === shared) inflight = undefined
    })
    return next.accessToken
  }

  return {
    getAccessToken: (options = {}) => token(options.forceRefresh === true, undefined, options.signal),
    fetch: createAuthorizedFetch(config, (stale, signal) => token(false, stale, signal)),
    async clear() {
      epoch++
      grant = undefined
      loaded = true
      unsaved = false
      try {
        await storage.delete(key)
      } catch (cause) {
        throw new StorageError('Deleting the grant failed', cause)
      }
    },
  }
}
