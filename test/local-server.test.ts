import { describe, expect, it } from 'vitest'
import type { LocalServer } from '../examples/local-server/server.mjs'
import { serve as start } from './support/loopback.js'

const formEncode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2)
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`, 'utf8').toString('base64')}`

function refresh(server: LocalServer, form: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(server.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ grant_type: 'refresh_token', ...form }),
  })
}
const bodyAuth = { client_id: 'demo-client', client_secret: 'demo-secret' }

describe('local server', () => {
  it("answers in a provider's own shapes: basicRefusal, deadGrantAnswer, and a grant's extra members or form", async () => {
    const basicRefusal = { status: 400, body: '{"status":"BAD_CLIENT_ID"}' }
    const deadGrantAnswer = { status: 200, contentType: 'application/x-www-form-urlencoded', body: 'error=bad_refresh_token' }
    const server = await start({ acceptClientAuth: 'body', basicRefusal, deadGrantAnswer })
    const byBasic = await refresh(server, { refresh_token: 'demo-refresh-token' }, { authorization: basic('demo-client', 'demo-secret') })
    expect([byBasic.status, await byBasic.text()]).toEqual([400, basicRefusal.body])
    const dead = await refresh(server, { ...bodyAuth, refresh_token: 'nope' })
    expect([dead.status, dead.headers.get('content-type'), await dead.text()]).toEqual([200, deadGrantAnswer.contentType, deadGrantAnswer.body])
    server.fault({ form: true, extra: { ok: true, refresh_token_expires_in: 60 } })
    const form = await refresh(server, { ...bodyAuth, refresh_token: 'demo-refresh-token' })
    expect(form.headers.get('content-type')).toMatch(/^application\/x-www-form-urlencoded/)
    expect(Object.fromEntries(new URLSearchParams(await form.text()))).toMatchObject({ ok: 'true', refresh_token_expires_in: '60', refresh_token: server.validRefreshToken })
  })

  it('rotates the refresh token and protects the API with the access token', async () => {
    const server = await start()
    const res = await refresh(server, { ...bodyAuth, refresh_token: 'demo-refresh-token', scope: 'read' })
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const tokens = await res.json()
    expect(tokens).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'read' })
    expect(tokens.refresh_token).toBe(server.validRefreshToken)
    expect(tokens.refresh_token).not.toBe('demo-refresh-token')

    const reused = await refresh(server, { ...bodyAuth, refresh_token: 'demo-refresh-token' })
    expect([reused.status, (await reused.json()).error]).toEqual([400, 'invalid_grant'])

    const api = `${server.apiUrl}/items`
    const ok = await fetch(api, { method: 'PUT', body: 'x', headers: { authorization: `Bearer ${tokens.access_token}` } })
    expect(await ok.json()).toEqual({ ok: true, method: 'PUT', path: '/api/items', body: 'x' })
    server.revokeAccessTokens()
    const revoked = await fetch(api, { headers: { authorization: `Bearer ${tokens.access_token}` } })
    expect(revoked.status).toBe(401)
    expect(revoked.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"')
    expect(server.apiRequests).toBe(2)
  })

  it('with revokeOnReuse, a spent refresh token revokes the whole grant (RFC 9700 §4.14.2)', async () => {
    const server = await start({ revokeOnReuse: true })
    const first = await (await refresh(server, { ...bodyAuth, refresh_token: 'demo-refresh-token' })).json()
    const second = await (await refresh(server, { ...bodyAuth, refresh_token: first.refresh_token })).json()
    expect(server.grantRevoked).toBe(false)

    const reused = await refresh(server, { ...bodyAuth, refresh_token: first.refresh_token })
    expect([reused.status, (await reused.json()).error]).toEqual([400, 'invalid_grant'])
    expect(server.grantRevoked).toBe(true)
    const latest = await refresh(server, { ...bodyAuth, refresh_token: second.refresh_token })
    expect([latest.status, (await latest.json()).error], 'the newest refresh token died with the grant').toEqual([400, 'invalid_grant'])
    const api = await fetch(`${server.apiUrl}/me`, { headers: { authorization: `Bearer ${second.access_token}` } })
    expect(api.status, 'and so did its access token').toBe(401)
  })

  it('with graceMs, a refresh token rotated away within the grace period is accepted and rotated again, not taken as reuse', async () => {
    const server = await start({ revokeOnReuse: true, graceMs: 60_000 })
    const first = await (await refresh(server, { ...bodyAuth, refresh_token: 'demo-refresh-token' })).json()
    const again = await refresh(server, { ...bodyAuth, refresh_token: 'demo-refresh-token' })
    expect(again.status).toBe(200)
    const second = await again.json()
    expect(second.refresh_token).toBe(server.validRefreshToken)
    expect(second.refresh_token).not.toBe(first.refresh_token)
    expect(server.grantRevoked).toBe(false)
    const outside = await start({ revokeOnReuse: true, graceMs: 1 })
    await refresh(outside, { ...bodyAuth, refresh_token: 'demo-refresh-token' })
    await new Promise((resolve) => setTimeout(resolve, 5))
    await refresh(outside, { ...bodyAuth, refresh_token: 'demo-refresh-token' })
    expect(outside.grantRevoked, 'past the grace period it is reuse').toBe(true)
  })

  it('calls a fault\'s beforeAnswer once the grant is processed, before the answer is written', async () => {
    const server = await start()
    let seen: { rotated: boolean; refreshToken: string | undefined } | undefined
    server.fault({ beforeAnswer: (request) => (seen = { rotated: server.validRefreshToken !== 'demo-refresh-token', refreshToken: request.form.refresh_token }) })
    const res = await refresh(server, { ...bodyAuth, refresh_token: 'demo-refresh-token' })
    expect(res.status).toBe(200)
    expect(seen).toEqual({ rotated: true, refreshToken: 'demo-refresh-token' })
  })

  it('form-decodes HTTP Basic credentials (RFC 6749 §2.3.1) and rejects two methods at once', async () => {
    const clientId = 'my client:1+%ü'
    const clientSecret = 'sëcret: +%2B'
    const server = await start({ clientId, clientSecret })
    const ok = await refresh(server, { refresh_token: 'demo-refresh-token' }, { authorization: basic(clientId, clientSecret) })
    expect(ok.status).toBe(200)
    expect(server.tokenRequests[0].clientAuth).toBe('basic')

    const raw = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`
    const unencoded = await refresh(server, { refresh_token: server.validRefreshToken }, { authorization: raw })
    expect([unencoded.status, (await unencoded.json()).error]).toEqual([401, 'invalid_client'])

    const both = await refresh(
      server,
      { refresh_token: server.validRefreshToken, client_id: clientId, client_secret: clientSecret },
      { authorization: basic(clientId, clientSecret) },
    )
    expect([both.status, (await both.json()).error]).toEqual([400, 'invalid_request'])
  })

  it('answers Basic with 401 invalid_client and a challenge when it only accepts the body', async () => {
    const server = await start({ acceptClientAuth: 'body' })
    const res = await refresh(server, { refresh_token: 'demo-refresh-token' }, { authorization: basic('demo-client', 'demo-secret') })
    expect([res.status, (await res.json()).error]).toEqual([401, 'invalid_client'])
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic/)
    expect((await refresh(server, { ...bodyAuth, refresh_token: 'demo-refresh-token' })).status).toBe(200)
  })

  it('applies queued faults to the next token request, one each', async () => {
    const server = await start()
    server.fault({ status: 503, retryAfter: '2' })
    server.fault({ reset: 'after' })
    const unavailable = await refresh(server, { ...bodyAuth, refresh_token: 'demo-refresh-token' })
    expect([unavailable.status, unavailable.headers.get('retry-after')]).toEqual([503, '2'])
    expect(server.validRefreshToken).toBe('demo-refresh-token')

    await expect(refresh(server, { ...bodyAuth, refresh_token: 'demo-refresh-token' })).rejects.toThrow()
    expect(server.validRefreshToken).not.toBe('demo-refresh-token')
    expect([server.tokenHits, server.tokenRequests.length]).toEqual([2, 2])
  })

  it('streams a huge body and stops when the client goes away', async () => {
    const server = await start()
    server.fault({ sizeBytes: 64 * 1024 * 1024 })
    const res = await refresh(server, { ...bodyAuth, refresh_token: 'demo-refresh-token' })
    const reader = res.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^\{"access_token":"at-/)
    await reader.cancel()
    await server.largeBodies[0].done
    expect(server.largeBodies[0].sent).toBeLessThan(server.largeBodies[0].size)
  })
})
