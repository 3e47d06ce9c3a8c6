import { ConfigError } from './errors.js'
import { exclusive } from './lock.js'
import { base64Url, type JwsAlgorithm, keyParams, sha256, signer, signJwt, type Signer } from './jws.js'
import type { DPoPHook } from './options.js'
import type { StoredTokenSet, TokenStorage } from './storage/types.js'

/** Options of `createDPoP`. */
export interface DPoPOptions {
  /**
   * Where the key is kept, normally the client's own storage: the key lives and dies with the
   * grant bound to it, so a restarted Worker, script or browser goes on with the same key. A
   * storage that keeps a `CryptoKey` as it is (IndexedDB, Durable Object storage, memory) keeps
   * a non-extractable key pair; one that keeps only JSON (Cloudflare KV, Deno KV, Redis, a
   * browser extension's storage, your own JSON storage) keeps the private key as a JWK, readable
   * by whoever reads that storage. Without it the key is in this context's memory only.
   */
  storage?: TokenStorage | undefined
  /** The key's storage key. Default `oauth-refresh:dpop`; one per grant. */
  storageKey?: string | undefined
  /**
   * The key pair (or a private JWK) of an existing grant, e.g. the one the app's own code exchange
   * used; it replaces the stored one. Default: the stored key, else a new one.
   */
  key?: CryptoKeyPair | JsonWebKey | undefined
  /** The algorithm of a new key: `ES256` (default) or `EdDSA` (Ed25519, where the runtime has it). */
  algorithm?: 'ES256' | 'EdDSA' | undefined
}

/** Options of `dpop.proof`. */
export interface ProofOptions {
  /** The server's nonce (RFC 9449 §8, §9). Default: the last one the URL's origin sent. */
  nonce?: string | undefined
  /** The access token the request carries: the proof then holds its hash (`ath`, RFC 9449 §4.2). */
  accessToken?: string | undefined
}

/**
 * A DPoP key (RFC 9449) and the proofs it signs, for one client and its grant. Pass it as the
 * `dpop` option of `createRefreshClient`: every token request and `client.fetch` call then carries
 * a proof, `client.fetch` sends `Authorization: DPoP <token>`, and the servers' nonces are kept.
 */
export interface DPoP extends DPoPHook {
  /** The RFC 7638 JWK SHA-256 thumbprint of the public key: `dpop_jkt` of the authorization request (RFC 9449 §10). */
  thumbprint(): Promise<string>
  /**
   * A DPoP proof (RFC 9449 §4.2) for a request of `method` to `url`, for the app's own requests
   * (its code exchange): `typ: dpop+jwt`, the public `jwk`, `htm`, `htu` without query and
   * fragment, `iat`, a unique `jti`, and `nonce` and `ath` when they apply.
   */
  proof(method: string, url: string | URL, options?: ProofOptions): Promise<string>
  /** The public key as a JWK, as the proofs carry it. */
  publicJwk(): JsonWebKey
  /**
   * Remembers the `DPoP-Nonce` of an answer from `url`, for the next proofs to its origin: for
   * answers the app's own requests (its code exchange) got.
   */
  nonce(url: string | URL, headers: Headers): void
  /** Forgets the key, in storage too, and makes a new one for the next grant: call it after `client.clear()`. */
  clear(): Promise<void>
}

// The members of a public key that its thumbprint (RFC 7638 §3.2) and the proofs' `jwk` hold.
const PUBLIC_MEMBERS: Record<string, string[]> = { EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], RSA: ['e', 'kty', 'n'] }

const publicMembers = (jwk: JsonWebKey) => Object.fromEntries((PUBLIC_MEMBERS[jwk.kty!] ?? []).map((name) => [name, jwk[name as keyof JsonWebKey]]))

interface Key extends Signer {
  jwk: JsonWebKey
}

/** What the storage keeps under `storageKey`: the pair where it keeps CryptoKeys, else the private JWK. */
interface StoredKey {
  dpopKey: { privateKey: CryptoKey; publicKey: CryptoKey } | { jwk: JsonWebKey }
}

