import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { bundle, CONDITIONS } from './support/bundle.js'
import { installPackedPackage, type Consumer } from './support/package.js'
import { CREDENTIALS, workerExampleBindings } from './support/scenario.js'

let consumer: Consumer
let server: LocalServer
let script: string
let compatibilityDate: string
/** Everything workerd printed, to catch its warnings about promises shared across requests. */
let runtimeOutput = ''

beforeAll(async () => {
  consumer = await installPackedPackage()
  server = await startLocalServer()
  const example = join(await consumer.add('examples', 'examples/cloudflare-worker'), 'cloudflare-worker')
  const wrangler = await readFile(join(example, 'wrangler.toml'), 'utf8')
  // The test runs what wrangler.toml describes: its entry, its date, its KV binding.
  const main = /^main = "(.+)"$/m.exec(wrangler)?.[1]
  compatibilityDate = /^compatibility_date = "(.+)"$/m.exec(wrangler)?.[1] ?? ''
  expect(wrangler).toMatch(/^binding = "TOKENS"$/m)
  script = await bundle(join(example, main ?? 'missing'), CONDITIONS.workerd)
})
afterAll(async () => {
  await server?.close()
  await consumer?.remove()
})

/** A new Miniflare instance: a new workerd process and isolate, on the KV data in `kvPersist`. */
function startWorker(kvPersist: string) {
  return new Miniflare({
    modules: [{ type: 'ESModule', path: 'index.js', contents: script }],
    compatibilityDate,
    kvNamespaces: ['TOKENS'],
    kvPersist,
    bindings: workerExampleBindings(server),
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      for (const stream of [stdout, stderr]) stream.on('data', (chunk: Buffer) => (runtimeOutput += chunk))
    },
  })
}

async function get(worker: Miniflare, path: string, init?: { method: string; body: string; headers: Record<string, string> }) {
  const response = await worker.dispatchFetch(`http://worker.test${path}`, init)
  return { status: response.status, body: (await response.json()) as { path?: string; method?: string; body?: string } }
}

async function getMany(worker: Miniflare) {
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => get(worker, `/items/${i}`)))
  expect(results.map((result) => result.body.path)).toEqual(Array.from({ length: 100 }, (_, i) => `/api/items/${i}`))
  return results.map((result) => result.status)
}

describe('workerd (miniflare): examples/cloudflare-worker, tokens in KV', () => {
  it('proxies with one shared refresh per isolate, recovers 401s, and a new instance resumes the grant from KV', async () => {
    const kvPersist = join(consumer.dir, 'kv')
    const first = startWorker(kvPersist)
    try {
      expect(await getMany(first), '100 concurrent requests on a cold isolate').toEqual(Array(100).fill(200))
      expect(server.tokenRequests).toHaveLength(1)
      expect(server.tokenRequests[0].form.refresh_token).toBe(CREDENTIALS.refreshToken)

      expect(await get(first, '/me')).toEqual({ status: 200, body: expect.objectContaining({ path: '/api/me' }) })
      expect(server.tokenRequests).toHaveLength(1)

      server.revokeAccessTokens()
      const posted = await get(first, '/notes', { method: 'POST', body: '{"note":1}', headers: { 'content-type': 'application/json' } })
      expect(posted, 'a 401 recovered, the body sent again').toEqual({ status: 200, body: expect.objectContaining({ method: 'POST', body: '{"note":1}' }) })
      expect(server.tokenRequests).toHaveLength(2)

      server.revokeAccessTokens()
      expect(await getMany(first), '100 concurrent 401s').toEqual(Array(100).fill(200))
      expect(server.tokenRequests).toHaveLength(3)

      // The KV binding as Node sees it (miniflare's types need @cloudflare/workers-types).
      const kv = (await first.getKVNamespace('TOKENS')) as unknown as {
        list(options: { prefix: string }): Promise<{ keys: Array<{ name: string }> }>
        get(key: string, type: 'text'): Promise<string | null>
      }
      const { keys } = await kv.list({ prefix: 'upstream:' })
      expect(keys).toHaveLength(1)
      const stored = JSON.parse((await kv.get(keys[0].name, 'text')) ?? 'null')
      expect(stored.refreshToken, 'the rotated refresh token is in KV').toBe(server.validRefreshToken)
    } finally {
      await first.dispose()
    }

    const second = startWorker(kvPersist)
    try {
      expect((await get(second, '/me')).status).toBe(200)
      expect(server.tokenRequests, 'the stored access token is resumed').toHaveLength(3)
      server.revokeAccessTokens()
      expect((await get(second, '/me')).status).toBe(200)
    } finally {
      await second.dispose()
    }
    const sent = server.tokenRequests.map((entry) => entry.form.refresh_token)
    expect(new Set(sent).size, 'each refresh sent the latest rotated token').toBe(4)
    expect(sent.filter((token) => token === CREDENTIALS.refreshToken), 'the configured refresh token is used once').toHaveLength(1)
    expect(runtimeOutput).not.toMatch(/different request|hung|cross-request/i)
  })
})
