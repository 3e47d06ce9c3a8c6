import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { chromium, type BrowserContext } from 'playwright-core'
import { rollup, type OutputOptions, type RollupOptions } from 'rollup'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { CHROMIUM, describeWithBrowser } from './support/chromium.js'
import { installPackedPackage, type Consumer } from './support/package.js'
import { CREDENTIALS } from './support/scenario.js'

let consumer: Consumer
let server: LocalServer
let context: BrowserContext
let extensionDir: string
let extensionId: string

/** Builds the example as its README says (rollup with its own config), pointed at the local server. */
async function buildExtension(dir: string) {
  await writeFile(
    join(dir, 'src/config.js'),
    `export const config = ${JSON.stringify({ tokenUrl: server.tokenUrl, clientId: CREDENTIALS.clientId, apiUrl: `${server.apiUrl}/me` })}\n`,
  )
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'))
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, host_permissions: ['http://127.0.0.1/*'] }))
  const { default: config } = (await import(/* @vite-ignore */ pathToFileURL(join(dir, 'rollup.config.mjs')).href)) as {
    default: RollupOptions & { output: OutputOptions }
  }
  const build = await rollup(config)
  await build.write(config.output)
  await build.close()
}

/** Starts Chromium with the unpacked extension, on a profile kept across restarts. */
async function launch() {
  context = await chromium.launchPersistentContext(join(consumer.dir, 'profile'), {
    ...CHROMIUM,
    args: [...(CHROMIUM.args ?? []), `--disable-extensions-except=${extensionDir}`, `--load-extension=${extensionDir}`],
  })
  const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker'))
  extensionId = new URL(worker.url()).host
}

beforeAll(async () => {
  consumer = await installPackedPackage()
  // An extension is a public client: no secret.
  server = await startLocalServer({ clientSecret: null })
  extensionDir = join(await consumer.add('examples', 'examples/browser-extension'), 'browser-extension')
  await buildExtension(extensionDir)
  await launch()
})
afterAll(async () => {
  await context?.close()
  await server?.close()
  await consumer?.remove()
})

describeWithBrowser('examples/browser-extension (Manifest V3, loaded unpacked in Chromium)', () => {
  it('the service worker signs in, calls the API, recovers a 401 and, after a browser restart, resumes the grant from IndexedDB', async () => {
    const openPopup = async () => {
      const popup = await context.newPage()
      popup.on('pageerror', (error) => errors.push(error.message))
      await popup.goto(`chrome-extension://${extensionId}/popup.html`)
      return popup
    }
    const errors: string[] = []
    let popup = await openPopup()
    const reply = async (button: string) => {
      await popup.locator('#output').evaluate((element) => (element.textContent = ''))
      await popup.click(`#${button}`)
      await expect.poll(() => popup.locator('#output').textContent()).toMatch(/^\{/)
      return JSON.parse((await popup.locator('#output').textContent()) ?? '')
    }

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
    // refresh token configured: it resumes the rotated grant from IndexedDB.
    const latest = server.validRefreshToken
    await context.close()
    await launch()
    popup = await openPopup()
    server.revokeAccessTokens()
    expect((await reply('call-api')).status, 'after a restart').toBe(200)
    expect(server.tokenRequests.map((entry) => entry.form.refresh_token)).toEqual([CREDENTIALS.refreshToken, rotated, latest])

    expect(await reply('sign-out')).toEqual({ signedIn: false })
    expect((await reply('call-api')).error).toMatch(/NO_GRANT/)
    expect(errors).toEqual([])
  })
})
