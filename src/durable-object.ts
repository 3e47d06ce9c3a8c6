import { DurableObject } from 'cloudflare:workers'
import { createAuthorizedFetch } from './authorized-fetch.js'
import { createRefreshClient, waitFor, type RefreshClient } from './client.js'
import { fingerprint } from './grant-store.js'
import {
  ConfigError,
  OAuthError,
  OAuthRefreshError,
  StorageError,
  TokenRequestError,
  TokenResponseError,
  type OAuthRefreshErrorCode,
} from './errors.js'
import type { DPoP } from './dpop.js'
import { rejectUnknown } from './option-names.js'
import { parseOptions, type RefreshClientOptions } from './options.js'
import { hasMethods } from './storage/adapter.js'
import type { StoredTokenSet, TokenStorage } from './storage/types.js'
import { isOAuthError } from './token-request.js'

/**
 * The grant's configuration: every `createRefreshClient` option but `storage` and `storageKey`,
 * which the object owns, and `dpop`, which the object's `dpop` method makes.
 */
export type RefreshGrantOptions = Omit<RefreshClientOptions, 'storage' | 'storageKey' | 'dpop'>

/** What a caller asks the object for. */
export interface GrantTokenRequest {
  /**
   * A token the caller cannot use any more (the API refused it, or it expires within the
   * caller's leeway). The object refreshes if it is still its current token, so any number of
   * callers reporting the same token cause one refresh.
   */
  stale?: string | undefined
  /** Refresh even if the current token looks valid. */
  forceRefresh?: boolean | undefined
}

/** An access token from the object. Never the refresh token. */
export interface GrantToken {
  accessToken: string
  /** Epoch milliseconds at which it expires; absent when the server sent no `expires_in`. */
  expiresAt?: number | undefined
  /** Epoch milliseconds at which the object obtained it. */
  obtainedAt?: number | undefined
}

/** An SDK error as plain data, since an error thrown across RPC loses its class and fields. */
export interface GrantErrorData {
  name: string
  code: OAuthRefreshErrorCode
  message: string
  status?: number | undefined
  error?: string | undefined
  errorDescription?: string | undefined
  errorUri?: string | undefined
  cause?: GrantErrorData | undefined
}

/** A call of `createGrantClient` to its object. */
export type GrantCall = GrantTokenRequest & { clear?: boolean | undefined }

/** The object's answer to a `GrantCall`: a token, or the SDK error as data. */
export type GrantOutcome = { ok: true; token?: GrantToken | undefined } | { ok: false; error: GrantErrorData }

/** Each object keeps one grant, under this key of its own storage. */
const KEY = 'grant'

const OWNED_OPTIONS = ['storage', 'storageKey', 'dpop']

function toData(error: OAuthRefreshError): GrantErrorData {
  const { cause } = error
  return { ...(error.toJSON() as GrantErrorData), ...(cause instanceof OAuthRefreshError && { cause: toData(cause) }) }
}

/** The SDK error that `data` describes, of the same class and with the same fields. */
function revive(data: GrantErrorData): OAuthRefreshError {
  const cause = data.cause && revive(data.cause)
  const options = { status: data.status, ...(cause && { cause }) }
  switch (data.name) {
    case 'OAuthError':
      return new OAuthError(data.status!, data.error!, data.errorDescription, data.errorUri)
    case 'ConfigError':
      return new ConfigError(data.message)
    case 'StorageError':
      return new StorageError(data.message, cause)
    case 'TokenRequestError':
      return new TokenRequestError(data.code, data.message, options)
    case 'TokenResponseError':
      return new TokenResponseError(data.code, data.message, options)
  }
  return new OAuthRefreshError(data.code, data.message, options)
}

/**
 * A Durable Object that owns one refresh-token grant and performs every refresh of it, so that
 * a Worker running in any number of isolates and locations makes one token request per expiry.
 * Subclass it, return the grant's configuration from `options(env)`, and export the subclass
 * from your Worker; Workers reach it with `createGrantClient`.
 *
 * The grant (with its rotated refresh token) is kept in the object's own storage. The object's
 * RPC methods hand out access tokens only: no refresh token or client secret leaves it. Public
 * methods are callable over RPC, so `options(env)` should read the `env` it is given.
 *
 * @example
 * import { RefreshGrantObject, type RefreshGrantOptions } from 'oauth-refresh/durable-object'
 *
 * export class Grants extends RefreshGrantObject<Env> {
 *   options(env: Env): RefreshGrantOptions {
 *     return { tokenUrl: env.TOKEN_URL, clientId: env.CLIENT_ID, clientSecret: env.CLIENT_SECRET, refreshToken: env.REFRESH_TOKEN }
 *   }
 * }
 * @see https://developers.cloudflare.com/durable-objects/
 */
