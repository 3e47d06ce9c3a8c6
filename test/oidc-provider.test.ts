// Interop with oidc-provider, an independently written authorization server: DPoP-bound refresh
// tokens with required nonces and rotation, a private_key_jwt client, its userinfo endpoint as the
// resource server that checks the proof and its `ath`, and its revocation endpoint.
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDPoP, type DPoP } from '../src/dpop.js'
import { createRefreshClient, memoryStorage, type RefreshClientOptions, type TokenStorage } from '../src/index.js'
import { privateKeyJwt } from '../src/private-key-jwt.js'

let server: Server
let provider: Provider
let issuer: string
let clientKey: CryptoKeyPair
const events: string[] = []

/** What the client sent to the token endpoint and what it got back. */
interface Exchange {
  /** The path: `/token` or `/me`. */
  path: string
  refreshToken: string | null
  status: number
  error?: string
}

beforeAll(async () => {
  clientKey = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair
  const publicJwk = { ...(await crypto.subtle.exportKey('jwk', clientKey.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
  server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const app = { grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['http://127.0.0.1/cb'], response_types: ['code'] }
  provider = new Provider(issuer, {
    clients: [
      { client_id: 'public-app', token_endpoint_auth_method: 'none', dpop_bound_access_tokens: true, ...app },
      { client_id: 'jwt-app', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [publicJwk] }, ...app },
    ],
    clientAuthMethods: ['none', 'private_key_jwt'],
    features: {
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
      revocation: { enabled: true },
      devInteractions: { enabled: false },
    },
    rotateRefreshToken: true,
    ttl: { AccessToken: 3600, Grant: 86_400, IdToken: 3600, RefreshToken: 86_400 },
    scopes: ['openid', 'offline_access'],
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
  })
  for (const name of ['grant.revoked', 'refresh_token.consumed', 'server_error']) provider.on(name, () => events.push(name))
  server.on('request', provider.callback())
})

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
})

/** A refresh token of a new grant of `clientId`, bound to `dpop`'s key for a public client. */
async function signIn(clientId: string, dpop?: DPoP): Promise<string> {
  const client = await provider.Client.find(clientId)
  const grant = new provider.Grant({ accountId: 'alice', clientId })
  grant.addOIDCScope('openid offline_access')
  const grantId = await grant.save()
  const token = new provider.RefreshToken({ accountId: 'alice', client: client!, grantId, scope: 'openid offline_access', gty: 'authorization_code', ...(dpop && { jkt: await dpop.thumbprint() }) })
  return token.save()
}

/** Options for a client of `clientId`, its token requests logged in `log`. */
function options(clientId: string, refreshToken: string, storage: TokenStorage, dpop: DPoP, log: Exchange[]): RefreshClientOptions {
  return {
    tokenUrl: `${issuer}/token`,
    revocationUrl: `${issuer}/token/revocation`,
    clientId,
    refreshToken,
    storage,
    dpop,
    retry: { baseDelayMs: 1, maxDelayMs: 50 },
    async fetch(input, init) {
      const response = await fetch(input, init)
      const { pathname } = new URL(String(input))
      const error = pathname === '/me' ? /error="([^"]+)"/.exec(response.headers.get('www-authenticate') ?? '')?.[1] : response.ok ? undefined : (await response.clone().json()).error
      log.push({ path: pathname, refreshToken: new URLSearchParams(String(init?.body)).get('refresh_token'), status: response.status, error })
      return response
    },
  }
}

/** Refresh tokens the server processed: sent and not refused for the nonce, which is checked first. */
const processed = (log: Exchange[]) => log.filter((exchange) => exchange.path === '/token' && exchange.error !== 'use_dpop_nonce').map((exchange) => exchange.refreshToken)

/** The answers of `path`: the error, or the status. */
const answers = (log: Exchange[], path: string) => log.filter((exchange) => exchange.path === path).map((exchange) => exchange.error ?? exchange.status)

