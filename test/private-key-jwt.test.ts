import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { createDPoP } from '../src/dpop.js'
import { ConfigError, createRefreshClient, OAuthError, type RefreshClientOptions } from '../src/index.js'
import { privateKeyJwt, type PrivateKeyJwtOptions } from '../src/private-key-jwt.js'
import { demoClient, serve } from './support/loopback.js'

const RSA = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
const EC = { name: 'ECDSA', namedCurve: 'P-256' }

async function keyPair(params: RsaHashedKeyGenParams | EcKeyGenParams) {
  const pair = (await crypto.subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair
  return { pair, publicJwk: await crypto.subtle.exportKey('jwk', pair.publicKey), privateJwk: await crypto.subtle.exportKey('jwk', pair.privateKey) }
}

/** A confidential client with no secret: it authenticates with its key only. */
async function setup(publicJwk: JsonWebKey, auth: PrivateKeyJwtOptions, options: Partial<RefreshClientOptions> = {}, dpop?: object) {
  const server = await serve({ clientJwk: publicJwk as Record<string, string>, ...(dpop && { clientSecret: null, dpop }) })
  const client = createRefreshClient(demoClient(server, { clientSecret: undefined, clientAuthentication: privateKeyJwt(auth), revocationUrl: server.revocationUrl, ...options }))
  return { server, client }
}

const shown = (error: unknown) => `${String(error)} ${JSON.stringify(error)} ${inspect(error, { depth: 5 })}`

describe('privateKeyJwt', () => {
  it('authenticates refreshes with RS256 and ES256 keys, CryptoKey or JWK, a new assertion per request and retry', async () => {
    for (const [params, as] of [[RSA, 'jwk'], [EC, 'cryptokey']] as const) {
      const { pair, publicJwk, privateJwk } = await keyPair(params)
      const { server, client } = await setup(publicJwk, { key: as === 'jwk' ? privateJwk : pair.privateKey, kid: 'k1' })
      server.fault({ status: 503 })
      expect(await client.getAccessToken()).toMatch(/^at-/)
      // The 503 came before the server read the first assertion; the retry carried a new one.
      expect(server.assertionsChecked).toBe(1)
      expect(server.tokenRequests.map((request) => request.clientAuth)).toEqual(['jwt', 'jwt'])
      const [first, second] = server.tokenRequests.map((request) => request.form.client_assertion)
      expect(first).not.toBe(second)
      const [header, payload] = second!.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()))
      expect(header).toEqual({ typ: 'JWT', kid: 'k1', alg: params === RSA ? 'RS256' : 'ES256' })
      expect(payload).toEqual({ iss: 'demo-client', sub: 'demo-client', aud: server.tokenUrl, jti: expect.any(String), iat: expect.any(Number), exp: payload.iat + 60 })
      expect(server.tokenRequests[1]!.form).toMatchObject({ client_id: 'demo-client', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' })
      await client.getAccessToken({ forceRefresh: true })
      expect(server.assertionsChecked).toBe(2)
    }
  })

  it('revokes with an assertion too', async () => {
    const { pair, publicJwk } = await keyPair(EC)
    const { server, client } = await setup(publicJwk, { key: pair.privateKey })
    await client.getAccessToken()
    const refreshToken = server.validRefreshToken
    expect(await client.clear({ revoke: true })).toEqual({ revoked: true })
    expect(server.revocations).toEqual([{ token: refreshToken, hint: 'refresh_token', clientAuth: 'jwt' }])
  })

  it('sends the audience it is given; the server refuses one that is not its own', async () => {
    const { pair, publicJwk } = await keyPair(EC)
    const server = await serve({ clientJwk: publicJwk as Record<string, string> })
    const own = createRefreshClient(demoClient(server, { clientSecret: undefined, clientAuthentication: privateKeyJwt({ key: pair.privateKey, audience: server.origin }) }))
    await own.getAccessToken()
    const foreign = createRefreshClient(demoClient(server, { clientSecret: undefined, refreshToken: server.validRefreshToken, clientAuthentication: privateKeyJwt({ key: pair.privateKey, audience: 'https://other.example' }) }))
    await expect(foreign.getAccessToken()).rejects.toMatchObject({ error: 'invalid_client' })
  })

  it('with DPoP and a nonce challenge, the retry carries a new assertion and processes the refresh token once', async () => {
    const { pair, publicJwk } = await keyPair(EC)
    const dpop = await createDPoP()
    const { server, client } = await setup(publicJwk, { key: pair.privateKey }, { dpop }, { tokenNonce: true })
    expect((await client.fetch(server.apiUrl)).status).toBe(200)
    expect(server.tokenRequests).toHaveLength(2)
    expect(server.assertionsChecked).toBe(2)
    expect(server.processedRefreshTokens).toEqual(['demo-refresh-token'])
  })
})

describe('bad input', () => {
  it('a missing key or a bad option is a ConfigError at once', () => {
    expect(() => privateKeyJwt(undefined as unknown as PrivateKeyJwtOptions)).toThrow(ConfigError)
    expect(() => privateKeyJwt({} as PrivateKeyJwtOptions)).toThrow(/"key" is required/)
    expect(() => privateKeyJwt({ key: {}, kid: 1 as unknown as string })).toThrow(/"kid"/)
    expect(() => privateKeyJwt({ key: {}, audience: [] as unknown as string })).toThrow(/"audience"/)
    expect(() => createRefreshClient({ tokenUrl: 'https://as.example/token', clientId: 'c', refreshToken: 'r', clientAuthentication: {} as 'auto' })).toThrow(/privateKeyJwt/)
  })

  it('a key of the wrong type or algorithm is a ConfigError at the first request, before anything is sent; no key material shows', async () => {
    const rsa = await keyPair(RSA)
    const ec = await keyPair(EC)
    const hmac = await crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign'])
    const cases: Array<[string, PrivateKeyJwtOptions, RegExp]> = [
      ['a public JWK', { key: rsa.publicJwk }, /private CryptoKey or a private JWK/],
      ['a public CryptoKey', { key: ec.pair.publicKey }, /private key that may sign/],
      ['an RSA key said to be ES256', { key: rsa.pair.privateKey, algorithm: 'ES256' }, /key of ES256/],
      ['an RSA JWK said to be ES256', { key: rsa.privateJwk, algorithm: 'ES256' }, /key of ES256/],
      ['an HMAC key', { key: hmac }, /private key that may sign/],
      ['an unknown algorithm', { key: ec.privateJwk, algorithm: 'HS256' as 'ES256' }, /algorithm of/],
    ]
    const server = await serve({ clientJwk: ec.publicJwk as Record<string, string> })
    for (const [name, auth, message] of cases) {
      const client = createRefreshClient(demoClient(server, { clientSecret: undefined, clientAuthentication: privateKeyJwt(auth) }))
      const error = await client.getAccessToken().catch((caught: unknown) => caught)
      expect(error, name).toBeInstanceOf(ConfigError)
      expect((error as Error).message, name).toMatch(message)
      for (const secret of [rsa.privateJwk.d!, rsa.privateJwk.n!, ec.privateJwk.d!, 'demo-refresh-token']) expect(shown(error), name).not.toContain(secret)
    }
    expect(server.tokenHits).toBe(0)
  })

  it('a server refusing the assertion is an OAuthError without the assertion in it', async () => {
    const ec = await keyPair(EC)
    const other = await keyPair(EC)
    const { server, client } = await setup(other.publicJwk, { key: ec.pair.privateKey })
    const error = await client.getAccessToken().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(OAuthError)
    expect((error as OAuthError).error).toBe('invalid_client')
    expect(shown(error)).not.toContain(server.tokenRequests[0]!.form.client_assertion!.split('.')[2])
  })
})
