import { ConfigError } from './errors.js'
import { type JwsAlgorithm, signer, signJwt, type Signer } from './jws.js'
import type { ClientAssertion } from './token-request.js'

/** Options of `privateKeyJwt`. */
export interface PrivateKeyJwtOptions {
  /** The client's private key: a `CryptoKey` that may sign, or a private JWK. */
  key: CryptoKey | JsonWebKey
  /** The key's id at the provider (its JWKS), sent as the JWS `kid` header. */
  kid?: string | undefined
  /** `RS256`, `PS256`, `ES256` or `EdDSA`. Default: the key's own (`alg` of a JWK, else its type). */
  algorithm?: JwsAlgorithm | undefined
  /** The assertion's `aud`. Default the token endpoint URL; some providers want their issuer. */
  audience?: string | undefined
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/**
 * Client authentication with a private key (`private_key_jwt`, RFC 7523 §2.2 and OpenID Connect
 * Core §9), for the `clientAuthentication` option: every token and revocation request, and every
 * retry, carries a new assertion (`iss` = `sub` = the client id, `aud`, a unique `jti`, `iat`, and
 * `exp` a minute later) as `client_assertion`. A bad key is a `ConfigError`, at once for a
 * missing one, at the first request for one of the wrong type or algorithm; no message shows key
 * material.
 *
 * @example
 * const client = createRefreshClient({
 *   tokenUrl, clientId, refreshToken,
 *   clientAuthentication: privateKeyJwt({ key: JSON.parse(env.CLIENT_JWK), kid: 'key-1' }),
 * })
 *
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2
 */
export function privateKeyJwt(options: PrivateKeyJwtOptions): ClientAssertion {
  const { key, kid, algorithm, audience } = Object(options) as PrivateKeyJwtOptions
  if (key === undefined) throw new ConfigError('Option "key" is required: a private CryptoKey or JWK')
  if (kid !== undefined && typeof kid !== 'string') throw new ConfigError('Option "kid" must be a string')
  if (audience !== undefined && typeof audience !== 'string') throw new ConfigError('Option "audience" must be a string')
  let signing: Promise<Signer> | undefined
  return async (clientId, tokenUrl) => {
    const now = Math.floor(Date.now() / 1000)
    const payload = { iss: clientId, sub: clientId, aud: audience ?? tokenUrl, jti: crypto.randomUUID(), iat: now, exp: now + 60 }
    const assertion = await signJwt({ typ: 'JWT', kid }, payload, await (signing ??= signer(key, algorithm, 'key')))
    return { client_assertion_type: ASSERTION_TYPE, client_assertion: assertion }
  }
}
