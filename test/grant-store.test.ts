import { describe, expect, it, vi } from 'vitest'
import type { LocalServerOptions } from '../examples/local-server/server.mjs'
import { createRefreshClient, memoryStorage, NoGrantError, type RefreshClientOptions, StorageError, type TokenStorage } from '../src/index.js'
import { lockedStorage } from './support/locked-storage.js'
import { demoClient, serve } from './support/loopback.js'

/** A storage whose `get` returns `value` as it is, the mistake a hand-written adapter makes. */
function returning(value: unknown): TokenStorage {
  return { ...memoryStorage(), get: async () => value as never }
}

describe('the grant in storage', () => {
  it.each([
    ['a JSON string (a forgotten JSON.parse)', JSON.stringify({ refreshToken: 'rt', grantId: 'x' }), /a string \(no JSON\.parse in get\?\) that is not a token set/],
    ['a number', 42, /not a token set/],
    ['an object without a refresh token', { accessToken: 'at' }, /not a token set/],
    ['an array', [], /not a token set/],
  ])('refuses %s with a StorageError before any token request', async (_, value, message) => {
    const server = await serve()
    const client = createRefreshClient(demoClient(server, { storage: returning(value) }))
    const error = await client.getAccessToken().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(StorageError)
    expect((error as StorageError).message).toMatch(message)
    expect(server.tokenRequests).toHaveLength(0)
  })

  it.each([null, undefined])('takes %s as no grant, and starts from the configured refresh token', async (value) => {
    const server = await serve()
    const client = createRefreshClient(demoClient(server, { storage: returning(value) }))
    expect(server.issuedTokens).toContain(await client.getAccessToken())
  })

  it('names the cause of a failed write in the default warning', async () => {
    const server = await serve()
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const failure = new Error('disk full')
    const storage = { ...memoryStorage(), set: async () => Promise.reject(failure) }
    try {
      await createRefreshClient(demoClient(server, { storage })).getAccessToken()
      expect(warn).toHaveBeenCalledWith('oauth-refresh: Storing the grant failed; it is kept in memory', failure)
    } finally {
      warn.mockRestore()
    }
  })
})

async function setup(serverOptions: LocalServerOptions = {}, options: Partial<RefreshClientOptions> = {}) {
  const server = await serve(serverOptions)
  const storage = options.storage ?? memoryStorage()
  const client = createRefreshClient(demoClient(server, { storage, storageKey: 'grant', revocationUrl: server.revocationUrl, ...options }))
  const ends: unknown[] = []
  client.on('end', (event) => ends.push(event))
  return { server, client, storage, ends }
}

describe('NO_GRANT says why', () => {
  it('no refresh token was given', async () => {
    const { client } = await setup({}, { refreshToken: undefined })
    await expect(client.getAccessToken()).rejects.toMatchObject({ name: 'NoGrantError', code: 'NO_GRANT', reason: 'missing' })
  })

  it('the grant was cleared here', async () => {
    const { client } = await setup()
    await client.getAccessToken()
    await client.clear()
    const error = await client.getAccessToken().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(NoGrantError)
    expect(error).toMatchObject({ reason: 'cleared', message: 'The grant was cleared; sign in, then call setRefreshToken()' })
  })

  it('the provider ended it, with its answer as the cause, and end tells it once', async () => {
    const { server, client, storage, ends } = await setup()
    await client.getAccessToken()
    server.setRefreshToken('another')
    await expect(client.getAccessToken({ forceRefresh: true })).rejects.toMatchObject({ error: 'invalid_grant' })
    const error = (await client.getAccessToken().catch((caught: unknown) => caught)) as NoGrantError
    expect(error).toMatchObject({ reason: 'rejected', status: 400, cause: { error: 'invalid_grant' } })
    expect(error.message).toBe('The provider ended the grant (invalid_grant); sign in, then call setRefreshToken()')
    expect(ends).toEqual([{ reason: 'rejected', error: expect.objectContaining({ error: 'invalid_grant' }) }])
    expect(await storage.get('grant')).toBeUndefined()
  })
})

