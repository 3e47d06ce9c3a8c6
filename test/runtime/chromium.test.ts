import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { startLocalServer, type LocalServer, type LocalServerOptions } from '../../examples/local-server/server.mjs'
import { bundle, CONDITIONS } from './support/bundle.js'
import { describeWithBrowser, launchChromium } from './support/chromium.js'
import { startHarness, type Harness } from './support/harness.js'
import { installPackedPackage, type Consumer } from './support/package.js'
import { CREDENTIALS, expectResume, expectStart, SCENARIO, scenarioConfig, type ResumeReport, type StartReport } from './support/scenario.js'

let consumer: Consumer
let browser: Browser
let app: string
const running: Array<LocalServer | Harness> = []

beforeAll(async () => {
  consumer = await installPackedPackage()
  const dir = await consumer.add('browser', 'test/runtime/fixtures/browser/app.js', SCENARIO)
  ;[app, browser] = await Promise.all([bundle(join(dir, 'app.js'), CONDITIONS.browser), launchChromium()])
})
afterEach(async () => {
  await Promise.all(running.splice(0).map((item) => item.close()))
})
afterAll(async () => {
  await browser?.close()
  await consumer?.remove()
})

/**
 * A page on its own origin (`http://127.0.0.1:<port>`, a secure context) whose token endpoint and
 * API are on another origin, reached with CORS; a new browser context, so IndexedDB starts empty.
 * `newPage` opens another page of that origin in that context: a tab sharing its IndexedDB.
 */
async function openPage(options?: LocalServerOptions) {
  const server = await startLocalServer(options)
  const harness = await startHarness(server)
  running.push(harness, server)
  harness.serve('/index.html', { type: 'text/html', body: '<!doctype html><title>oauth-refresh</title><script type="module" src="/app.js"></script>' })
  harness.serve('/app.js', { type: 'text/javascript', body: app })
  const context = await browser.newContext()
  const newPage = async () => {
    const page = await context.newPage()
    const errors: string[] = []
    page.on('pageerror', (error) => errors.push(error.message))
    const load = async () => {
      await page.goto(harness.pageOrigin)
      await page.waitForFunction(() => 'runPhase' in window)
    }
    await load()
    return { page, errors, load }
  }
  return { server, newPage, config: scenarioConfig(server, harness.apiOrigin), ...(await newPage()) }
}

function inPage(page: Page, fn: 'runPhase' | 'runPhaseInWorker', phase: string, config: object) {
  return page.evaluate(([fn, phase, config]) => (window as any)[fn](phase, config), [fn, phase, config] as const)
}

