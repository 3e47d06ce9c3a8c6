import { describe, expect, it, vi } from 'vitest'
import { createRefreshClient, memoryStorage, StorageError, type TokenStorage } from '../src/index.js'
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
