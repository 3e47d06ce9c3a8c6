import { describe, expect, it } from 'vitest'
import type { LocalServer, LocalServerOptions } from '../examples/local-server/server.mjs'
import { createRefreshClient, type RefreshClientOptions } from '../src/index.js'
import { demoClient, serve } from './support/loopback.js'

async function setup(serverOptions: LocalServerOptions = {}, options: Partial<RefreshClientOptions> = {}) {
  const server = await serve(serverOptions)
  return { server, client: createRefreshClient(demoClient(server, options)) }
}

describe('client.fetch', () => {
  it('attaches the token with the configured header name and pattern', async () => {
    const options = { apiHeader: 'x-api-token', apiPattern: 'Token {{access_token}}!' }
    const { server, client } = await setup(options, { authorizationHeader: { name: 'X-Api-Token', pattern: 'Token {{access_token}}!' } })
    const response = await client.fetch(`${server.apiUrl}/echo-headers`)
    expect(response.status).toBe(200)
    const headers = (await response.json()) as Record<string, string>
    expect(headers['x-api-token']).toBe(`Token ${await client.getAccessToken()}!`)
    expect(headers.authorization).toBeUndefined()
  })

  it('keeps the caller headers and returns the API response as is', async () => {
    const { server, client } = await setup()
    const response = await client.fetch(`${server.apiUrl}/echo-headers`, { headers: { 'x-trace': 'abc' } })
    expect(response).toBeInstanceOf(Response)
    expect(await response.json()).toMatchObject({ 'x-trace': 'abc', authorization: expect.stringMatching(/^Bearer /) })
  })

  it('on a 401 refreshes once and replays the request once', async () => {
    const { server, client } = await setup()
    await client.getAccessToken()
    server.revokeAccessTokens()
    const response = await client.fetch(`${server.apiUrl}/things`, { method: 'POST', body: 'payload' })
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ method: 'POST', body: 'payload' })
    expect(server.tokenRequests).toHaveLength(2)
    expect(server.apiRequests).toBe(2)
  })

  it('100 concurrent 401s share one refresh', async () => {
    const { server, client } = await setup({ latencyMs: 20 })
    await client.getAccessToken()
    server.revokeAccessTokens()
    const responses = await Promise.all(Array.from({ length: 100 }, () => client.fetch(server.apiUrl)))
    expect(responses.map((response) => response.status)).toEqual(Array(100).fill(200))
    expect(server.tokenRequests).toHaveLength(2)
  })

  it('a refresh that started after a request was sent satisfies its 401: no second refresh', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    let server!: LocalServer
    const slowApi: typeof fetch = async (input, init) => {
      const response = await fetch(input, init)
      if (String(input).startsWith(server.apiUrl)) await gate
      return response
    }
    ;({ server } = await setup())
    const client = createRefreshClient(demoClient(server, { fetch: slowApi }))
    await client.getAccessToken()
    server.revokeAccessTokens()
    const pending = client.fetch(server.apiUrl)
    await new Promise((resolve) => setTimeout(resolve, 20))
    await client.getAccessToken({ forceRefresh: true })
    release()
    expect((await pending).status).toBe(200)
    expect(server.tokenRequests).toHaveLength(2)
  })

  it('returns a second 401 as is', async () => {
    const { server, client } = await setup({ apiHeader: 'x-elsewhere' })
    const response = await client.fetch(server.apiUrl)
    expect(response.status).toBe(401)
    expect(server.apiRequests).toBe(2)
    expect(server.tokenRequests).toHaveLength(2)
  })

  it.each([
    ['a string', () => 'text body', 'text body'],
    ['URLSearchParams', () => new URLSearchParams({ a: '1' }), 'a=1'],
    ['a Blob', () => new Blob(['blob body']), 'blob body'],
    ['an ArrayBuffer', () => new TextEncoder().encode('buffer body').buffer, 'buffer body'],
    ['a Uint8Array', () => new TextEncoder().encode('bytes body'), 'bytes body'],
    ['FormData', formData, 'name="field"'],
  ])('replays %s body after a 401', async (_, body, expected) => {
    const { server, client } = await setup()
    await client.getAccessToken()
    server.revokeAccessTokens()
    const response = await client.fetch(server.apiUrl, { method: 'POST', body: body() as BodyInit })
    expect(response.status).toBe(200)
    expect(((await response.json()) as { body: string }).body).toContain(expected)
  })

  it('replays a bodiless Request, and returns the 401 of a Request whose body is a stream', async () => {
    const { server, client } = await setup()
    await client.getAccessToken()
    server.revokeAccessTokens()
    const response = await client.fetch(new Request(server.apiUrl, { method: 'DELETE', headers: { 'x-a': '1' } }))
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ method: 'DELETE' })
    server.revokeAccessTokens()
    expect((await client.fetch(new Request(server.apiUrl, { method: 'PUT', body: 'once' }))).status).toBe(401)
    expect(server.tokenRequests).toHaveLength(2)
  })

  it('does not replay a stream body: its 401 is returned', async () => {
    const { server, client } = await setup()
    await client.getAccessToken()
    server.revokeAccessTokens()
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('once'))
        controller.close()
      },
    })
    const response = await client.fetch(server.apiUrl, { method: 'POST', body: stream, duplex: 'half' } as RequestInit)
    expect(response.status).toBe(401)
    expect(server.tokenRequests).toHaveLength(1)
  })

  it('does not refresh for a Bearer challenge other than invalid_token', async () => {
    const { server } = await setup()
    const challenge: typeof fetch = async () => new Response('no', { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_request"' } })
    const probe = createRefreshClient(demoClient(server, { fetch: (input, init) => (String(input).startsWith(server.apiUrl) ? challenge(input, init) : fetch(input, init)) }))
    expect((await probe.fetch(server.apiUrl)).status).toBe(401)
    expect(server.tokenRequests).toHaveLength(1)
  })

  it("aborts the API call with the caller's signal", async () => {
    const { server, client } = await setup({ latencyMs: 200 })
    const controller = new AbortController()
    const pending = client.fetch(server.apiUrl, { signal: controller.signal })
    controller.abort(new Error('stop'))
    await expect(pending).rejects.toThrow('stop')
  })
  it('refuses a relative URL where nothing resolves it, before spending a refresh', async () => {
    const { server, client } = await setup()
    await expect(client.fetch('/api/me')).rejects.toMatchObject({ name: 'OAuthRefreshError', code: 'INVALID_URL' })
    expect(server.tokenHits).toBe(0)
    expect((await client.fetch(server.apiUrl)).status).toBe(200)
  })

  it('refuses a URL with credentials before spending a refresh, and never repeats them', async () => {
    const { server, client } = await setup()
    const withCredentials = server.apiUrl.replace('http://', 'http://user:s3cret-pass@')
    for (const input of [withCredentials, new URL(withCredentials)]) {
      const error = await client.fetch(input).catch((error: unknown) => error)
      expect(error).toMatchObject({ name: 'OAuthRefreshError', code: 'INVALID_URL' })
      expect(JSON.stringify(error) + String(error)).not.toContain('s3cret-pass')
    }
    expect(server.tokenHits).toBe(0)
    expect((await client.fetch(`${server.apiUrl}?contact=a@b.example`)).status).toBe(200)
  })
})

function formData() {
  const form = new FormData()
  form.set('field', 'value')
  return form
}