describeWithBrowser('Chromium', () => {
  it('a page keeps the grant in IndexedDB: after a reload it resumes the rotated grant', async () => {
    const { server, page, errors, load, config } = await openPage()
    const start = (await inPage(page, 'runPhase', 'start', config)) as StartReport
    expectStart(start, server)
    await load()
    expectResume((await inPage(page, 'runPhase', 'resume', config)) as ResumeReport, start, server)
    expect(errors).toEqual([])
    await page.context().close()
  })

  it('a dedicated Web Worker runs the client; a new worker resumes the grant from IndexedDB', async () => {
    const { server, page, errors, config } = await openPage()
    const start = (await inPage(page, 'runPhaseInWorker', 'start', config)) as StartReport
    expectStart(start, server)
    expectResume((await inPage(page, 'runPhaseInWorker', 'resume', config)) as ResumeReport, start, server)
    expect(errors).toEqual([])
    await page.context().close()
  })

  it('tabs of one origin that all need a token at once make one token request between them (Web Locks)', async () => {
    const { server, config, newPage, ...first } = await openPage({ latencyMs: 200, rotate: true })
    const tabs = [first, ...(await Promise.all([newPage(), newPage()]))]
    const { tokenUrl, clientId, clientSecret, refreshToken } = config
    const options = { tokenUrl, clientId, clientSecret, refreshToken, storageKey: 'shared-grant' }
    // Each tab creates its client and waits for one BroadcastChannel message, so all ask at once.
    await Promise.all(
      tabs.map(({ page }) =>
        page.evaluate((options) => {
          const client = (window as any).createClient(options)
          const go = new BroadcastChannel('go')
          ;(window as any).token = new Promise((resolve) => {
            go.onmessage = () => {
              go.close()
              resolve(client.getAccessToken())
            }
          })
        }, options),
      ),
    )
    await first.page.evaluate(() => new BroadcastChannel('go').postMessage('go'))
    const tokens = await Promise.all(tabs.map(({ page }) => page.evaluate(() => (window as any).token as Promise<string>)))

    expect(server.tokenRequests, 'one token request for all three tabs').toHaveLength(1)
    expect(server.tokenRequests[0]?.form.refresh_token).toBe(CREDENTIALS.refreshToken)
    expect(new Set(tokens).size, 'every tab got the same access token').toBe(1)
    const stored = await first.page.evaluate((key) => (window as any).storedGrant(key), options.storageKey)
    expect(stored).toMatchObject({ accessToken: tokens[0], refreshToken: server.validRefreshToken })
    expect(server.validRefreshToken, 'the grant rotated').not.toBe(CREDENTIALS.refreshToken)
    expect(tabs.flatMap(({ errors }) => errors)).toEqual([])
    await first.page.context().close()
  })

  it("a sign-out in one tab reaches another within a second: end 'elsewhere', NO_GRANT, no token request; a sign-in after it is picked up there from storage", async () => {
    const { server, config, newPage, ...a } = await openPage()
    const b = await newPage()
    const { tokenUrl, clientId, clientSecret, refreshToken } = config
    // No configured refresh token: the app signs in with setRefreshToken, as after a sign-in flow.
    const options = { tokenUrl, clientId, clientSecret, storageKey: 'signed-out', revocationUrl: tokenUrl.replace(/\/token$/, '/revoke') }
    for (const { page } of [a, b]) {
      await page.evaluate((options) => {
        const tab = window as any
        tab.client = tab.createClient(options)
        tab.ends = []
        tab.client.on('end', (event: { reason: string }) => tab.ends.push({ reason: event.reason, at: Date.now() }))
      }, options)
    }
    const inTab = <T,>(page: Page, action: string, arg?: string) =>
      page.evaluate(
        async ([action, arg]) => {
          const { client } = window as any
          if (action === 'sign-in') return client.setRefreshToken(arg)
          if (action === 'token') return client.getAccessToken().catch((error: any) => ({ name: error.name, code: error.code, reason: error.reason }))
          const started = Date.now()
          const result = await client.clear({ revoke: true })
          return { result, started, cleared: Date.now() }
        },
        [action, arg] as const,
      ) as Promise<T>
    const ends = (page: Page) => page.evaluate(() => (window as any).ends as Array<{ reason: string; at: number }>)

    await inTab(a.page, 'sign-in', refreshToken)
    expect(server.issuedTokens).toContain(await inTab<string>(b.page, 'token'))
    expect(server.tokenRequests).toHaveLength(1)
    const newest = server.validRefreshToken

    const { result, started, cleared } = await inTab<{ result: unknown; started: number; cleared: number }>(a.page, 'sign-out')
    expect(result).toEqual({ revoked: true })
    expect(server.revocations.map((entry) => entry.token), 'the newest refresh token, rotated in tab B, is revoked').toEqual([newest])
    await b.page.waitForFunction(() => (window as any).ends.length > 0, undefined, { timeout: 5000 })
    const [end, ...more] = await ends(b.page)
    expect(end?.reason).toBe('elsewhere')
    expect(more).toEqual([])
    expect(end!.at - started, `tab B ended ${end!.at - cleared} ms after tab A's clear resolved`).toBeLessThan(1000)
    expect(await inTab(b.page, 'token')).toEqual({ name: 'NoGrantError', code: 'NO_GRANT', reason: 'elsewhere' })
    expect(server.tokenRequests, 'tab B made no token request').toHaveLength(1)

    // A new sign-in in tab A: tab B takes the new grant from IndexedDB at its next call.
    server.setRefreshToken('rt-after-sign-out')
    await inTab(a.page, 'sign-in', 'rt-after-sign-out')
    expect(server.issuedTokens).toContain(await inTab<string>(b.page, 'token'))
    expect(server.tokenRequests.map((entry) => entry.form.refresh_token)).toEqual([refreshToken, 'rt-after-sign-out'])
    expect((await ends(a.page)).map((event) => event.reason)).toEqual(['revoked'])
    expect(await ends(b.page)).toHaveLength(1)
    expect([...a.errors, ...b.errors]).toEqual([])
    await a.page.context().close()
  })

  it('a refresh stuck inside the Web Lock in one tab stops blocking the other tabs after maxWaitMs, the bound of the client', async () => {
    const { server, config, newPage, ...stuck } = await openPage()
    const tabs = await Promise.all([newPage(), newPage()])
    const { tokenUrl, clientId, clientSecret, refreshToken } = config
    // The client's bound, maxWaitMs: (2 × 1 attempt + 2) × (500 ms timeout + 0 ms backoff) = 2 s.
    const options = { tokenUrl, clientId, clientSecret, refreshToken, storageKey: 'stuck-grant', timeoutMs: 500, retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } }
    await stuck.page.evaluate((options) => void (window as any).createStuckClient(options).getAccessToken().catch(() => {}), options)
    const outcomes = await Promise.all(
      tabs.map(({ page }) =>
        page.evaluate(async (options) => {
          const client = (window as any).createClient(options)
          const outcome = () => client.getAccessToken().then((token: string) => typeof token, (error: { code: string }) => error.code)
          return [await outcome(), await outcome()]
        }, options),
      ),
    )
    // A first call may wait out the bound (TIMEOUT); the next gets a token. Unbounded, every call times out.
    for (const [first, second] of outcomes) {
      expect(['string', 'TIMEOUT']).toContain(first)
      expect(second, 'a token once the stuck refresh gave the lock up').toBe('string')
    }
    expect(server.tokenRequests, 'one refresh for both tabs, the stuck one never sent').toHaveLength(1)
    expect([stuck, ...tabs].flatMap(({ errors }) => errors)).toEqual([])
    await stuck.page.context().close()
  })
})
