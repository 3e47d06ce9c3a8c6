import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { bundle, CONDITIONS } from './support/bundle.js'
import { launchChromium } from './support/chromium.js'
import { startHarness, type Harness } from './support/harness.js'
import { installPackedPackage, type Consumer } from './support/package.js'
import { expectResume, expectStart, SCENARIO, scenarioConfig, type ResumeReport, type StartReport } from './support/scenario.js'

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
 */
async function openPage() {
  const server = await startLocalServer()
  const harness = await startHarness(server)
  running.push(harness, server)
  harness.serve('/index.html', { type: 'text/html', body: '<!doctype html><title>oauth-refresh</title><script type="module" src="/app.js"></script>' })
  harness.serve('/app.js', { type: 'text/javascript', body: app })
  const context = await browser.newContext()
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  const load = async () => {
    await page.goto(harness.pageOrigin)
    await page.waitForFunction(() => 'runPhase' in window)
  }
  await load()
  return { server, page, errors, load, config: scenarioConfig(server, harness.apiOrigin) }
}

function inPage(page: Page, fn: 'runPhase' | 'runPhaseInWorker', phase: string, config: object) {
  return page.evaluate(([fn, phase, config]) => (window as any)[fn](phase, config), [fn, phase, config] as const)
}

describe('Chromium', () => {
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
})
