import { DurableObject } from 'cloudflare:workers'
import { createAuthorizedFetch } from './authorized-fetch.js'
import { createRefreshClient, waitFor, type ClearOptions, type ClearResult, type KeepAliveOptions, type RefreshClient } from './client.js'
import {
  ConfigError,
  NoGrantError,
  OAuthError,
  OAuthRefreshError,
  StorageError,
  TokenRequestError,
  TokenResponseError,
  type NoGrantReason,
  type OAuthRefreshErrorCode,
} from './errors.js'
import type { DPoP } from './dpop.js'
import { createEvents, type RefreshClientEvents, type RefreshReason, type TokenSet } from './events.js'
import type { SignIn } from './grant-store.js'
import { rejectUnknown, unknownOptions } from './option-names.js'
import { parseOptions, type RefreshClientOptions } from './options.js'
import { hasMethods } from './storage/adapter.js'
import type { StoredTokenSet, TokenStorage } from './storage/types.js'

/** How a `RefreshGrantObject` keeps its grant alive by itself, with a Durable Object alarm. */
export interface GrantKeepAlive {
  /** Refresh when the grant's last refresh is older than this, or its refresh token expires within it: `keepAlive({ maxIdleMs })`. */
  maxIdleMs: number
  /** How often the alarm checks; well under `maxIdleMs`, so that a check that fails has others after it. */
  everyMs: number
}

/**
 * The grant's configuration: every `createRefreshClient` option but `storage` and `storageKey`,
 * which the object owns, and `dpop`, which the object's `dpop` method makes; and `keepAlive`,
 * which makes the object refresh an idle grant by alarm.
 */
export type RefreshGrantOptions = Omit<RefreshClientOptions, 'storage' | 'storageKey' | 'dpop'> & { keepAlive?: GrantKeepAlive | undefined }

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

/** An SDK error as plain data, since an error thrown across RPC loses its class and fields. */
export interface GrantErrorData {
  name: string
  code: OAuthRefreshErrorCode
  message: string
  status?: number | undefined
  error?: string | undefined
  errorDescription?: string | undefined
  errorUri?: string | undefined
  reason?: NoGrantReason | undefined
  cause?: GrantErrorData | undefined
}

/** The object's methods that `createGrantClient` calls, through `grantCall`. */
type GrantMethods = Pick<RefreshGrantObject, 'getTokenSet' | 'setRefreshToken' | 'clear' | 'keepAlive'>

/** A call of `createGrantClient` to its object: a method and its arguments. */
export type GrantCall = { [M in keyof GrantMethods]: { method: M; args: Parameters<GrantMethods[M]> } }[keyof GrantMethods]

/**
 * The object's answer to a `GrantCall`: the method's value (a `clear` result's error as data) and
 * whether the token set came from a refresh that rotated the refresh token; or the SDK error as
 * data, and whether the grant ended during the call.
 */
export type GrantOutcome =
  | { ok: true; value?: TokenSet | boolean | { revoked: boolean; error?: GrantErrorData | undefined } | undefined; rotated?: boolean | undefined }
  | { ok: false; error: GrantErrorData; ended?: boolean | undefined }

/** Each object keeps one grant, under this key of its own storage. */
const KEY = 'grant'

const OWNED_OPTIONS = ['storage', 'storageKey', 'dpop']
const METHODS: readonly string[] = ['getTokenSet', 'setRefreshToken', 'clear', 'keepAlive']

const KEEP_ALIVE = ['maxIdleMs', 'everyMs'] as const

