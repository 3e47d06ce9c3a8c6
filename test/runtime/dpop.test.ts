import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Miniflare } from 'miniflare'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { sha256, thumbprint } from '../../examples/local-server/jose.mjs'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { bundle, CONDITIONS } from './support/bundle.js'
import { describeWithBrowser, launchChromium } from './support/chromium.js'
import { startHarness } from './support/harness.js'
import { installPackedPackage, ROOT, type Consumer } from './support/package.js'

const run = promisify(execFile)

let consumer: Consumer
let fixture: string
let clientJwk: JsonWebKey
let publicJwk: JsonWebKey
const running: LocalServer[] = []

beforeAll(async () => {
  consumer = await installPackedPackage()
  fixture = await consumer.add('dpop', 'test/runtime/fixtures/dpop/scenario.js', 'test/runtime/fixtures/dpop/deno.js', 'test/runtime/fixtures/dpop/worker.js', 'test/runtime/fixtures/dpop/browser.js', 'test/runtime/fixtures/dpop/durable-object.js')
  const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair
  clientJwk = await crypto.subtle.exportKey('jwk', pair.privateKey)
  publicJwk = await crypto.subtle.exportKey('jwk', pair.publicKey)
})
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()))
})
afterAll(() => consumer?.remove())

/** The local server in DPoP mode with nonces at both endpoints, and a private_key_jwt client. */
async function start() {
  const server = await startLocalServer({ clientJwk: publicJwk as Record<string, string>, dpop: { tokenNonce: true, apiNonce: true } })
  running.push(server)
  return server
}

const config = (server: LocalServer, extra: object = {}) => ({ tokenUrl: server.tokenUrl, apiUrl: `${server.apiUrl}/things`, clientJwk, ...extra })

interface Report {
  keptAs: string
  statuses: number[]
  body: unknown
  tokenType: string
  sameKey: boolean
  thumbprint: string
  bad: string[]
}

/** What the server saw of one run: one refresh per token, the nonce challenge, proofs with ath. */
function expectCycle(report: Report, server: LocalServer) {
  expect(report).toMatchObject({ statuses: [200, 200], body: { ok: true, method: 'POST', body: 'payload' }, tokenType: 'DPoP', sameKey: true })
  expect(report.bad).toEqual(['ConfigError CONFIG_INVALID', 'ConfigError CONFIG_INVALID'])
  // Three refreshes, each refresh token processed once; the first of each DPoP object (the first
  // start, the restart) met the nonce challenge.
  expect(server.tokenRequests).toHaveLength(5)
  expect(server.processedRefreshTokens).toHaveLength(3)
  expect(new Set(server.processedRefreshTokens).size).toBe(3)
  // The server checked an assertion in every token request, and refuses a jti it has seen.
  expect(server.assertionsChecked).toBe(5)
  const apiProof = server.dpopProofs.find((proof) => proof.ath)
  expect(apiProof).toMatchObject({ htm: expect.stringMatching(/^(GET|POST)$/), htu: `${server.apiUrl}/things`, ath: expect.any(String) })
  const lastToken = server.apiLog.at(-1)!.headers.authorization!.replace(/^DPoP /, '')
  expect(server.dpopProofs.at(-1)!.ath).toBe(sha256(lastToken))
}