describe('setRefreshToken', () => {
  it('makes a cleared client usable again with the new grant, stored', async () => {
    const { server, client, storage } = await setup()
    await client.getAccessToken()
    await client.clear()
    server.setRefreshToken('signed-in-again')
    await client.setRefreshToken('signed-in-again')
    expect(server.issuedTokens).toContain(await client.getAccessToken())
    expect(server.tokenRequests.at(-1)!.form.refresh_token).toBe('signed-in-again')
    expect((await storage.get('grant'))?.refreshToken).toBe(server.validRefreshToken)
  })

  it('uses a given access token until it expires, instead of refreshing', async () => {
    const { server, client } = await setup({}, { refreshToken: undefined })
    await client.setRefreshToken('demo-refresh-token', { accessToken: 'from-sign-in', expiresIn: 3600, scope: 'read' })
    expect(await client.getTokenSet()).toMatchObject({ accessToken: 'from-sign-in', scope: 'read', expiresAt: expect.any(Number) })
    expect(server.tokenRequests).toHaveLength(0)
  })

  it("a configured client's sign-in keeps its fingerprint out of the token set, and in storage across refreshes", async () => {
    const { server, client, storage } = await setup()
    server.setRefreshToken('signed-in')
    await client.setRefreshToken('signed-in', { accessToken: 'from-sign-in' })
    expect(Object.keys(await client.getTokenSet()).sort()).toEqual(['accessToken', 'fields', 'obtainedAt', 'tokenType'])
    const signIn = (await storage.get('grant'))?.signIn
    expect(signIn).toEqual(expect.any(String))
    await client.getAccessToken({ forceRefresh: true })
    expect(await storage.get('grant')).toMatchObject({ signIn, refreshToken: server.validRefreshToken })
    expect(JSON.stringify(await client.getTokenSet())).not.toContain(signIn)
  })

  it('drops a refresh of the old grant in flight: its answer is not stored, and its callers get the new grant', async () => {
    const { server, client, storage } = await setup({ latencyMs: 50 }, { refreshToken: undefined })
    await client.setRefreshToken('demo-refresh-token')
    const pending = client.getAccessToken()
    await new Promise((resolve) => setTimeout(resolve, 10))
    await client.setRefreshToken('second-grant', { accessToken: 'second-access' })
    expect(await pending).toBe('second-access')
    expect(await storage.get('grant')).toMatchObject({ refreshToken: 'second-grant', accessToken: 'second-access' })
    expect(server.tokenRequests).toHaveLength(1)
  })

  it.each([
    [[''], '"refreshToken" must be a non-empty string'],
    [['rt\n'], '"refreshToken" has leading or trailing whitespace'],
    [['rt', { accessToken: 5 }], 'Option "accessToken" must be a non-empty string'],
    [['rt', { expiresIn: -1 }], 'Option "expiresIn" must be a number of seconds above 0'],
    [['rt', { scope: ['a'] }], 'Option "scope" must be a string'],
    [['rt', { expires_in: 5 }], 'Option "expires_in" is not a known option'],
  ])('refuses %j with a ConfigError, and keeps the grant it had', async (args, message) => {
    const { client } = await setup()
    const token = await client.getAccessToken()
    await expect((client.setRefreshToken as (...a: unknown[]) => Promise<void>)(...args)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining(message) })
    expect(await client.getAccessToken()).toBe(token)
  })
})

