import { cp } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { BrowserContext } from 'playwright-core'
import { rollup, type OutputOptions, type RollupOptions } from 'rollup'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { describeWithBrowser } from './support/chromium.js'
import { buildTestExtension, launchWithExtensions, serviceWorker, type ExtensionGlobals } from './support/extension.js'
import { installPackedPackage, ROOT, type Consumer } from './support/package.js'
import type { NoGrantError, RefreshClient } from '../../src/index.js'
import { CREDENTIALS } from './support/scenario.js'

const EXAMPLE_WORKER = 'dist/background.js'
const TEST_WORKER = 'oauth.js'

/** The extension APIs the example's test calls itself, as @types/chrome would type them. */
interface ChromeApis {
  chrome: { alarms: { get(name: string): Promise<unknown> }; runtime: { sendMessage(message: object): Promise<unknown> } }
}

let consumer: Consumer
let context: BrowserContext
let exampleDir: string
let testDir: string

/**
 * Copies the example as a fresh clone has it (no node_modules, no build output) and builds it as
 * its README says (rollup with its own config), against the packed package.
 */
async function buildExample() {
  const dir = join(consumer.dir, 'browser-extension')
  await cp(join(ROOT, 'examples/browser-extension'), dir, { recursive: true, filter: (path) => !['node_modules', 'dist'].includes(basename(path)) })
  const { default: config } = (await import(/* @vite-ignore */ pathToFileURL(join(dir, 'rollup.config.mjs')).href)) as {
    default: RollupOptions & { output: OutputOptions }
  }
  const build = await rollup(config)
  await build.write(config.output)
  await build.close()
  return dir
}

/** Starts Chromium with the example and the test extension, on a profile kept across restarts. */
async function launch() {
  context = await launchWithExtensions(join(consumer.dir, 'profile'), [exampleDir, testDir])
}
const extensionId = async (script: string) => new URL((await serviceWorker(context, script)).url()).host

beforeAll(async () => {
  consumer = await installPackedPackage()
  ;[exampleDir, testDir] = await Promise.all([buildExample(), buildTestExtension(consumer)])
  await launch()
})
afterAll(async () => {
  await context?.close()
  await consumer?.remove()
})

