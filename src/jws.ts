import { ConfigError } from './errors.js'

/** JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1) the opt-in entries sign with, as Web Crypto names them. */
const ALGORITHMS = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  PS256: { name: 'RSA-PSS', hash: 'SHA-256', saltLength: 32 },
  EdDSA: { name: 'Ed25519' },
} as const

/** A JWS `alg` the entries sign with. */
export type JwsAlgorithm = keyof typeof ALGORITHMS

/** A private key ready to sign, and its algorithm. */
export interface Signer {
  key: CryptoKey
  alg: JwsAlgorithm
}

/** Unpadded base64url (RFC 4648 §5) of `bytes`. */
export function base64Url(bytes: ArrayBuffer | Uint8Array): string {
  let binary = ''
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
}

const json = (value: object) => base64Url(new TextEncoder().encode(JSON.stringify(value)))

/** Base64url of the SHA-256 digest of `text`'s UTF-8 bytes. */
export const sha256 = async (text: string) => base64Url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))

export const isAlgorithm = (value: unknown): value is JwsAlgorithm => typeof value === 'string' && Object.hasOwn(ALGORITHMS, value)

/** The algorithm a Web Crypto key signs with, as a JWS `alg`, or undefined. */
function algorithmOfKey({ algorithm }: CryptoKey): JwsAlgorithm | undefined {
  const { name, namedCurve, hash } = algorithm as { name: string; namedCurve?: string; hash?: { name: string } }
  return (Object.keys(ALGORITHMS) as JwsAlgorithm[]).find((alg) => {
    const params: { name: string; namedCurve?: string; hash?: string } = ALGORITHMS[alg]
    return params.name === name && params.namedCurve === namedCurve && (!hash || params.hash === hash.name)
  })
}

/** The algorithm a private JWK is for: its `alg`, else what its `kty` and `crv` mean. */
function algorithmOfJwk(jwk: JsonWebKey): JwsAlgorithm | undefined {
  if (isAlgorithm(jwk.alg)) return jwk.alg
  return jwk.kty === 'RSA' ? 'RS256' : jwk.kty === 'EC' && jwk.crv === 'P-256' ? 'ES256' : jwk.kty === 'OKP' && jwk.crv === 'Ed25519' ? 'EdDSA' : undefined
}

const isCryptoKey = (value: unknown): value is CryptoKey => typeof CryptoKey !== 'undefined' && value instanceof CryptoKey

/**
 * `key` (a private `CryptoKey` or a private JWK) as a {@link Signer} for `algorithm` (default: the
 * key's own). A `ConfigError` naming `option` when it is no private key of a supported
 * algorithm, or not of `algorithm`; the message never shows key material.
 */
export async function signer(key: unknown, algorithm: unknown, option: string): Promise<Signer> {
  const wrong = (problem: string) => new ConfigError(`Option "${option}" ${problem}`)
  if (algorithm !== undefined && !isAlgorithm(algorithm)) throw wrong(`needs an algorithm of ${Object.keys(ALGORITHMS).join(', ')}`)
  if (isCryptoKey(key)) {
    const alg = algorithmOfKey(key)
    if (key.type !== 'private' || !key.usages.includes('sign')) throw wrong('must be a private key that may sign')
    if (!alg || (algorithm && alg !== algorithm)) throw wrong(`must be a key of ${algorithm ?? 'ES256, RS256, PS256 or EdDSA'}`)
    return { key, alg }
  }
  const jwk = key as JsonWebKey
  if (typeof key !== 'object' || key === null || typeof jwk.d !== 'string') throw wrong('must be a private CryptoKey or a private JWK')
  const alg = (algorithm as JwsAlgorithm | undefined) ?? algorithmOfJwk(jwk)
  if (!alg) throw wrong('must be an ES256, RS256, PS256 or EdDSA key')
  try {
    // Without `alg`, `use` and `key_ops`: Web Crypto refuses a JWK whose own say differs from the import's.
    const { alg: _alg, use: _use, key_ops: _ops, ...material } = jwk
    return { key: await crypto.subtle.importKey('jwk', material, ALGORITHMS[alg], false, ['sign']), alg }
  } catch {
    // No cause: the runtime's message may quote the key.
    throw wrong(`must be a key of ${alg}`)
  }
}

/** Web Crypto's parameters for generating or importing a key of `alg`. */
export const keyParams = (alg: JwsAlgorithm) => ALGORITHMS[alg]

/** A compact JWS (RFC 7515 §7.1) of `payload`, with `header` and `alg`, signed by `signer`. */
export async function signJwt(header: object, payload: object, { key, alg }: Signer): Promise<string> {
  const input = `${json({ ...header, alg })}.${json(payload)}`
  // ECDSA signatures come as r ‖ s, as JWS wants them (RFC 7518 §3.4).
  return `${input}.${base64Url(await crypto.subtle.sign(ALGORITHMS[alg], key, new TextEncoder().encode(input)))}`
}
