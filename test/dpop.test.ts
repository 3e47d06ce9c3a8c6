import { inspect } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { sha256, thumbprint } from '../examples/local-server/jose.mjs'
import type { LocalServer, LocalServerOptions } from '../examples/local-server/server.mjs'
import { createDPoP, type DPoP } from '../src/dpop.js'
import { ConfigError, createRefreshClient, memoryStorage, OAuthError, type RefreshClientOptions, type StoredTokenSet, type TokenStorage } from '../src/index.js'
import { lockedStorage } from './support/locked-storage.js'
import { demoClient, serve } from './support/loopback.js'

/** A storage that keeps only JSON, as Cloudflare KV, Deno KV, Redis and extension storage do. */
function jsonStorage(): TokenStorage & { data: Map<string, string> } {
  const data = new Map<string, string>()
  return {
    data,
    get: async (key) => (data.has(key) ? JSON.parse(data.get(key)!) : undefined),
    set: async (key, value) => void data.set(key, JSON.stringify(value)),
    delete: async (key) => void data.delete(key),
  }
}

/** A public client (as Bluesky's) with DPoP, against the local server in DPoP mode. */
async function setup(dpopServer: LocalServerOptions['dpop'] = {}, options: Partial<RefreshClientOptions> = {}) {
  const server = await serve({ clientSecret: null, dpop: dpopServer })
  const storage = options.storage ?? memoryStorage()
  const dpop = await createDPoP({ storage })
  const client = createRefreshClient(demoClient(server, { clientSecret: undefined, storage, storageKey: 'grant', dpop, ...options }))
  return { server, storage, dpop, client }
}

const duplicates = (values: string[]) => values.filter((value, i) => values.indexOf(value) !== i)

/** Everything a secret could leak through: message, toJSON, inspection, cause. */
const shown = (error: unknown) => `${String(error)} ${JSON.stringify(error)} ${inspect(error, { depth: 5 })}`

describe('createDPoP with the client', () => {
  it('runs the whole cycle: nonce challenges at both endpoints spend nothing, rotation, API calls with ath, a restart with the stored key', async () => {
    const { server, storage, dpop, client } = await setup({ tokenNonce: true, apiNonce: true })
    const response = await client.fetch(`${server.apiUrl}/things?page=2`)
    expect(response.status).toBe(200)
    // The token endpoint asked for a nonce once; the refresh token was processed once.
    expect(server.tokenRequests).toHaveLength(2)
    expect(server.processedRefreshTokens).toEqual(['demo-refresh-token'])
    const set = await client.getTokenSet()
    expect(set.tokenType).toBe('DPoP')
    // The API call used the nonce the token endpoint sent on the same origin: no challenge.
    expect(server.apiRequests).toBe(1)
    const [apiCall] = server.apiLog
    expect(apiCall!.headers.authorization).toBe(`DPoP ${set.accessToken}`)
    const proof = server.dpopProofs.at(-1)!
    expect(proof).toMatchObject({ htm: 'GET', htu: `${server.origin}/api/things`, ath: sha256(set.accessToken), nonce: server.dpopNonce })

    // The API wants a new nonce: its 401 challenge is answered once, with the same token.
    server.rotateDpopNonce()
    const replayed = await client.fetch(`${server.apiUrl}/things`, { method: 'POST', body: 'payload' })
    expect(replayed.status).toBe(200)
    expect(await replayed.json()).toMatchObject({ method: 'POST', body: 'payload' })
    expect(server.apiRequests).toBe(3)
    expect(server.tokenRequests).toHaveLength(2)

    // Rotation: the new refresh token is bound to the same key.
    server.rotateDpopNonce()
    const rotatedFrom = server.validRefreshToken
    await client.getAccessToken({ forceRefresh: true })
    expect(server.processedRefreshTokens).toEqual(['demo-refresh-token', rotatedFrom])

    // A restart: the key comes back from storage, and the bound grant refreshes with it.
    const again = await createDPoP({ storage })
    expect(await again.thumbprint()).toBe(await dpop.thumbprint())
    const restarted = createRefreshClient(demoClient(server, { clientSecret: undefined, storage, storageKey: 'grant', dpop: again }))
    await restarted.getAccessToken({ forceRefresh: true })
    expect(await (await restarted.fetch(`${server.apiUrl}/me`)).json()).toMatchObject({ ok: true })
    expect(duplicates(server.processedRefreshTokens)).toEqual([])
    expect(server.processedRefreshTokens).toHaveLength(3)
  })

  it('100 concurrent callers through a nonce challenge make one refresh', async () => {
    const { server, client } = await setup({ tokenNonce: true })
    const tokens = await Promise.all(Array.from({ length: 100 }, () => client.getAccessToken()))
    expect(new Set(tokens).size).toBe(1)
    expect(server.tokenRequests).toHaveLength(2)
    expect(server.processedRefreshTokens).toEqual(['demo-refresh-token'])
  })

  it('keeps the nonce each successful answer brings, per origin: no request is challenged', async () => {
    const { server, client } = await setup({ tokenNonce: true, apiNonce: true, rotateNonce: true })
    await client.getAccessToken()
    const before = server.apiRequests
    for (let i = 0; i < 5; i++) expect((await client.fetch(server.apiUrl)).status).toBe(200)
    expect(server.apiRequests - before).toBe(5)
    await client.getAccessToken({ forceRefresh: true })
    expect(server.tokenRequests).toHaveLength(3)
  })

  it('retries a use_dpop_nonce answer once: a second one is the error', async () => {
    const { server, client } = await setup()
    server.fault({ error: 'use_dpop_nonce' })
    server.fault({ error: 'use_dpop_nonce' })
    const error = await client.getAccessToken().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(OAuthError)
    expect((error as OAuthError).error).toBe('use_dpop_nonce')
    expect(server.tokenRequests).toHaveLength(2)
    // Not a dead grant: the next call refreshes with it.
    expect(await client.getAccessToken()).toMatch(/^at-/)
  })

  it('a server answering a DPoP error keeps the grant; no token or key shows in the error', async () => {
    const storage = jsonStorage()
    const { server, client } = await setup({}, { storage })
    await client.getAccessToken()
    const refreshToken = server.validRefreshToken
    server.fault({ error: 'invalid_dpop_proof', errorDescription: 'bad proof' })
    const error = await client.getAccessToken({ forceRefresh: true }).catch((caught: unknown) => caught)
    expect(error).toMatchObject({ code: 'OAUTH_ERROR', error: 'invalid_dpop_proof' })
    expect(await storage.get('grant')).toMatchObject({ refreshToken })
    const { jwk } = JSON.parse(storage.data.get('oauth-refresh:dpop')!).dpopKey
    for (const secret of [refreshToken, ...server.issuedTokens, jwk.d]) expect(shown(error)).not.toContain(secret)
    await client.getAccessToken({ forceRefresh: true })
    expect(server.processedRefreshTokens).toEqual(['demo-refresh-token', refreshToken])
  })

  it('a 401 that is no nonce challenge is left to the client: one refresh, one replay', async () => {
    const { server, client } = await setup({ apiNonce: true })
    await client.fetch(server.apiUrl)
    const [apiBefore, tokenBefore] = [server.apiRequests, server.tokenRequests.length]
    server.revokeAccessTokens()
    expect((await client.fetch(server.apiUrl)).status).toBe(200)
    expect(server.apiRequests - apiBefore).toBe(2)
    expect(server.tokenRequests.length - tokenBefore).toBe(1)
  })

  it('does not replay a resource request whose body is a stream', async () => {
    const { server, client } = await setup({ apiNonce: true, rotateNonce: true })
    await client.getAccessToken()
    server.rotateDpopNonce()
    const body = new ReadableStream({ start: (controller) => (controller.enqueue(new TextEncoder().encode('x')), controller.close()) })
    const response = await client.fetch(new Request(server.apiUrl, { method: 'POST', body, duplex: 'half' } as RequestInit))
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toContain('use_dpop_nonce')
  })
})