describe('clear', () => {
  it('tells end once per grant, cleared', async () => {
    const { client, ends } = await setup()
    await client.getAccessToken()
    expect(await client.clear()).toEqual({ revoked: false })
    await client.clear()
    expect(ends).toEqual([{ reason: 'cleared' }])
  })

  it('revokes the newest refresh token at revocationUrl with the client authentication that worked, then forgets the grant', async () => {
    const { server, client, storage, ends } = await setup({ acceptClientAuth: 'body' })
    await client.getAccessToken()
    const newest = server.validRefreshToken
    expect(await client.clear({ revoke: true })).toEqual({ revoked: true })
    expect(server.revocations).toEqual([{ token: newest, hint: 'refresh_token', clientAuth: 'body' }])
    expect(await storage.get('grant')).toBeUndefined()
    expect(ends).toEqual([{ reason: 'revoked' }])
    server.setRefreshToken(newest)
    await expect(client.getAccessToken()).rejects.toMatchObject({ reason: 'cleared' })
  })

  it('revokes the newest refresh token while refreshes race it, so no spent token is revoked and the grant dies', async () => {
    const storage = lockedStorage()
    const { server, client } = await setup({ latencyMs: 20, revokeOnReuse: true, expiresIn: 1 }, { storage, expiryLeewaySeconds: 0 })
    const other = createRefreshClient(demoClient(server, { storage, storageKey: 'grant' }))
    await client.getAccessToken()
    const racing = Array.from({ length: 10 }, (_, i) => (i % 2 ? other : client).getAccessToken({ forceRefresh: true }).catch(() => 'failed'))
    await new Promise((resolve) => setTimeout(resolve, 30))
    const result = await client.clear({ revoke: true })
    await Promise.all(racing)
    expect(result).toEqual({ revoked: true })
    const revoked = server.revocations[0]!.token
    expect(server.tokenRequests.map((request) => request.form.refresh_token)).not.toContain(revoked === server.tokenRequests.at(-1)?.form.refresh_token ? undefined : revoked)
    expect(server.grantRevoked).toBe(false)
    await expect(other.getAccessToken({ forceRefresh: true })).rejects.toMatchObject({ error: 'invalid_grant' })
  })

  it('revokes the grant it knows when storage cannot be read, and reports the failed read', async () => {
    const reported: StorageError[] = []
    const storage = memoryStorage()
    const { server, client } = await setup({}, { storage, onStorageError: (error) => reported.push(error) })
    await client.getAccessToken()
    const newest = server.validRefreshToken
    storage.get = async () => Promise.reject(new Error('disk gone'))
    expect(await client.clear({ revoke: true })).toEqual({ revoked: true })
    expect(server.revocations.map((revocation) => revocation.token)).toEqual([newest])
    expect(reported.map((error) => error.message)).toEqual(['Reading the grant failed'])
  })

  it('forgets the grant when the provider refuses the revocation, and says why in the result and in end', async () => {
    const { server, client, storage, ends } = await setup()
    await client.getAccessToken()
    server.faultRevocation({ status: 503 })
    const result = await client.clear({ revoke: true })
    expect(result).toMatchObject({ revoked: false, error: { code: 'HTTP_ERROR', status: 503 } })
    expect(await storage.get('grant')).toBeUndefined()
    expect(ends).toEqual([{ reason: 'cleared', error: result.error }])
  })

  it('types a revocation endpoint that cannot be reached, without secrets in the error', async () => {
    const { server, client } = await setup({}, { revocationUrl: 'http://127.0.0.1:1/revoke' })
    await client.getAccessToken()
    const { error } = await client.clear({ revoke: true })
    expect(error).toMatchObject({ code: 'NETWORK_ERROR' })
    expect(JSON.stringify(error) + String(error)).not.toMatch(/demo-secret|rt-|at-/)
    expect(server.revocations).toHaveLength(0)
  })

  it('refuses revoke without a revocationUrl, and an unknown option, with a ConfigError that keeps the grant', async () => {
    const { client } = await setup({}, { revocationUrl: undefined })
    const token = await client.getAccessToken()
    await expect(client.clear({ revoke: true })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: 'Option "revocationUrl" is required by clear({ revoke: true })' })
    await expect(client.clear({ revok: true } as never)).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    expect(await client.getAccessToken()).toBe(token)
  })
})

describe('a sign-out elsewhere', () => {
  it('ends the grant here at once when the storage tells of another context deleting it', async () => {
    const listeners: (() => void)[] = []
    const storage: TokenStorage = { ...memoryStorage(), onDelete: (_key, listener) => (listeners.push(listener), () => {}) }
    const { client, ends } = await setup({}, { storage })
    await client.getAccessToken()
    await storage.delete('grant')
    listeners.forEach((listener) => listener())
    expect(ends).toEqual([{ reason: 'elsewhere' }])
    await expect(client.getAccessToken()).rejects.toMatchObject({ reason: 'elsewhere' })
  })
})