describeWithBrowser('examples/browser-extension (Manifest V3, loaded unpacked in Chromium)', () => {
  let server: LocalServer
  beforeAll(async () => {
    // An extension is a public client: no secret.
    server = await startLocalServer({ clientSecret: null })
  })
  afterAll(() => server?.close())

  it('takes its settings from the popup, signs in, calls the API, recovers a 401 and, after a browser restart, resumes the rotated grant from chrome.storage.local', async () => {
    const errors: string[] = []
    const openPopup = async () => {
      const popup = await context.newPage()
      popup.on('pageerror', (error) => errors.push(error.message))
      await popup.goto(`chrome-extension://${await extensionId(EXAMPLE_WORKER)}/popup.html`)
      return popup
    }
    let popup = await openPopup()
    const reply = async (button: string) => {
      await popup.locator('#output').evaluate((element) => (element.textContent = ''))
      await popup.click(`#${button}`)
      await expect.poll(() => popup.locator('#output').textContent()).toMatch(/^\{/)
      return JSON.parse((await popup.locator('#output').textContent()) ?? '')
    }
    const settings = { tokenUrl: server.tokenUrl, revocationUrl: server.revocationUrl, clientId: CREDENTIALS.clientId, apiUrl: `${server.apiUrl}/me` }
    /** What chrome.storage.local of the example holds. */
    const stored = async () =>
      (await serviceWorker(context, EXAMPLE_WORKER)).evaluate(() => (globalThis as unknown as ExtensionGlobals).chrome.storage.local.get(null))

    expect((await reply('call-api')).error, 'no settings yet').toMatch(/No settings yet/)
    for (const [name, value] of Object.entries(settings)) await popup.fill(`#settings [name=${name}]`, value)
    expect(await reply('save'), 'loopback is granted by the manifest').toEqual({ saved: true })

    await popup.fill('#refresh-token', CREDENTIALS.refreshToken)
    expect(await reply('sign-in')).toEqual({ signedIn: true })
    expect(server.tokenRequests).toHaveLength(1)
    expect(server.tokenRequests[0].clientAuth, 'a public client').toBe('none')

    const first = await reply('call-api')
    expect(first.status).toBe(200)
    expect(JSON.parse(first.body)).toMatchObject({ ok: true, path: '/api/me' })
    expect(server.tokenRequests).toHaveLength(1)

    const rotated = server.validRefreshToken
    server.revokeAccessTokens()
    expect((await reply('call-api')).status, 'a 401 recovered').toBe(200)
    expect(server.tokenRequests.map((entry) => entry.form.refresh_token)).toEqual([CREDENTIALS.refreshToken, rotated])

    // A new service worker (Chrome stops idle ones; here the whole browser restarts) has no
    // refresh token configured: it resumes the rotated grant from chrome.storage.local.
    const latest = server.validRefreshToken
    const grants = Object.values(await stored()).filter((value) => (value as { refreshToken?: string }).refreshToken === latest)
    expect(grants, 'the rotated grant is in chrome.storage.local').toHaveLength(1)
    await context.close()
    await launch()
    popup = await openPopup()
    for (const [name, value] of Object.entries(settings)) expect(await popup.inputValue(`#settings [name=${name}]`)).toBe(value)
    server.revokeAccessTokens()
    expect((await reply('call-api')).status, 'after a restart').toBe(200)
    expect(server.tokenRequests.map((entry) => entry.form.refresh_token)).toEqual([CREDENTIALS.refreshToken, rotated, latest])

    // The daily alarm's keep-alive: the grant was just refreshed, so no token request.
    const worker = await serviceWorker(context, EXAMPLE_WORKER)
    expect(await worker.evaluate(() => (globalThis as unknown as ChromeApis).chrome.alarms.get('keep-alive')), 'the keep-alive alarm, made again after the restart').toMatchObject({ periodInMinutes: 24 * 60 })
    expect(await popup.evaluate(() => (globalThis as unknown as ChromeApis).chrome.runtime.sendMessage({ type: 'keep-alive' }))).toEqual({ refreshed: false })
    expect(server.tokenRequests).toHaveLength(3)

    const newest = server.validRefreshToken
    expect(await reply('sign-out')).toEqual({ signedIn: false, revoked: true })
    expect(server.revocations.map((entry) => entry.token), 'sign-out revokes the newest refresh token').toEqual([newest])
    expect((await reply('call-api')).error).toMatch(/NO_GRANT/)
    expect(Object.values(await stored()).some((value) => (value as { refreshToken?: string }).refreshToken), 'no grant left').toBe(false)
    expect(errors).toEqual([])
  })
})

describeWithBrowser('webExtensionStorage(chrome.storage.local) in an extension', () => {
  it('the service worker and two extension pages that need a token at once make one token request, under rotation that revokes on reuse', async () => {
    // Each token response takes 500 ms, so the three contexts' refreshes overlap unless
    // something (the client's Web Locks of the extension origin) makes them take turns.
    const server = await startLocalServer({ clientSecret: null, revokeOnReuse: true, latencyMs: 500 })
    try {
      const id = await extensionId(TEST_WORKER)
      const openPage = async () => {
        const page = await context.newPage()
        await page.goto(`chrome-extension://${id}/page.html`)
        await page.waitForFunction(() => 'oauthRefresh' in globalThis)
        return page
      }
      const [worker, ...pages] = await Promise.all([serviceWorker(context, TEST_WORKER), openPage(), openPage()])
      const options = { tokenUrl: server.tokenUrl, clientId: CREDENTIALS.clientId, refreshToken: CREDENTIALS.refreshToken, storageKey: `three-contexts-${Date.now()}` }

      /** In one context: a new client on chrome.storage.local asks for a token. */
      const needToken = async (options: { tokenUrl: string; clientId: string; refreshToken: string; storageKey: string }) => {
        const { chrome, oauthRefresh } = globalThis as unknown as ExtensionGlobals
        const client = oauthRefresh.createRefreshClient({ ...options, storage: oauthRefresh.webExtensionStorage(chrome.storage.local) })
        const started = Date.now()
        const token = await client.getAccessToken().catch((error: { name: string; code: string }) => `${error.name} ${error.code}`)
        return { token, started, ended: Date.now() }
      }
      const results = await Promise.all([worker.evaluate(needToken, options), ...pages.map((page) => page.evaluate(needToken, options))])

      expect(Math.max(...results.map((result) => result.started)), 'the three calls overlapped').toBeLessThan(Math.min(...results.map((result) => result.ended)))
      expect(server.tokenRequests, 'one token request').toHaveLength(1)
      expect(server.grantRevoked).toBe(false)
      const [{ token }] = results
      expect(server.issuedTokens).toContain(token)
      expect(results.map((result) => result.token), 'every context got the one token').toEqual([token, token, token])
      const api = await fetch(`${server.apiUrl}/me`, { headers: { authorization: `Bearer ${token}` } })
      expect(api.status, 'the token works: the grant was not revoked').toBe(200)
      await Promise.all(pages.map((page) => page.close()))
    } finally {
      await server.close()
    }
  })

  it("a sign-out in an extension page ends the service worker's grant ('elsewhere'); the page's own clear and sign-in at once is not ended by its own late change", async () => {
    const server = await startLocalServer({ clientSecret: null })
    const page = await context.newPage()
    try {
      await page.goto(`chrome-extension://${await extensionId(TEST_WORKER)}/page.html`)
      await page.waitForFunction(() => 'oauthRefresh' in globalThis)
      const worker = await serviceWorker(context, TEST_WORKER)
      const options = { tokenUrl: server.tokenUrl, clientId: CREDENTIALS.clientId, storageKey: `sign-out-${Date.now()}`, revocationUrl: server.revocationUrl }
      /** In one context: a client on chrome.storage.local whose `end` events are kept in `ends`. */
      const setUp = (options: { tokenUrl: string; clientId: string; storageKey: string; revocationUrl: string }) => {
        const globals = globalThis as unknown as ExtensionGlobals & { client: RefreshClient; ends: string[] }
        globals.client = globals.oauthRefresh.createRefreshClient({ ...options, storage: globals.oauthRefresh.webExtensionStorage(globals.chrome.storage.local) })
        globals.ends = []
        globals.client.on('end', (event) => globals.ends.push(event.reason))
      }
      type Tab = typeof globalThis & { client: RefreshClient; ends: string[] }
      const tokenOrError = () => (globalThis as Tab).client.getAccessToken().catch((error: NoGrantError) => `${error.code} ${error.reason}`)
      await Promise.all([worker.evaluate(setUp, options), page.evaluate(setUp, options)])

      await page.evaluate((refreshToken) => (globalThis as Tab).client.setRefreshToken(refreshToken), CREDENTIALS.refreshToken)
      expect(server.issuedTokens).toContain(await worker.evaluate(tokenOrError))
      expect(await page.evaluate(() => (globalThis as Tab).client.clear({ revoke: true }))).toEqual({ revoked: true })
      await expect.poll(() => worker.evaluate(() => (globalThis as Tab).ends), { timeout: 1000 }).toEqual(['elsewhere'])
      expect(await worker.evaluate(tokenOrError)).toBe('NO_GRANT elsewhere')
      expect(server.tokenRequests, 'the service worker made no token request after the sign-out').toHaveLength(1)

      // The page signs in again and uses the grant (its client now listens for deletes), then signs
      // out and in at once: the sign-in does not wait for the sign-out, whose change event comes after it.
      server.setRefreshToken('rt-second')
      await page.evaluate(async () => {
        const { client } = globalThis as Tab
        await client.setRefreshToken('rt-second')
        await client.getAccessToken()
      })
      server.setRefreshToken('rt-third')
      await page.evaluate(async () => {
        const { client, chrome } = globalThis as unknown as Tab & ExtensionGlobals
        // Told once every change before it has reached this page's listeners, the adapter's among them.
        ;(globalThis as unknown as { barrier: Promise<void> }).barrier = new Promise((resolve) => {
          chrome.storage.local.onChanged!.addListener((changes) => {
            if ('barrier' in changes) resolve()
          })
        })
        await Promise.all([client.clear(), client.setRefreshToken('rt-third')])
      })
      await worker.evaluate(() => (globalThis as unknown as ExtensionGlobals).chrome.storage.local.set({ barrier: Date.now() }))
      await page.evaluate(() => (globalThis as unknown as { barrier: Promise<void> }).barrier)
      expect(await page.evaluate(() => (globalThis as Tab).ends)).toEqual(['revoked', 'cleared'])
      expect(server.issuedTokens).toContain(await page.evaluate(tokenOrError))
    } finally {
      await page.close()
      await server.close()
    }
  })
})