describe('bound grants stay bound', () => {
  it('a client without dpop over a DPoP-bound grant refuses before any request and keeps the grant', async () => {
    const { server, storage, client } = await setup()
    await client.getAccessToken()
    const stored = await storage.get('grant')
    const plain = createRefreshClient(demoClient(server, { clientSecret: undefined, storage, storageKey: 'grant' }))
    const hits = server.tokenHits
    const error = await plain.getAccessToken({ forceRefresh: true }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).message).toMatch(/"dpop".*DPoP/)
    expect(server.tokenHits).toBe(hits)
    expect(await storage.get('grant')).toEqual(stored)
  })

  it('accepts token_type DPoP only with dpop', async () => {
    const server = await serve({ clientSecret: null })
    server.fault({ tokenType: 'DPoP', rotate: false })
    const plain = createRefreshClient(demoClient(server, { clientSecret: undefined }))
    await expect(plain.getAccessToken()).rejects.toMatchObject({ code: 'UNSUPPORTED_TOKEN_TYPE', message: expect.stringContaining('dpop') })
  })
})

describe('the key', () => {
  it('is kept non-extractable where the storage keeps a CryptoKey, as a private JWK where it keeps only JSON', async () => {
    const memory = memoryStorage()
    const kept = await createDPoP({ storage: memory })
    const record = (await memory.get('oauth-refresh:dpop')) as unknown as { dpopKey: { privateKey: CryptoKey } }
    expect(record.dpopKey.privateKey).toBeInstanceOf(CryptoKey)
    expect(record.dpopKey.privateKey.extractable).toBe(false)
    expect(await (await createDPoP({ storage: memory })).thumbprint()).toBe(await kept.thumbprint())

    const json = jsonStorage()
    const dpop = await createDPoP({ storage: json })
    expect(JSON.parse(json.data.get('oauth-refresh:dpop')!)).toMatchObject({ dpopKey: { jwk: { kty: 'EC', crv: 'P-256', d: expect.any(String) } } })
    expect(await (await createDPoP({ storage: json })).thumbprint()).toBe(await dpop.thumbprint())
  })

  it('has the RFC 7638 thumbprint of the public key that the proofs carry', async () => {
    const dpop = await createDPoP()
    const jwk = dpop.publicJwk()
    expect(Object.keys(jwk)).toEqual(['crv', 'kty', 'x', 'y'])
    expect(await dpop.thumbprint()).toBe(thumbprint(jwk as Record<string, string>))
    const [header, payload] = (await dpop.proof('post', 'https://as.example/token?x=1#f', { nonce: 'n1' })).split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()))
    expect(header).toEqual({ typ: 'dpop+jwt', jwk, alg: 'ES256' })
    expect(payload).toEqual({ jti: expect.any(String), htm: 'POST', htu: 'https://as.example/token', iat: expect.any(Number), nonce: 'n1' })
  })

  it('takes an existing key pair, EdDSA too, and a grant bound to it refreshes', async () => {
    const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair
    const dpop = await createDPoP({ key: pair })
    const server = await serve({ clientSecret: null, dpop: { boundKey: await dpop.thumbprint() } })
    const client = createRefreshClient(demoClient(server, { clientSecret: undefined, dpop }))
    expect((await client.fetch(server.apiUrl)).status).toBe(200)
    expect(server.tokenRequests[0]!.headers.dpop).toBeDefined()
    // Another key is refused by the server: the grant is bound.
    const other = createRefreshClient(demoClient(server, { clientSecret: undefined, dpop: await createDPoP(), refreshToken: server.validRefreshToken }))
    await expect(other.getAccessToken()).rejects.toMatchObject({ error: 'invalid_grant' })
  })

  it('two contexts starting at once on one storage keep one key: created under the storage\'s lock', async () => {
    const storage = lockedStorage()
    const [first, second] = await Promise.all([createDPoP({ storage }), createDPoP({ storage })])
    expect(await first.thumbprint()).toBe(await second.thumbprint())
    expect(storage.locks).toEqual(['oauth-refresh:dpop', 'oauth-refresh:dpop'])
  })

  it('clear() forgets the stored key and makes a new one', async () => {
    const storage = memoryStorage()
    const dpop = await createDPoP({ storage })
    const before = await dpop.thumbprint()
    await dpop.clear()
    expect(await dpop.thumbprint()).not.toBe(before)
    expect(await (await createDPoP({ storage })).thumbprint()).toBe(await dpop.thumbprint())
  })
})