export abstract class RefreshGrantObject<Env = unknown> extends DurableObject<Env> {
  /** The grant's configuration, read from the Worker's environment. */
  abstract options(env: Env): RefreshGrantOptions

  /**
   * Override to bind the grant to a DPoP key (RFC 9449) that never leaves the object: return
   * `createDPoP({ storage })` of `oauth-refresh/dpop` with the `storage` given, the object's own.
   * Workers then call the API through the object (`createGrantClient(…, { dpop: true })`), which
   * signs every proof; the sign-in gets its key's thumbprint and proofs from `dpopThumbprint` and
   * `dpopProof`. Default: no DPoP.
   */
  dpop(_storage: TokenStorage): Promise<DPoP> | undefined {
    return undefined
  }

  #client: Promise<RefreshClient> | undefined
  #dpop: Promise<DPoP | undefined> | undefined
  readonly #keyStorage: TokenStorage = {
    get: (key) => this.ctx.storage.get(key),
    set: (key, value) => this.ctx.storage.put(key, value),
    delete: async (key) => void (await this.ctx.storage.delete(key)),
  }
  /** The token set last read or written, which tells the expiry of the token the client hands out. */
  #stored: StoredTokenSet | undefined
  readonly #storage: TokenStorage = {
    get: async (key) => (this.#stored = await this.ctx.storage.get<StoredTokenSet>(key)),
    set: async (key, value) => {
      this.#stored = value
      await this.ctx.storage.put(key, value)
    },
    delete: async (key) => {
      this.#stored = undefined
      await this.ctx.storage.delete(key)
    },
  }

  #options(): RefreshGrantOptions {
    const options = this.options(this.env)
    const owned = OWNED_OPTIONS.find((name) => Object.hasOwn(Object(options), name))
    if (owned) throw new ConfigError(`Option "${owned}" is not a known option: the object keeps the grant in its own storage`)
    return options
  }

  #key(): Promise<DPoP | undefined> {
    return (this.#dpop ??= Promise.resolve(this.dpop(this.#keyStorage)).catch((error: unknown) => {
      this.#dpop = undefined
      throw error
    }))
  }

  #refreshClient(): Promise<RefreshClient> {
    this.#client ??= (async () => createRefreshClient({ ...this.#options(), storage: this.#storage, storageKey: KEY, dpop: await this.#key() }))().catch((error: unknown) => {
      this.#client = undefined
      throw error
    })
    return this.#client
  }

  async #signer(): Promise<DPoP> {
    const dpop = await this.#key()
    if (!dpop) throw new ConfigError('This object has no DPoP key: its class does not override dpop()')
    return dpop
  }

  /** The RFC 7638 thumbprint of the object's DPoP key: `dpop_jkt` of the sign-in's authorization request. */
  async dpopThumbprint(): Promise<string> {
    return (await this.#signer()).thumbprint()
  }

  /** A DPoP proof by the object's key, for the sign-in's own requests (its code exchange); `nonce` as the server sent it. */
  async dpopProof(method: string, url: string, nonce?: string): Promise<string> {
    return (await this.#signer()).proof(method, url, { nonce })
  }

  /**
   * The RPC behind `createGrantClient(…, { dpop: true })`'s `fetch`: `request` sent with the token
   * and a DPoP proof made here; the API's answer, or the SDK error as data.
   */
  async grantFetch(request: Request): Promise<Response | GrantOutcome> {
    try {
      const client = await this.#refreshClient()
      // Read, so that a nonce challenge or a 401 can replay it: a stream can be sent once.
      const body = request.body && (await request.arrayBuffer())
      return await client.fetch(request.url, { method: request.method, headers: request.headers, body, redirect: request.redirect })
    } catch (error) {
      if (error instanceof OAuthRefreshError) return { ok: false, error: toData(error) }
      throw error
    }
  }

  /**
   * A valid access token. The object refreshes only when its token is missing or expiring, when
   * forced, or when `stale` is its current token; concurrent callers share one refresh.
   */
  async getAccessToken(request: GrantTokenRequest = {}): Promise<GrantToken> {
    const client = await this.#refreshClient()
    const { stale, forceRefresh } = request
    let accessToken = await client.getAccessToken({ forceRefresh: forceRefresh === true })
    // The first caller to report this token forces the refresh; the rest join it or find its result.
    if (stale !== undefined && accessToken === stale) accessToken = await client.getAccessToken({ forceRefresh: true })
    const stored = this.#stored
    return stored?.accessToken === accessToken ? { accessToken, expiresAt: stored.expiresAt, obtainedAt: stored.obtainedAt } : { accessToken }
  }

  /**
   * Starts or replaces this object's grant with a refresh token obtained elsewhere, e.g. one
   * object per user. A refresh in flight for the old grant is dropped.
   */
  async setRefreshToken(refreshToken: string, options: { scope?: string | undefined } = {}): Promise<void> {
    if (typeof refreshToken !== 'string' || refreshToken === '') throw new ConfigError('"refreshToken" must be a non-empty string')
    rejectUnknown(options, ['scope'])
    const { scope } = options
    if (scope !== undefined && typeof scope !== 'string') throw new ConfigError('Option "scope" must be a string')
    // The client resumes a stored grant only under the fingerprint of its configured token.
    const grantId = fingerprint(this.#options().refreshToken || refreshToken)
    await (await this.#client)?.clear()
    this.#client = undefined
    await this.#storage.set(KEY, { refreshToken, grantId, ...(scope !== undefined && { scope }) })
  }

  /** Forgets the grant; a DPoP key with it, replaced by a new one for the next sign-in. */
  async clear(): Promise<void> {
    await (await this.#refreshClient()).clear()
    await (await this.#key())?.clear()
  }

  /** The RPC behind `createGrantClient`: the outcome of a call as plain data, SDK errors included. */
  async grantCall(call: GrantCall): Promise<GrantOutcome> {
    try {
      if (call.clear) {
        await this.clear()
        return { ok: true }
      }
      return { ok: true, token: await this.getAccessToken({ stale: call.stale, forceRefresh: call.forceRefresh }) }
    } catch (error) {
      if (error instanceof OAuthRefreshError) return { ok: false, error: toData(error) }
      throw error
    }
  }
}

/**
 * The part of a Durable Object namespace binding the client uses, typed structurally so that
 * `env.GRANTS` fits without `@cloudflare/workers-types`.
 */
export interface GrantNamespaceLike<Id = unknown> {
  idFromName(name: string): Id
  get(id: Id): object
}

/** The Worker-side client of a `RefreshGrantObject`. */
export type GrantClient = Pick<RefreshClient, 'getAccessToken' | 'fetch'> & { clear(): Promise<void> }

/** Options of `createGrantClient`: how the token is sent, and how long it is kept. */
export interface GrantClientOptions {
  /** The header that carries the access token. Default `Authorization: Bearer {{access_token}}`. */
  authorizationHeader?: RefreshClientOptions['authorizationHeader']
  /** When set, the access token is sent only to these origins; other URLs are refused. */
  allowedOrigins?: string[] | undefined
  /** Ask the object for a new token this many seconds before expiry, at most half the token's lifetime. Default 30. */
  expiryLeewaySeconds?: number | undefined
  /**
   * The object's grant is DPoP-bound (its class overrides `dpop`): `fetch` sends each request
   * through the object, which adds the token and a proof, so neither the key nor a proof is
   * made in this isolate. The token from `getAccessToken` is then only usable with proofs.
   */
  dpop?: boolean | undefined
}

type GrantStub = { grantCall(call: GrantCall): Promise<GrantOutcome>; grantFetch(request: Request): Promise<Response | GrantOutcome> }

const CLIENT_OPTIONS = ['authorizationHeader', 'allowedOrigins', 'expiryLeewaySeconds', 'dpop']

/**
 * How long a request waits for an RPC that another request made: workerd drops that RPC if its
 * request ends first. Then the waiters make one new RPC, which finds the object's refresh done or
 * joins it.
 */
const SHARED_WAIT_MS = 2_000
const NO_TIMEOUT = 2 ** 31 - 1

/**
 * A client for the grant kept by the `RefreshGrantObject` named `name` in `namespace`, with the
 * core client's interface. Create it at module scope: it keeps the access token in the isolate
 * until it nears expiry (a call with a valid token makes no RPC), and the isolate's concurrent
 * requests share one RPC. On a 401 it reports the refused token to the object and replays the
 * request once. Errors are the SDK's own classes, with their codes, as the core throws them.
 *
 * @example
 * import { createGrantClient } from 'oauth-refresh/durable-object'
 *
 * let client: RefreshClient | undefined
 * export default {
 *   async fetch(request: Request, env: Env) {
 *     client ??= createGrantClient(env.GRANTS, 'main')
 *     return client.fetch('https://api.example.com/me')
 *   },
 * }
 */
export function createGrantClient(namespace: GrantNamespaceLike, name: string, options: GrantClientOptions = {}): GrantClient {
  if (!hasMethods(namespace, ['idFromName', 'get'])) throw new ConfigError('"namespace" must be a Durable Object namespace binding')
  if (typeof name !== 'string' || name === '') throw new ConfigError('"name" must be a non-empty string')
  rejectUnknown(options, CLIENT_OPTIONS)
  // The core parses these options; its token endpoint settings are unused here, the object's count.
  const { dpop, ...headerOptions } = options
  if (dpop !== undefined && typeof dpop !== 'boolean') throw new ConfigError('Option "dpop" must be true or false')
  const config = parseOptions({ ...headerOptions, tokenUrl: 'https://localhost/', clientId: name })
  const { leewayMs } = config

  let cached: GrantToken | undefined
  // The token the API last refused: the object is told of it until it has a newer one.
  let refusedToken: string | undefined
  let shared: Promise<GrantToken> | undefined
  // Bumped by clear(): an answer already on its way is not cached.
  let epoch = 0

  const forget = (flight: Promise<GrantToken>) => {
    if (shared === flight) shared = undefined
  }

  const usable = (token: GrantToken | undefined, stale: string | undefined): boolean => {
    if (!token || token.accessToken === stale) return false
    const { expiresAt, obtainedAt = expiresAt } = token
    return expiresAt === undefined || Date.now() < expiresAt - Math.min(leewayMs, (expiresAt - obtainedAt!) / 2)
  }

  // A stub serves one request only ("Cannot perform I/O on behalf of a different request").
  const stub = () => namespace.get(namespace.idFromName(name)) as GrantStub

  function fail(outcome: GrantOutcome & { ok: false }): never {
    const error = revive(outcome.error)
    // The object's grant has ended (revoked, or cleared from another isolate): its last token
    // must not outlive it here, nor an answer already on its way.
    if (error.code === 'NO_GRANT' || isOAuthError(error, 'invalid_grant')) {
      epoch++
      cached = undefined
    }
    throw error
  }

  async function call(request: GrantCall): Promise<GrantToken | undefined> {
    const outcome = await stub().grantCall(request)
    return outcome.ok ? outcome.token : fail(outcome)
  }

  /** `fetch` through the object, which adds the token and the proof (the key never leaves it). */
  async function viaObject(input: Request | string | URL, init?: RequestInit): Promise<Response> {
    const url = input instanceof Request ? new URL(input.url) : new URL(String(input))
    if (config.allowedOrigins && !config.allowedOrigins.has(url.origin)) throw new OAuthRefreshError('ORIGIN_NOT_ALLOWED', `${url.origin} is not in "allowedOrigins"`)
    const answer = await stub().grantFetch(new Request(input, init))
    if (answer instanceof Response) return answer
    return answer.ok ? Promise.reject(new TypeError('grantFetch answered no response')) : fail(answer)
  }

  async function ask(request: GrantTokenRequest): Promise<GrantToken> {
    const at = epoch
    const token = (await call(request))!
    if (at === epoch && (token.obtainedAt ?? 0) >= (cached?.obtainedAt ?? 0)) cached = token
    return token
  }

  async function token(refused: string | undefined, signal: AbortSignal | undefined): Promise<string> {
    // A token the API refused is handed out no more, even when reporting it fails.
    if (refused !== undefined) {
      refusedToken = refused
      if (cached?.accessToken === refused) cached = undefined
    }
    if (usable(cached, refused)) return cached!.accessToken
    signal?.throwIfAborted()
    // A refused or expiring token is stale: the object refreshes it unless that already happened.
    const stale = refused ?? cached?.accessToken ?? refusedToken
    const flight: Promise<GrantToken> = (shared ??= ask({ stale }).finally(() => forget(flight)))
    let late = false
    let next: GrantToken
    try {
      next = await waitFor(flight, SHARED_WAIT_MS, signal, () => {
        late = true
        forget(flight)
      })
    } catch (error) {
      if (late) return token(refused, signal)
      throw error
    }
    // That RPC was asked before this caller's token was refused.
    if (refused !== undefined && next.accessToken === refused) next = await ask({ stale: refused })
    return next.accessToken
  }

  return {
    async getAccessToken(options = {}) {
      if (options.forceRefresh !== true) return token(undefined, options.signal)
      options.signal?.throwIfAborted()
      return (await waitFor(ask({ forceRefresh: true }), NO_TIMEOUT, options.signal, () => {})).accessToken
    },
    fetch: dpop === true ? viaObject : createAuthorizedFetch(config, token),
    async clear() {
      epoch++
      cached = undefined
      shared = undefined
      await call({ clear: true })
    },
  }
}