describe('DPoP and private_key_jwt in the runtimes, from the packed package', () => {
  it('Deno: plain ESM, no npm resolution, no Node built-ins; the key as a CryptoKey, then as a JWK in JSON storage', async () => {
    const importMap = join(fixture, 'import-map.json')
    const imports = { 'oauth-refresh': await consumer.entry(), 'oauth-refresh/dpop': await consumer.entry('./dpop'), 'oauth-refresh/private-key-jwt': await consumer.entry('./private-key-jwt') }
    await writeFile(importMap, JSON.stringify({ imports }))
    const env = { PATH: process.env.PATH, NO_COLOR: '1', DENO_DIR: join(consumer.dir, '.deno'), DENO_NO_UPDATE_CHECK: '1' }
    const deno = async (args: string[]) => (await run(join(ROOT, 'node_modules/.bin/deno'), args, { cwd: fixture, env, timeout: 20_000 })).stdout
    const { modules } = JSON.parse(await deno(['info', '--json', '--no-npm', `--import-map=${importMap}`, 'deno.js'])) as { modules: Array<{ kind: string }> }
    expect(modules.filter((module) => module.kind !== 'esm')).toEqual([])
    for (const json of [false, true]) {
      const server = await start()
      const report = JSON.parse(await deno(['run', '--no-npm', `--import-map=${importMap}`, '--allow-net=127.0.0.1', 'deno.js', JSON.stringify(config(server, { json }))]))
      expectCycle(report, server)
      expect(report.keptAs).toBe(json ? 'JWK' : 'CryptoKey extractable=false')
    }
  })

  it('workerd (miniflare): bundled as wrangler would; EdDSA, and the key as a JWK in JSON storage', async () => {
    const script = await bundle(join(fixture, 'worker.js'), CONDITIONS.workerd)
    const worker = new Miniflare({ modules: [{ type: 'ESModule', path: 'index.js', contents: script }], compatibilityDate: '2025-01-01' })
    try {
      for (const extra of [{ algorithm: 'EdDSA' }, { json: true }]) {
        const server = await start()
        const response = await worker.dispatchFetch('http://worker.test/', { method: 'POST', body: JSON.stringify(config(server, extra)) })
        const report = (await response.json()) as Report
        expectCycle(report, server)
        expect(report.keptAs).toBe('json' in extra ? 'JWK' : 'CryptoKey extractable=false')
      }
    } finally {
      await worker.dispose()
    }
  })

  it('workerd Durable Object: the key lives in the object, Workers call the API through it, a restarted object keeps the key; private_key_jwt', async () => {
    const server = await startLocalServer({ clientJwk: publicJwk as Record<string, string>, dpop: { tokenNonce: true, apiNonce: true } })
    running.push(server)
    const script = await bundle(join(fixture, 'durable-object.js'), CONDITIONS.workerd)
    const persist = await mkdtemp(join(tmpdir(), 'oauth-refresh-dpop-do-'))
    const start = () =>
      new Miniflare({
        modules: [{ type: 'ESModule', path: 'index.js', contents: script }],
        compatibilityDate: '2025-01-01',
        durableObjects: { GRANTS: { className: 'Grants', useSQLite: true } },
        durableObjectsPersist: persist,
        bindings: { TOKEN_URL: server.tokenUrl, API_URL: server.apiUrl, CLIENT_JWK: JSON.stringify(clientJwk) },
      })
    let worker = start()
    const get = async <T = unknown>(path: string) => (await (await worker.dispatchFetch(`http://worker.test${path}`)).json()) as T
    try {
      const jkt = await get('/thumbprint')
      expect(await get('/api')).toEqual({ status: 200, body: { ok: true, method: 'POST', path: '/api/things', body: 'payload' } })
      expect(server.dpopProofs.at(-1)).toMatchObject({ htm: 'POST', htu: `${server.apiUrl}/things`, ath: expect.any(String) })
      // A proof for the sign-in's code exchange, by the same key.
      const [header, payload] = (await get<string>('/proof')).split('.').slice(0, 2).map((part: string) => JSON.parse(Buffer.from(part, 'base64url').toString()))
      expect(thumbprint(header.jwk)).toBe(jkt)
      expect(payload).toMatchObject({ htm: 'POST', htu: server.tokenUrl, nonce: 'n-1' })
      expect(await get('/elsewhere')).toMatchObject({ name: 'OAuthRefreshError', code: 'ORIGIN_NOT_ALLOWED' })
      expect(await get('/bad')).toMatchObject({ name: 'ConfigError', code: 'CONFIG_INVALID', message: 'Option "dpop" must be true or false' })
      await worker.dispose()
      worker = start()
      expect(await get('/thumbprint')).toBe(jkt)
      await get('/force')
      expect(await get('/api')).toMatchObject({ status: 200 })
      expect(server.processedRefreshTokens).toHaveLength(2)
      expect(new Set(server.processedRefreshTokens).size).toBe(2)
      expect(server.tokenRequests.every((request) => request.clientAuth === 'jwt')).toBe(true)
      // Clearing the grant replaces the key: the next sign-in binds a new one.
      expect(await get('/clear')).toEqual({ revoked: false })
      expect(await get('/thumbprint')).not.toBe(jkt)
      expect(await get('/api')).toMatchObject({ name: 'NoGrantError', code: 'NO_GRANT' })
    } finally {
      await worker.dispose()
      await rm(persist, { recursive: true, force: true })
    }
  })

  describeWithBrowser('Chromium', () => {
    it('a page on another origin (CORS): the cycle, the key non-extractable in IndexedDB, found by another tab', async () => {
      const server = await start()
      const harness = await startHarness(server)
      const browser = await launchChromium()
      try {
        harness.serve('/index.html', { type: 'text/html', body: '<!doctype html><title>dpop</title><script type="module" src="/app.js"></script>' })
        harness.serve('/app.js', { type: 'text/javascript', body: await bundle(join(fixture, 'browser.js'), CONDITIONS.browser) })
        const context = await browser.newContext()
        const open = async () => {
          const page = await context.newPage()
          await page.goto(harness.pageOrigin)
          await page.waitForFunction(() => 'runDPoP' in window)
          return page
        }
        const page = await open()
        const apiConfig = { tokenUrl: `${harness.apiOrigin}/token`, apiUrl: `${harness.apiOrigin}/api/things`, clientJwk }
        const report = (await page.evaluate((value) => (window as unknown as { runDPoP(config: object): Promise<Report> }).runDPoP(value), apiConfig)) as Report
        expect(report.keptAs).toBe('CryptoKey extractable=false')
        expect(report).toMatchObject({ statuses: [200, 200], tokenType: 'DPoP', sameKey: true })
        expect(server.processedRefreshTokens).toHaveLength(3)
        expect(new Set(server.processedRefreshTokens).size).toBe(3)
        expect(server.dpopProofs.at(-1)).toMatchObject({ htu: `${harness.apiOrigin}/api/things`, ath: expect.any(String) })
        const other = await open()
        expect(await other.evaluate(() => (window as unknown as { storedThumbprint(): Promise<string> }).storedThumbprint())).toBe(report.thumbprint)
      } finally {
        await browser.close()
        await harness.close()
      }
    })
  })
})