describe('bad input', () => {
  it('refuses a wrong algorithm, key type, key or storage with a ConfigError that shows no key material', async () => {
    const rsa = (await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as CryptoKeyPair
    const rsaJwk = await crypto.subtle.exportKey('jwk', rsa.privateKey)
    const ec = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair
    const ecJwk = await crypto.subtle.exportKey('jwk', ec.privateKey)
    const { d: _d, ...ecPublic } = ecJwk
    const cases: Array<[string, () => Promise<DPoP>, RegExp]> = [
      ['RS256 as algorithm', () => createDPoP({ algorithm: 'RS256' as 'ES256' }), /"algorithm"/],
      ['an RSA key pair', () => createDPoP({ key: rsa }), /"key" must be an ES256 or EdDSA key/],
      ['an RSA private JWK', () => createDPoP({ key: rsaJwk }), /"key" must be an ES256 or EdDSA key/],
      ['a public JWK', () => createDPoP({ key: ecPublic }), /"key" must be a private CryptoKey or a private JWK/],
      ['a key pair swapped', () => createDPoP({ key: { privateKey: ec.publicKey, publicKey: ec.privateKey } }), /"key" must be a private key that may sign/],
      ['a broken JWK', () => createDPoP({ key: { ...ecJwk, x: 'AAAA' } }), /"key" must be a key of ES256/],
      ['a storage without get', () => createDPoP({ storage: {} as TokenStorage }), /"storage"/],
    ]
    for (const [name, make, message] of cases) {
      const error = await make().catch((caught: unknown) => caught)
      expect(error, name).toBeInstanceOf(ConfigError)
      expect((error as Error).message, name).toMatch(message)
      for (const secret of [rsaJwk.d!, rsaJwk.n!, ecJwk.d!, ecJwk.x!]) expect(shown(error), name).not.toContain(secret)
    }
  })

  it('a non-extractable key cannot be kept by a JSON-only storage: a ConfigError, nothing stored', async () => {
    const storage = jsonStorage()
    const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair
    await expect(createDPoP({ storage, key: pair })).rejects.toThrow(ConfigError)
  })

  it('refuses a dpop option that is not createDPoP()\'s', () => {
    expect(() => createRefreshClient({ tokenUrl: 'https://as.example/token', clientId: 'c', refreshToken: 'r', dpop: {} as DPoP })).toThrow(/Option "dpop/)
  })

  it('logs nothing while it works', async () => {
    const spies = (['log', 'warn', 'error', 'info', 'debug'] as const).map((name) => vi.spyOn(console, name))
    const { server, client } = await setup({ tokenNonce: true, apiNonce: true })
    await client.fetch(server.apiUrl)
    for (const spy of spies) expect(spy).not.toHaveBeenCalled()
    vi.restoreAllMocks()
  })
})

export type { LocalServer, StoredTokenSet }
