// The local server's checks of DPoP proofs (RFC 9449 §4.3) and client assertions (RFC 7523 §3),
// with node:crypto: written apart from the SDK's Web Crypto code, so that each checks the other.
import { createHash, createPublicKey, constants, verify } from 'node:crypto'

/** @param {string} text */
const decode = (text) => JSON.parse(Buffer.from(text, 'base64url').toString('utf8'))

/** Base64url SHA-256 of `text`. @param {string} text */
export const sha256 = (text) => createHash('sha256').update(text).digest('base64url')

/**
 * The RFC 7638 thumbprint of a public JWK.
 *
 * @param {Record<string, string>} jwk
 */
export function thumbprint(jwk) {
  const members = { EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], RSA: ['e', 'kty', 'n'] }[jwk.kty] ?? []
  return sha256(JSON.stringify(Object.fromEntries(members.map((name) => [name, jwk[name]]))))
}

/**
 * A compact JWS, its signature checked with `jwk` (or, when absent, the `jwk` of its header).
 *
 * @param {string} token
 * @param {Record<string, string> | undefined} jwk
 * @returns {{ header: Record<string, any>, payload: Record<string, any> } | undefined} undefined when it is no JWS, or its signature is wrong
 */
export function verifyJws(token, jwk) {
  const parts = String(token).split('.')
  if (parts.length !== 3) return undefined
  try {
    const header = decode(parts[0])
    const payload = decode(parts[1])
    const key = createPublicKey({ key: jwk ?? header.jwk, format: 'jwk' })
    const data = Buffer.from(`${parts[0]}.${parts[1]}`)
    const signature = Buffer.from(parts[2], 'base64url')
    /** @type {Record<string, () => boolean>} */
    const checks = {
      ES256: () => verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature),
      RS256: () => verify('sha256', data, key, signature),
      PS256: () => verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature),
      EdDSA: () => verify(null, data, key, signature),
    }
    return checks[header.alg]?.() ? { header, payload } : undefined
  } catch {
    return undefined
  }
}

/**
 * Checks a DPoP proof as RFC 9449 §4.3 says; the problem as an error code and description, or the
 * key's thumbprint.
 *
 * @param {string | string[] | undefined} proof the `DPoP` header(s)
 * @param {{ method: string, url: string, nonce?: string, accessToken?: string, seen: Set<string> }} expected
 * @returns {{ jkt: string, payload: Record<string, any> } | { error: string, description: string }}
 */
export function checkProof(proof, { method, url, nonce, accessToken, seen }) {
  const invalid = (/** @type {string} */ description) => ({ error: 'invalid_dpop_proof', description })
  if (typeof proof !== 'string') return invalid(proof ? 'more than one DPoP header' : 'DPoP proof missing')
  const jws = verifyJws(proof, undefined)
  if (!jws) return invalid('not a JWS signed by its jwk')
  const { header, payload } = jws
  if (header.typ !== 'dpop+jwt') return invalid('typ must be dpop+jwt')
  if (typeof header.jwk !== 'object' || 'd' in header.jwk) return invalid('jwk must be a public key')
  if (payload.htm !== method) return invalid('htm mismatch')
  if (payload.htu !== url) return invalid('htu mismatch (no query or fragment)')
  if (typeof payload.iat !== 'number' || Math.abs(payload.iat - Date.now() / 1000) > 60) return invalid('iat out of range')
  if (typeof payload.jti !== 'string' || seen.has(payload.jti)) return invalid('jti missing or replayed')
  seen.add(payload.jti)
  if (accessToken !== undefined && payload.ath !== sha256(accessToken)) return invalid('ath mismatch')
  if (nonce !== undefined && payload.nonce !== nonce) return { error: 'use_dpop_nonce', description: 'a DPoP nonce is required' }
  return { jkt: thumbprint(header.jwk), payload }
}

/**
 * Checks a `private_key_jwt` client assertion as RFC 7523 §3 says.
 *
 * @param {string | undefined} assertion
 * @param {{ clientId: string, jwk: Record<string, string>, audiences: string[], seen: Set<string> }} expected
 * @returns {string | undefined} the problem, or undefined when the assertion is good
 */
export function assertionProblem(assertion, { clientId, jwk, audiences, seen }) {
  const jws = assertion && verifyJws(assertion, jwk)
  if (!jws) return 'client assertion signature invalid'
  const { payload } = jws
  const now = Date.now() / 1000
  if (payload.iss !== clientId || payload.sub !== clientId) return 'iss and sub must be the client id'
  if (![payload.aud].flat().some((aud) => audiences.includes(aud))) return 'aud mismatch'
  if (typeof payload.exp !== 'number' || payload.exp <= now || payload.exp > now + 300) return 'exp missing, past or too far'
  if (typeof payload.jti !== 'string' || seen.has(payload.jti)) return 'jti missing or replayed'
  seen.add(payload.jti)
  return undefined
}
