// @vitest-environment happy-dom
import nodeConsole from 'node:console'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { webStorage } from './fixtures/web-storage.js'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { runPhase } from './fixtures/scenario.js'
import { startHarness, type Harness } from './support/harness.js'
import { installPackedPackage, type Consumer } from './support/package.js'
import { expectResume, expectStart, scenarioConfig, type ResumeReport, type StartReport } from './support/scenario.js'

let consumer: Consumer
let server: LocalServer
let harness: Harness

beforeAll(async () => {
  consumer = await installPackedPackage()
  server = await startLocalServer()
  harness = await startHarness(server)
})
afterAll(async () => {
  await harness?.close()
  await server?.close()
  await consumer?.remove()
})

describe('happy-dom', () => {
  it("runs the scenario with the DOM's fetch across origins (CORS) and the grant in localStorage", async () => {
    expect(location.origin, 'a page origin other than the API').not.toBe(harness.apiOrigin)
    const sdk = await import(/* @vite-ignore */ await consumer.entry())
    const context = {
      sdk,
      config: scenarioConfig(server, harness.apiOrigin),
      control: { revoke: async () => server.revokeAccessTokens(), tokenRequests: async () => server.tokenRequests.length },
    }
    // happy-dom logs each 4xx answer on the page console (Node's own, not vitest's), as browsers
    // do: collect those lines and check them.
    const logged = vi.spyOn(nodeConsole, 'error').mockImplementation(() => {})
    try {
      const start = (await runPhase('start', { ...context, storage: webStorage(localStorage) })) as StartReport
      expectStart(start, server)
      expect(localStorage.length).toBe(1)
      const resume = (await runPhase('resume', { ...context, storage: webStorage(localStorage) })) as ResumeReport
      expectResume(resume, start, server)
      const messages = logged.mock.calls.map((args) => String(args[0]))
      expect(messages.length, "the DOM's fetch carried the requests").toBeGreaterThan(0)
      expect(messages.filter((message) => !/^GET \S+\/api\/\S+ 401 \(Unauthorized\)$/.test(message)), 'only the expected 401s').toEqual([])
    } finally {
      logged.mockRestore()
    }
  })
})
