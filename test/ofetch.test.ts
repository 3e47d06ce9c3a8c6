import { describe, expect, it } from 'vitest'
import { createRefreshClient } from '../src/index.js'
import { createOFetch } from '../src/ofetch.js'
import { demoClient, serve } from './support/loopback.js'

async function setup() {
  const server = await serve({ latencyMs: 10 })
  const client = createRefreshClient(demoClient(server))
  return { server, client, api: createOFetch(client, { baseURL: server.apiUrl }) }
}

describe('createOFetch', () => {
  it('sends the token and parses JSON, with ofetch options applied', async () => {
    const { server, api } = await setup()
    const body = await api<{ ok: boolean; method: string; body: string }>('/items', { method: 'POST', body: { name: 'x' } })
    expect(body).toMatchObject({ ok: true, method: 'POST', body: '{"name":"x"}' })
    expect(server.tokenRequests).toHaveLength(1)
  })

  it('recovers from a 401 through the shared refresh, one token request for concurrent calls', async () => {
    const { server, client, api } = await setup()
    await client.getAccessToken()
    server.revokeAccessTokens()
    const results = await Promise.all(Array.from({ length: 20 }, () => api<{ ok: boolean }>('/things')))
    expect(results.every((result) => result.ok)).toBe(true)
    expect(server.tokenRequests).toHaveLength(2)
  })

  it("surfaces a 401 that survives the refresh as ofetch's FetchError", async () => {
    const { server } = await setup()
    const client = createRefreshClient(demoClient(server, { authorizationHeader: { name: 'X-Unread' } }))
    const api = createOFetch(client, { baseURL: server.apiUrl })
    await expect(api('/x')).rejects.toMatchObject({ name: 'FetchError', statusCode: 401 })
    expect(server.tokenRequests).toHaveLength(2)
  })
})