const isCryptoKeyPair = (value: unknown): value is CryptoKeyPair =>
  typeof CryptoKey !== 'undefined' && Object(value).privateKey instanceof CryptoKey && Object(value).publicKey instanceof CryptoKey

// Longer than any storage call and key generation take; bounds the wait for another context's.
const LOCK_MS = 10_000

const RESOURCE_CHALLENGE = /^DPoP\b.*\berror="?use_dpop_nonce/i

const isStream = (body: unknown) => typeof Object(body).getReader === 'function'

/**
 * Creates the DPoP key (RFC 9449) of one client and its grant, for the `dpop` option of
 * `createRefreshClient`: the key in `storage`, else `key`, else a new one (kept in `storage`).
 * A bad option or key is a `ConfigError`; no message shows key material.
 *
 * @example
 * const storage = indexedDBStorage()
 * const dpop = await createDPoP({ storage })
 * // Sign in with dpop_jkt = await dpop.thumbprint(), and a proof on the code exchange:
 * //   headers: { DPoP: await dpop.proof('POST', tokenUrl) }
 * const client = createRefreshClient({ tokenUrl, clientId, storage, dpop })
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449
 */
export async function createDPoP(options: DPoPOptions = {}): Promise<DPoP> {
  const { storage, storageKey = 'oauth-refresh:dpop', key: given, algorithm = 'ES256' } = Object(options) as DPoPOptions
  if (algorithm !== 'ES256' && algorithm !== 'EdDSA') throw new ConfigError('Option "algorithm" must be \'ES256\' or \'EdDSA\'')
  if (storage !== undefined && typeof Object(storage).get !== 'function') throw new ConfigError('Option "storage" must be a TokenStorage')
  const nonces = new Map<string, string>()

  /** `key` as a Signer of ES256 or EdDSA, which DPoP servers take. */
  async function dpopSigner(key: CryptoKey | JsonWebKey, alg?: JwsAlgorithm): Promise<Signer> {
    const found = await signer(key, alg, 'key')
    if (found.alg !== 'ES256' && found.alg !== 'EdDSA') throw new ConfigError('Option "key" must be an ES256 or EdDSA key')
    return found
  }

  async function fromPair(pair: CryptoKeyPair, alg?: JwsAlgorithm): Promise<Key> {
    const found = await dpopSigner(pair.privateKey, alg)
    if (pair.publicKey.type !== 'public') throw new ConfigError('Option "key" must hold a public key')
    return { ...found, jwk: publicMembers(await crypto.subtle.exportKey('jwk', pair.publicKey)) }
  }

  const fromJwk = async (jwk: JsonWebKey): Promise<Key> => ({ ...(await dpopSigner(jwk)), jwk: publicMembers(jwk) })

  /** Stores `pair` as it is where the storage keeps CryptoKeys, else as a private JWK (when the key is extractable). */
  async function keep(pair: CryptoKeyPair): Promise<void> {
    if (!storage) return
    const write = (value: StoredKey) => storage.set(storageKey, value as unknown as StoredTokenSet)
    try {
      await write({ dpopKey: { privateKey: pair.privateKey, publicKey: pair.publicKey } })
      // A JSON-only storage writes a CryptoKey as {}.
      if (isCryptoKeyPair(Object(await storage.get(storageKey)).dpopKey)) return
    } catch {
      // A structured-clone storage that cannot clone a CryptoKey (Deno KV) refuses it: a JWK, then.
    }
    if (!pair.privateKey.extractable) throw new ConfigError('Option "key" cannot be kept by this storage, which keeps only JSON: give an extractable key or a private JWK')
    await write({ dpopKey: { jwk: await crypto.subtle.exportKey('jwk', pair.privateKey) } })
  }

  /** A new key pair, kept in storage: non-extractable when the storage keeps CryptoKeys. */
  async function generate(): Promise<Key> {
    const make = (extractable: boolean) => crypto.subtle.generateKey(keyParams(algorithm), extractable, ['sign', 'verify']) as Promise<CryptoKeyPair>
    let pair: CryptoKeyPair
    try {
      pair = await make(false)
    } catch {
      throw new ConfigError(`Option "algorithm" ${algorithm} is not supported by this runtime's Web Crypto`)
    }
    try {
      await keep(pair)
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      // JSON-only storage: a key that can be written out as a JWK.
      pair = await make(true)
      await keep(pair)
      return fromJwk(await crypto.subtle.exportKey('jwk', pair.privateKey))
    }
    return fromPair(pair, algorithm)
  }

  async function load(): Promise<Key | undefined> {
    const stored = Object(await storage?.get(storageKey)).dpopKey as StoredKey['dpopKey'] | undefined
    if (isCryptoKeyPair(stored)) return fromPair(stored)
    if (stored && 'jwk' in stored) return fromJwk(stored.jwk)
    return undefined
  }

  async function fromGiven(value: CryptoKeyPair | JsonWebKey): Promise<Key> {
    if (isCryptoKeyPair(value)) {
      const key = await fromPair(value)
      await keep(value)
      return key
    }
    const key = await fromJwk(value as JsonWebKey)
    await storage?.set(storageKey, { dpopKey: { jwk: value } } as unknown as StoredTokenSet)
    return key
  }

  // Under the grant storage's lock (or Web Locks): two contexts starting at once (two tabs before
  // the sign-in) keep one key, not each its own, one of which the other overwrites.
  const locked = <T>(task: () => Promise<T>) => (storage ? exclusive(storage, storageKey, task, LOCK_MS) : task())
  let current = await locked(async () => (given === undefined ? ((await load()) ?? (await generate())) : fromGiven(given)))

  async function proof(method: string, url: string | URL, { nonce, accessToken }: ProofOptions = {}): Promise<string> {
    const target = new URL(url)
    const payload = {
      jti: crypto.randomUUID(),
      htm: method.toUpperCase(),
      htu: target.origin + target.pathname,
      iat: Math.floor(Date.now() / 1000),
      nonce: nonce ?? nonces.get(target.origin),
      ath: accessToken === undefined ? undefined : await sha256(accessToken),
    }
    return signJwt({ typ: 'dpop+jwt', jwk: current.jwk }, payload, current)
  }

  function remember(url: string | URL, headers: Headers) {
    const nonce = headers.get('dpop-nonce')
    if (nonce) nonces.set(new URL(url).origin, nonce)
  }

  return {
    proof,
    nonce: remember,
    publicJwk: () => ({ ...current.jwk }),
    thumbprint: async () => base64Url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify(current.jwk)))),
    async clear() {
      current = await locked(async () => {
        await storage?.delete(storageKey)
        return generate()
      })
    },
    wrap: (send) =>
      async function dpopFetch(input, init = {}) {
        const request = input instanceof Request ? input : undefined
        const url = new URL(request?.url ?? String(input), (globalThis as { location?: { href: string } }).location?.href)
        const method = init.method ?? request?.method ?? 'GET'
        const headers = new Headers(init.headers ?? request?.headers)
        // RFC 9449 §7.1: a request that carries a DPoP-bound token proves it with `ath`.
        const accessToken = /^DPoP (.+)$/i.exec(headers.get('authorization') ?? '')?.[1]
        const attempt = async () => {
          headers.set('dpop', await proof(method, url, { accessToken }))
          const response = await send(input, { ...init, headers })
          remember(url, response.headers)
          return response
        }
        const response = await attempt()
        // RFC 9449 §9: a resource server that wants a nonce answers 401 with it; replayed once,
        // when the body can be sent again. The token endpoint answers 400 (§8): the client's
        // refresh loop sends that request again, with a new client assertion.
        const replay =
          accessToken !== undefined &&
          response.status === 401 &&
          response.headers.has('dpop-nonce') &&
          RESOURCE_CHALLENGE.test(response.headers.get('www-authenticate') ?? '') &&
          !isStream(init.body ?? request?.body)
        if (!replay) return response
        await response.body?.cancel()
        return attempt()
      },
  }
}
