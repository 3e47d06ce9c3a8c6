import { expect } from 'vitest'
import type { LocalServer } from '../../../examples/local-server/server.mjs'

/** The credentials every runtime run configures: the local server's defaults. */
export const CREDENTIALS = { clientId: 'demo-client', clientSecret: 'demo-secret', refreshToken: 'demo-refresh-token' }

/** The environment of examples/cloudflare-worker's Workers (both variants), as its .dev.vars sets it, for `server`. */
export function workerExampleBindings(server: LocalServer): Record<string, string> {
  return {
    OAUTH_TOKEN_URL: server.tokenUrl,
    OAUTH_CLIENT_ID: CREDENTIALS.clientId,
    OAUTH_CLIENT_SECRET: CREDENTIALS.clientSecret,
    OAUTH_REFRESH_TOKEN: CREDENTIALS.refreshToken,
    UPSTREAM_URL: server.apiUrl,
  }
}

/** The fixture that runs inside each runtime. */
export const SCENARIO = 'test/runtime/fixtures/scenario.js'

interface Step<T> {
  result: T
  tokenRequests: number
}
type Request = { status: number; path: string }
type Many = { statuses: Record<string, number> }

/** The report of `runPhase('start', …)` (fixtures/scenario.js). */
export interface StartReport {
  cold: Step<Many>
  token: Step<string>
  authorized: Step<Request>
  recovered: Step<Request>
  recoveredMany: Step<Many>
  lastToken: string
}

/** The report of `runPhase('resume', …)`. */
export interface ResumeReport {
  resumed: Step<string>
  refreshed: Step<Request>
}

/** The scenario's config for a server, with the token endpoint and API at `origin` (default: the server's). */
export function scenarioConfig(server: LocalServer, origin = server.origin) {
  return { ...CREDENTIALS, tokenUrl: `${origin}/token`, apiUrl: `${origin}/api` }
}

/** Checks the start phase against what the server saw. */
export function expectStart(report: StartReport, server: LocalServer): void {
  expect(report.cold, '100 concurrent requests on a cold client: one token request').toEqual({ result: { statuses: { 200: 100 } }, tokenRequests: 1 })
  expect(server.tokenRequests[0]?.form.refresh_token, 'the first refresh sends the configured refresh token').toBe(CREDENTIALS.refreshToken)
  expect(report.token.tokenRequests, 'a valid token is reused').toBe(1)
  expect(report.authorized).toEqual({ result: { status: 200, path: '/api/me' }, tokenRequests: 1 })
  const me = server.apiLog.filter((entry) => entry.path === '/api/me')
  expect(me[0]?.headers.authorization, 'the API got the access token').toBe(`Bearer ${report.token.result}`)
  expect(report.recovered, 'a 401 is recovered by one refresh').toEqual({ result: { status: 200, path: '/api/me' }, tokenRequests: 2 })
  expect(report.recoveredMany, '100 concurrent 401s share one refresh').toEqual({ result: { statuses: { 200: 100 } }, tokenRequests: 3 })
  expect(report.lastToken).not.toBe(report.token.result)
}

/** Checks the resume phase: the grant rotated before the restart was resumed from storage. */
export function expectResume(report: ResumeReport, start: StartReport, server: LocalServer): void {
  expect(report.resumed, 'the stored access token is resumed without a token request').toEqual({ result: start.lastToken, tokenRequests: 3 })
  expect(report.refreshed, 'the stored, rotated refresh token works').toEqual({ result: { status: 200, path: '/api/me' }, tokenRequests: 4 })
  const sent = server.tokenRequests.map((entry) => entry.form.refresh_token)
  expect(new Set(sent).size, 'every refresh sent the latest rotated token').toBe(4)
  expect(sent.filter((token) => token === CREDENTIALS.refreshToken), 'the configured refresh token is used once').toHaveLength(1)
}
