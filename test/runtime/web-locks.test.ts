import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import ts from 'typescript'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { describeWithBrowser, launchChromium } from './support/chromium.js'
import { startHarness, type Harness } from './support/harness.js'
import { ROOT } from './support/package.js'

// src/lock.ts in real Chromium: tabs of one origin share its Web Locks (navigator.locks), and a
// refresh runs under the lock named after its grant. The module and the errors it throws are
// served as they are, type-stripped; the page runs `exclusive` as the client does.

/** The bound a refresh may wait for the lock and hold it (the client passes its `maxWaitMs`). */
const BOUND_MS = 1_000

let browser: Browser
const files = new Map<string, string>()
const running: Array<LocalServer | Harness | BrowserContext> = []

const PAGE = `<!doctype html><title>locks</title><script type="module">
import { exclusive } from '/lock.js'
const storage = { get: async () => undefined, set: async () => {}, delete: async () => {} }
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
// A refresh under the lock: it never finishes (ms null), or works for ms in steps of 50 ms.
window.refresh = (ms, bound) => {
  let started
  const acquired = new Promise((resolve) => (started = resolve))
  const outcome = exclusive(storage, 'grant', async () => {
    const start = Date.now()
    started(start)
    if (ms === null) await new Promise(() => {})
    for (let worked = 0; worked < ms; worked += 50) await sleep(50)
    return { start, end: Date.now() }
  }, bound).then((value) => ({ ok: true, value }), (error) => ({ ok: false, name: error.name, code: error.code }))
  window.outcome = outcome
  // When it took the lock; null when it never did.
  return Promise.race([acquired, outcome.then(() => null)])
}
window.locks = async () => {
  const { held = [], pending = [] } = await navigator.locks.query()
  return { held: held.length, pending: pending.length }
}
</script>`

beforeAll(async () => {
  const strip = async (path: string) =>
    ts.transpileModule(await readFile(join(ROOT, path), 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText
  files.set('/lock.js', await strip('src/lock.ts'))
  files.set('/errors.js', await strip('src/errors.ts'))
  browser = await launchChromium()
})
afterEach(async () => {
  await Promise.all(running.splice(0).map((item) => item.close()))
})
afterAll(async () => {
  await browser?.close()
})

/** `count` tabs of one origin (`http://127.0.0.1:<port>`, a secure context), in a new browser context. */
async function openTabs(count: number): Promise<Page[]> {
  const server = await startLocalServer()
  const harness = await startHarness(server)
  running.push(harness, server)
  harness.serve('/index.html', { type: 'text/html', body: PAGE })
  for (const [path, body] of files) harness.serve(path, { type: 'text/javascript', body })
  const context = await browser.newContext()
  running.push(context)
  return Promise.all(
    Array.from({ length: count }, async () => {
      const page = await context.newPage()
      await page.goto(harness.pageOrigin)
      await page.waitForFunction(() => 'refresh' in window)
      return page
    }),
  )
}

type Outcome = { ok: true; value: { start: number; end: number } } | { ok: false; name: string; code: string }
const refresh = (page: Page, ms: number | null) => page.evaluate(([ms, bound]) => (window as any).refresh(ms, bound) as Promise<number | null>, [ms, BOUND_MS] as const)
const outcome = (page: Page) => page.evaluate(() => (window as any).outcome as Promise<Outcome>)
const locks = (page: Page) => page.evaluate(() => (window as any).locks() as Promise<{ held: number; pending: number }>)
const settledYet = (page: Page) => page.evaluate(() => Promise.race([(window as any).outcome.then(() => true), new Promise((resolve) => setTimeout(resolve, 0, false))]))

describeWithBrowser('Chromium: a Web Lock held by a refresh (src/lock.ts)', () => {
  it('a refresh that never finishes in one tab stops blocking another tab once it has held the lock for the bound', async () => {
    const [hung, other] = await openTabs(2)
    const held = (await refresh(hung!, null))!
    // The other tab asks while the hung refresh holds the lock.
    const waiting = refresh(other!, 100)
    await expect.poll(() => locks(hung!)).toEqual({ held: 1, pending: 1 })
    const start = (await waiting)!
    // A timer never fires early: the other tab did not run its refresh before the bound was over.
    expect(start - held, 'the other tab ran once the bound was over').toBeGreaterThanOrEqual(BOUND_MS)
    expect(await outcome(other!)).toMatchObject({ ok: true, value: { start } })
    expect(await settledYet(hung!), 'the hung refresh runs on; only its lock was given up').toBe(false)
    expect(await locks(hung!)).toEqual({ held: 0, pending: 0 })
  })

  it('while a refresh works within its bound, no other tab refreshes at once: it waits, then runs', async () => {
    const [slow, other] = await openTabs(2)
    await refresh(slow!, BOUND_MS * 0.6)
    const waiting = refresh(other!, 50)
    await expect.poll(() => locks(slow!)).toEqual({ held: 1, pending: 1 })
    await waiting
    const [slowOutcome, otherOutcome] = await Promise.all([outcome(slow!), outcome(other!)])
    expect(slowOutcome).toMatchObject({ ok: true })
    expect(otherOutcome).toMatchObject({ ok: true })
    if (slowOutcome.ok && otherOutcome.ok) expect(otherOutcome.value.start, 'the other tab started after the slow refresh ended').toBeGreaterThanOrEqual(slowOutcome.value.end)
  })

  it('a tab waiting behind a holder that keeps the lock past the bound stops waiting with TIMEOUT, its refresh never run', async () => {
    const [unbounded, waiter] = await openTabs(2)
    // A holder without a bound, as an older version of the SDK in another tab would be.
    await unbounded!.evaluate(() => new Promise<void>((acquired) => void navigator.locks.request('oauth-refresh:grant', () => (acquired(), new Promise(() => {})))))
    expect(await refresh(waiter!, 50), 'it never took the lock').toBeNull()
    expect(await outcome(waiter!)).toEqual({ ok: false, name: 'TokenRequestError', code: 'TIMEOUT' })
    expect(await locks(waiter!), 'the waiter left the queue').toEqual({ held: 1, pending: 0 })
  })
})