describe('against oidc-provider', () => {
  it('a public client: refresh, rotation, userinfo with the proof and ath, nonce challenges at both endpoints, a restart with the stored key', async () => {
    const storage = memoryStorage()
    const dpop = await createDPoP({ storage })
    const log: Exchange[] = []
    const first = await signIn('public-app', dpop)
    const client = createRefreshClient(options('public-app', first, storage, dpop, log))
    const response = await client.fetch(`${issuer}/me`)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ sub: 'alice' })
    expect(answers(log, '/token')).toEqual(['use_dpop_nonce', 200])
    expect((await client.getTokenSet()).tokenType).toBe('DPoP')

    // Rotation, and the API again.
    await client.getAccessToken({ forceRefresh: true })
    expect((await client.fetch(`${issuer}/me`)).status).toBe(200)

    // A restart with the key from storage and the rotated grant.
    const restarted = createRefreshClient(options('public-app', first, storage, await createDPoP({ storage }), log))
    await restarted.getAccessToken({ forceRefresh: true })
    const again = await restarted.fetch(`${issuer}/me`)
    expect(again.status).toBe(200)
    const sent = processed(log)
    expect(sent).toHaveLength(3)
    expect(new Set(sent).size).toBe(3)
    expect(events).not.toContain('grant.revoked')
  })

  it('a userinfo nonce challenge is answered once, with the same token', async () => {
    const storage = memoryStorage()
    const dpop = await createDPoP({ storage })
    const refreshToken = await signIn('public-app', dpop)
    await createRefreshClient(options('public-app', refreshToken, storage, dpop, [])).getAccessToken()
    // Another context with the same storage: the same key and token, but no nonce yet.
    const log: Exchange[] = []
    const other = createRefreshClient(options('public-app', refreshToken, storage, await createDPoP({ storage }), log))
    expect((await other.fetch(`${issuer}/me`)).status).toBe(200)
    expect(answers(log, '/me')).toEqual(['use_dpop_nonce', 200])
    expect(answers(log, '/token')).toEqual([])
  })

  it('100 concurrent callers through a nonce challenge make one refresh, and the grant survives', async () => {
    const storage = memoryStorage()
    const dpop = await createDPoP({ storage })
    const log: Exchange[] = []
    const client = createRefreshClient(options('public-app', await signIn('public-app', dpop), storage, dpop, log))
    const tokens = await Promise.all(Array.from({ length: 100 }, () => client.getAccessToken()))
    expect(new Set(tokens).size).toBe(1)
    expect(answers(log, '/token')).toEqual(['use_dpop_nonce', 200])
    expect(processed(log)).toHaveLength(1)
    expect((await client.fetch(`${issuer}/me`)).status).toBe(200)
  })

  it('a private_key_jwt client with DPoP: refresh, rotation, userinfo, revocation', async () => {
    const storage = memoryStorage()
    const dpop = await createDPoP({ storage })
    const log: Exchange[] = []
    const client = createRefreshClient({
      ...options('jwt-app', await signIn('jwt-app'), storage, dpop, log),
      clientAuthentication: privateKeyJwt({ key: clientKey.privateKey, kid: 'k1' }),
    })
    expect((await client.fetch(`${issuer}/me`)).status).toBe(200)
    await client.getAccessToken({ forceRefresh: true })
    expect(processed(log)).toHaveLength(2)
    expect(new Set(processed(log)).size).toBe(2)
    expect(await client.clear({ revoke: true })).toEqual({ revoked: true })
    expect(events).toContain('grant.revoked')
  })

  it('a client without dpop over the DPoP-bound grant refuses before any request; oidc-provider would have answered invalid_grant', async () => {
    const storage = memoryStorage()
    const dpop = await createDPoP({ storage })
    const log: Exchange[] = []
    const refreshToken = await signIn('public-app', dpop)
    await createRefreshClient({ ...options('public-app', refreshToken, storage, dpop, log), storageKey: 'g' }).getAccessToken()
    const plain = createRefreshClient({ ...options('public-app', refreshToken, storage, dpop, log), dpop: undefined, storageKey: 'g' })
    const count = log.length
    await expect(plain.getAccessToken({ forceRefresh: true })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('DPoP') })
    expect(log).toHaveLength(count)
    const rotated = (await storage.get('g'))!.refreshToken
    const bare = await fetch(`${issuer}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rotated, client_id: 'public-app' }) })
    expect(await bare.json()).toMatchObject({ error: 'invalid_grant' })
  })
})