/** The `keepAlive` option, checked without valibot: a direct import of it would split the core's shared chunk. */
function keepAliveOption(value: unknown): GrantKeepAlive | undefined {
  if (value === undefined) return undefined
  const unknown = typeof value === 'object' && value !== null ? unknownOptions(value, KEEP_ALIVE, 'keepAlive.') : 'Option "keepAlive" must be an object { maxIdleMs, everyMs }'
  if (unknown) throw new ConfigError(unknown)
  for (const name of KEEP_ALIVE) {
    const ms = (value as GrantKeepAlive)[name]
    if (typeof ms !== 'number' || !(ms > 0)) throw new ConfigError(`Option "keepAlive.${name}" must be a number of milliseconds above 0`)
  }
  return value as GrantKeepAlive
}

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
    case 'NoGrantError':
      return new NoGrantError(data.reason!, cause as OAuthError | undefined)
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
 * With `keepAlive: { maxIdleMs, everyMs }` in `options(env)`, the object sets a Durable Object
 * alarm the first time it is used after it starts (or after a sign-in), and every `everyMs` its
 * `alarm()` refreshes the grant if it is idle (`keepAlive({ maxIdleMs })`), then sets the next
 * alarm; alarms survive eviction and restarts. Once the grant is gone the alarms stop, until
 * `setRefreshToken`. A subclass with alarms of its own calls `super.alarm()` from its `alarm()`.
 *
 * The client's events reach the hooks `onRefresh`, `onEnd` and `onError`, which a subclass
 * overrides to log or notify (e.g. `onEnd` to ask a user to sign in again).
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
 * @see https://developers.cloudflare.com/durable-objects/api/alarms/
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
  #keepAlive: GrantKeepAlive | undefined
  /** Whether this start of the object has made sure its keep-alive alarm is set. */
  #alarmSet: Promise<void> | undefined
  /** The access token of the last refresh that rotated the refresh token. */
  #rotated: string | undefined
  /** How many times the grant ended since the object started. */
  #ends = 0
  readonly #keyStorage: TokenStorage = {
    get: (key) => this.ctx.storage.get(key),
    set: (key, value) => this.ctx.storage.put(key, value),
    delete: async (key) => void (await this.ctx.storage.delete(key)),
  }
  readonly #storage: TokenStorage = {
    get: (key) => this.ctx.storage.get<StoredTokenSet>(key),
    set: (key, value) => this.ctx.storage.put(key, value),
    delete: async (key) => void (await this.ctx.storage.delete(key)),
  }

  #key(): Promise<DPoP | undefined> {
    return (this.#dpop ??= Promise.resolve(this.dpop(this.#keyStorage)).catch((error: unknown) => {
      this.#dpop = undefined
      throw error
    }))
  }

  #refreshClient(): Promise<RefreshClient> {
    return (this.#client ??= this.#createClient().catch((error: unknown) => {
      this.#client = undefined
      throw error
    }))
  }

  async #createClient(): Promise<RefreshClient> {
    const { keepAlive, ...options } = this.options(this.env)
    const owned = OWNED_OPTIONS.find((name) => Object.hasOwn(Object(options), name))
    if (owned) throw new ConfigError(`Option "${owned}" is not a known option: the object keeps the grant in its own storage`)
    this.#keepAlive = keepAliveOption(keepAlive)
    const client = createRefreshClient({ ...options, storage: this.#storage, storageKey: KEY, dpop: await this.#key() })
    client.on('refresh', (event) => {
      this.#rotated = event.rotated ? event.tokenSet.accessToken : this.#rotated
      this.onRefresh?.(event)
    })
    client.on('end', (event) => {
      this.#ends++
      this.onEnd?.(event)
    })
    client.on('error', (event) => this.onError?.(event))
    return client
  }

  /** The client, once the keep-alive alarm (when configured) is set. */
  async #ready(): Promise<RefreshClient> {
    const client = await this.#refreshClient()
    const keepAlive = this.#keepAlive
    if (keepAlive) await (this.#alarmSet ??= this.#arm(keepAlive.everyMs))
    return client
  }

  /** Sets the keep-alive alarm unless one is set: alarms survive restarts, and one set stays as it is. */
  async #arm(everyMs: number): Promise<void> {
    try {
      if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + everyMs)
    } catch (error) {
      this.#alarmSet = undefined
      throw error
    }
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

  /** Override to observe each refresh the object made, once the new grant is stored (the core's `refresh` event). */
  protected onRefresh?(event: RefreshClientEvents['refresh']): void

  /** Override to observe the end of the grant, once: cleared, revoked, or ended by the provider (`reason: 'rejected'`). */
  protected onEnd?(event: RefreshClientEvents['end']): void

  /** Override to observe a failed refresh, once for the callers that shared it (alarms included). */
  protected onError?(event: RefreshClientEvents['error']): void

  /**
   * The current token set, without the refresh token. The object refreshes only when its token
   * is missing or expiring, when forced, or when `stale` is its current token; concurrent callers
   * share one refresh.
   */
  async getTokenSet(request: GrantTokenRequest = {}): Promise<TokenSet> {
    const client = await this.#ready()
    const { stale, forceRefresh } = request
    const set = await client.getTokenSet({ forceRefresh: forceRefresh === true })
    // The first caller to report this token forces the refresh; the rest join it or find its result.
    return stale !== undefined && set.accessToken === stale ? client.getTokenSet({ forceRefresh: true }) : set
  }

  /** A valid access token, as `getTokenSet` refreshes it. */
  async getAccessToken(request: GrantTokenRequest = {}): Promise<string> {
    return (await this.getTokenSet(request)).accessToken
  }

  /**
   * Starts or replaces this object's grant with a refresh token obtained elsewhere (a sign-in),
   * as the core client's `setRefreshToken`; e.g. one object per user. A refresh in flight for the
   * old grant is dropped. With `accessToken` the first call hands it out instead of refreshing.
   */
  async setRefreshToken(refreshToken: string, signIn?: SignIn): Promise<void> {
    await (await this.#refreshClient()).setRefreshToken(refreshToken, signIn)
    // The alarms stopped when the last grant ended.
    this.#alarmSet = undefined
    await this.#ready()
  }

  /**
   * Forgets the grant; with `revoke: true` first revokes it at the `revocationUrl` option (RFC 7009).
   * A DPoP key goes with it, replaced by a new one for the next sign-in.
   */
  async clear(options?: ClearOptions): Promise<ClearResult> {
    const result = await (await this.#ready()).clear(options)
    await (await this.#key())?.clear()
    return result
  }

  /** Refreshes when the grant is idle, as the core client's `keepAlive`; resolves to `true` when it refreshed. */
  async keepAlive(options: KeepAliveOptions): Promise<boolean> {
    return (await this.#ready()).keepAlive(options)
  }

  /** The keep-alive alarm: refreshes an idle grant, then sets the next alarm while the grant lives. */
  async alarm(): Promise<void> {
    const client = await this.#refreshClient()
    const keepAlive = this.#keepAlive
    if (!keepAlive) return
    try {
      await client.keepAlive({ maxIdleMs: keepAlive.maxIdleMs })
    } catch (error) {
      // No grant to keep alive; other failures reach `onError`, and the next alarm tries again.
      if (error instanceof NoGrantError) return
    }
    await this.ctx.storage.setAlarm(Date.now() + keepAlive.everyMs)
  }

  /** The RPC behind `createGrantClient`: the outcome of a call as plain data, SDK errors included. */
  async grantCall(call: GrantCall): Promise<GrantOutcome> {
    return this.#outcome(async () => {
      if (!METHODS.includes(call.method)) throw new ConfigError(`"${String(call.method)}" is not a method of the grant`)
      const value = await (this[call.method] as (...args: unknown[]) => Promise<TokenSet | ClearResult | boolean | undefined>)(...call.args)
      if (typeof value !== 'object') return { ok: true, value }
      if ('accessToken' in value) return { ok: true, value, rotated: value.accessToken === this.#rotated }
      return { ok: true, value: { revoked: value.revoked, ...(value.error && { error: toData(value.error) }) } }
    })
  }

  /**
   * The RPC behind `createGrantClient(…, { dpop: true })`'s `fetch`: `request` sent with the token
   * and a DPoP proof made here; the API's answer, or the SDK error as data.
   */
  async grantFetch(request: Request): Promise<Response | GrantOutcome> {
    return this.#outcome(async () => {
      const client = await this.#ready()
      // Read, so that a nonce challenge or a 401 can replay it: a stream can be sent once.
      const body = request.body && (await request.arrayBuffer())
      return client.fetch(request.url, { method: request.method, headers: request.headers, body, redirect: request.redirect })
    })
  }

  /** What `task` answers, or its SDK error as data, and whether the grant ended meanwhile. */
  async #outcome<T>(task: () => Promise<T>): Promise<T | GrantOutcome> {
    const ends = this.#ends
    try {
      return await task()
    } catch (error) {
      if (error instanceof OAuthRefreshError) return { ok: false, error: toData(error), ended: this.#ends !== ends }
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
 * core client's interface. Create it at module scope: it keeps the token set in the isolate
 * until its token nears expiry (a call with a valid token makes no RPC), and the isolate's
 * concurrent requests share one RPC. On a 401 it reports the refused token to the object and
 * replays the request once. `setRefreshToken`, `clear({ revoke })` and `keepAlive` are done by the
 * object's own client. Errors are the SDK's own classes, with their codes, as the core throws them.
 *
 * Its events are what this isolate sees of the grant: `refresh` when it receives a token newer
 * than the one it held (its first included), `reason` saying why it asked (`'expired'`,
 * `'forced'`, `'rejected'`) and `rotated` whether the object's refresh rotated the refresh token
 * (false when the object no longer knows, e.g. after a restart); `error` when an RPC for a token
 * failed, once for the requests that shared it; `end` once when the grant is gone: after this
 * client's own `clear` (`'cleared'` or `'revoked'`), when the provider ended it (`'rejected'`,
 * with its answer), or when the object answers that it was cleared (`'elsewhere'`). The object's
 * own refreshes for other isolates and its alarms are not seen here: the object's hooks see them.
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
export function createGrantClient(namespace: GrantNamespaceLike, name: string, options: GrantClientOptions = {}): RefreshClient {
  if (!hasMethods(namespace, ['idFromName', 'get'])) throw new ConfigError('"namespace" must be a Durable Object namespace binding')
  if (typeof name !== 'string' || name === '') throw new ConfigError('"name" must be a non-empty string')
  // Another name is another object, holding no grant: an .env line break would hide the real one.
  if (name.trim() !== name) throw new ConfigError('"name" has leading or trailing whitespace: it would name another object than the one meant')
  rejectUnknown(options, CLIENT_OPTIONS)
  // The core parses these options; its token endpoint settings are unused here, the object's count.
  const { dpop, ...headerOptions } = options
  if (dpop !== undefined && typeof dpop !== 'boolean') throw new ConfigError('Option "dpop" must be true or false')
  const config = parseOptions({ ...headerOptions, tokenUrl: 'https://localhost/', clientId: name })
  const { leewayMs } = config
  const events = createEvents<RefreshClientEvents>()

  let cached: TokenSet | undefined
  // The token the API last refused: the object is told of it until it has a newer one.
  let refusedToken: string | undefined
  let shared: Promise<TokenSet> | undefined
  // Bumped when the grant ends or is replaced: an answer already on its way is not cached.
  let epoch = 0
  // Whether this isolate holds (or held) a token of the grant, or was told that it ended.
  let grant: 'unknown' | 'held' | 'ended' = 'unknown'

  const forget = (flight: Promise<TokenSet>) => {
    if (shared === flight) shared = undefined
  }

  const usable = (set: TokenSet | undefined, stale: string | undefined): boolean => {
    if (!set || set.accessToken === stale) return false
    const { expiresAt, obtainedAt = expiresAt } = set
    return expiresAt === undefined || Date.now() < expiresAt - Math.min(leewayMs, (expiresAt - obtainedAt!) / 2)
  }

  /**
   * Drops the grant's token here, and tells `end` once: for a grant this isolate held, or for
   * its own doing (its clear, its refresh that the provider refused).
   */
  function end(event: RefreshClientEvents['end'], own: boolean) {
    epoch++
    cached = undefined
    shared = undefined
    const tell = grant === 'held' || (grant === 'unknown' && own)
    grant = 'ended'
    if (tell) events.emit('end', event)
  }

  // A stub serves one request only ("Cannot perform I/O on behalf of a different request").
  const stub = () => namespace.get(namespace.idFromName(name)) as GrantStub

  function fail(outcome: GrantOutcome & { ok: false }): never {
    const error = revive(outcome.error)
    // The object's grant has ended (by the provider, or cleared from another isolate): its last
    // token must not outlive it here, nor an answer already on its way.
    if (error instanceof NoGrantError) end(error.reason === 'rejected' ? { reason: 'rejected', error: error.cause as OAuthError } : { reason: 'elsewhere' }, false)
    else if (outcome.ended) end(error instanceof OAuthError ? { reason: 'rejected', error } : { reason: 'elsewhere' }, error instanceof OAuthError)
    throw error
  }

  async function call<T>(request: GrantCall): Promise<{ value: T; rotated?: boolean | undefined }> {
    const outcome = await stub().grantCall(request)
    return outcome.ok ? (outcome as { value: unknown } as { value: T; rotated?: boolean | undefined }) : fail(outcome)
  }

  /** `fetch` through the object, which adds the token and the proof (the key never leaves it). */
  async function viaObject(input: Request | string | URL, init?: RequestInit): Promise<Response> {
    const url = input instanceof Request ? new URL(input.url) : new URL(String(input))
    if (config.allowedOrigins && !config.allowedOrigins.has(url.origin)) throw new OAuthRefreshError('ORIGIN_NOT_ALLOWED', `${url.origin} is not in "allowedOrigins"`)
    const answer = await stub().grantFetch(new Request(input, init))
    if (answer instanceof Response) return answer
    return answer.ok ? Promise.reject(new TypeError('grantFetch answered no response')) : fail(answer)
  }

  /** Asks the object for a token set and keeps it when it is newer than the one held. */
  async function ask(request: GrantTokenRequest, reason: RefreshReason): Promise<TokenSet> {
    const at = epoch
    let answer
    try {
      answer = await call<TokenSet>({ method: 'getTokenSet', args: [request] })
    } catch (error) {
      if (!(error instanceof NoGrantError)) events.emit('error', { error })
      throw error
    }
    const { value: set, rotated = false } = answer
    if (at === epoch && (set.obtainedAt ?? 0) >= (cached?.obtainedAt ?? 0)) {
      const renewed = set.accessToken !== cached?.accessToken
      cached = set
      grant = 'held'
      if (renewed) events.emit('refresh', { tokenSet: copy(set), rotated, reason })
    }
    return set
  }

  async function current(refused: string | undefined, signal: AbortSignal | undefined): Promise<TokenSet> {
    // A token the API refused is handed out no more, even when reporting it fails.
    if (refused !== undefined) {
      refusedToken = refused
      if (cached?.accessToken === refused) cached = undefined
    }
    if (usable(cached, refused)) return cached!
    signal?.throwIfAborted()
    // A refused or expiring token is stale: the object refreshes it unless that already happened.
    const stale = refused ?? cached?.accessToken ?? refusedToken
    const flight: Promise<TokenSet> = (shared ??= ask({ stale }, refused === undefined ? 'expired' : 'rejected').finally(() => forget(flight)))
    let late = false
    let next: TokenSet
    try {
      next = await waitFor(flight, SHARED_WAIT_MS, signal, () => {
        late = true
        forget(flight)
      })
    } catch (error) {
      if (late) return current(refused, signal)
      throw error
    }
    // That RPC was asked before this caller's token was refused.
    if (refused !== undefined && next.accessToken === refused) next = await ask({ stale: refused }, 'rejected')
    return next
  }

  async function tokenSet(options: { forceRefresh?: boolean; signal?: AbortSignal } = {}): Promise<TokenSet> {
    if (options.forceRefresh !== true) return current(undefined, options.signal)
    options.signal?.throwIfAborted()
    return waitFor(ask({ forceRefresh: true }, 'forced'), NO_TIMEOUT, options.signal, () => {})
  }

  return {
    getAccessToken: async (options) => (await tokenSet(options)).accessToken,
    getTokenSet: async (options) => copy(await tokenSet(options)),
    fetch: dpop === true ? viaObject : createAuthorizedFetch(config, async (stale, signal) => (await current(stale, signal)).accessToken),
    async setRefreshToken(refreshToken, signIn) {
      await call({ method: 'setRefreshToken', args: [refreshToken, signIn] })
      // The old grant's token is not the new grant's.
      epoch++
      cached = undefined
      shared = undefined
      grant = 'held'
    },
    async clear(options) {
      epoch++
      cached = undefined
      shared = undefined
      const { value } = await call<{ revoked: boolean; error?: GrantErrorData }>({ method: 'clear', args: [options] })
      const result: ClearResult = { revoked: value.revoked, ...(value.error && { error: revive(value.error) }) }
      end({ reason: result.revoked ? 'revoked' : 'cleared', error: result.error }, true)
      return result
    },
    keepAlive: async (options) => (await call<boolean>({ method: 'keepAlive', args: [options] })).value,
    on: events.on,
  }
}

/** A token set the caller may change without changing the one kept. */
const copy = (set: TokenSet): TokenSet => ({ ...set, fields: { ...set.fields } })
