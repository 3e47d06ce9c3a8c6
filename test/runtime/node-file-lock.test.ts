import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startLocalServer, type LocalServer, type LocalServerOptions } from '../../examples/local-server/server.mjs'
import { ROOT } from './support/package.js'

// Node processes sharing one grant through examples/node's file storage (dist/ must be built),
// against a provider that rotates the refresh token and revokes the grant when a spent one
// comes back (RFC 9700 §4.14.2), so a second refresh of one expiry kills the grant.
const WORKER = join(ROOT, 'test/runtime/fixtures/node/file-lock.mjs')
const ROTATING: LocalServerOptions = { rotate: true, revokeOnReuse: true }

interface Report {
  calls: number
  failed: number
  codes: Record<string, number>
}

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((step) => step()))
})

async function setup(options: LocalServerOptions) {
  const server = await startLocalServer(options)
  const dir = await mkdtemp(join(tmpdir(), 'oauth-refresh-file-lock-'))
  cleanup.push(() => server.close(), () => rm(dir, { recursive: true, force: true }))
  return { server, file: join(dir, 'grants.json') }
}

/** Starts a worker process; `report` resolves what it printed once it exits 0. */
function worker(server: LocalServer, file: string, settings: { leaseMs: number; concurrency: number; durationMs: number; noLock?: boolean }) {
  const child = spawn(process.execPath, [WORKER], {
    env: {
      PATH: process.env.PATH,
      TOKEN_URL: server.tokenUrl,
      API_URL: `${server.apiUrl}/me`,
      TOKEN_FILE: file,
      LEASE_MS: String(settings.leaseMs),
      CONCURRENCY: String(settings.concurrency),
      DURATION_MS: String(settings.durationMs),
      ...(settings.noLock && { NO_LOCK: '1' }),
    },
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => (stdout += chunk))
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  cleanup.push(async () => {
    child.kill('SIGKILL')
    await exited
  })
  const report = exited.then((code) => {
    if (code !== 0) throw new Error(`worker exited ${code}: ${stderr}`)
    return JSON.parse(stdout) as Report
  })
  // A killed worker's report is never awaited.
  report.catch(() => {})
  return { child, exited, report }
}

async function until(condition: () => boolean) {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20))
}

/** 3 processes × 20 concurrent calls at a time for 7 s, tokens of 2 s (refreshed after 1 s). */
async function storm(noLock: boolean) {
  const { server, file } = await setup({ ...ROTATING, expiresIn: 2, latencyMs: 150 })
  const settings = { leaseMs: 2_000, concurrency: 20, durationMs: 7_000, noLock }
  const reports = await Promise.all([1, 2, 3].map(() => worker(server, file, settings).report))
  const sent = server.tokenRequests.map((request) => request.form.refresh_token)
  const figures = {
    processes: 3,
    concurrency: settings.concurrency,
    calls: reports.reduce((sum, report) => sum + report.calls, 0),
    failed: reports.reduce((sum, report) => sum + report.failed, 0),
    tokenRequests: sent.length,
    spentTokensSent: sent.length - new Set(sent).size,
    grantRevoked: server.grantRevoked,
  }
  console.log(`file lock ${noLock ? 'removed' : 'on'}: ${JSON.stringify(figures)}`)
  return figures
}

describe('examples/node file storage shared by Node processes', () => {
  it('with its lock: one token request per expiry, no call fails, the grant stays alive', { timeout: 60_000 }, async () => {
    const figures = await storm(false)
    // Each refresh token was sent once: no expiry was refreshed twice.
    expect(figures.spentTokensSent).toBe(0)
    expect(figures.grantRevoked).toBe(false)
    expect(figures.failed).toBe(0)
    // Several expiries were met (7 s of 2-s tokens refreshed at half their life).
    expect(figures.tokenRequests).toBeGreaterThanOrEqual(4)
  })

  it('without it (the same storage minus lock), the processes refresh one expiry twice and the grant dies', { timeout: 60_000 }, async () => {
    const figures = await storm(true)
    expect(figures.spentTokensSent).toBeGreaterThan(0)
    expect(figures.grantRevoked).toBe(true)
    expect(figures.failed).toBeGreaterThan(0)
  })

  it('a SIGKILLed holder blocks the others for at most leaseMs; they then refresh once', { timeout: 60_000 }, async () => {
    const leaseMs = 1_500
    const { server, file } = await setup(ROTATING)
    // The holder's token request is read and never answered: it holds the lock until killed.
    server.fault({ hang: true })
    const holder = worker(server, file, { leaseMs, concurrency: 1, durationMs: 0 })
    await until(() => server.tokenHits === 1)
    const waiters = [1, 2].map(() => worker(server, file, { leaseMs, concurrency: 5, durationMs: 0 }))
    // Their calls wait for the lock (the holder renews it): nothing reaches the token endpoint.
    await new Promise((resolve) => setTimeout(resolve, leaseMs * 2))
    expect(server.tokenHits).toBe(1)

    holder.child.kill('SIGKILL')
    const killedAt = Date.now()
    await holder.exited
    const reports = await Promise.all(waiters.map((waiter) => waiter.report))
    const waited = Date.now() - killedAt
    console.log(`file lock: waiters done ${waited} ms after the holder was killed (leaseMs ${leaseMs})`)

    expect(reports.map((report) => report.failed)).toEqual([0, 0])
    // One refresh after the takeover, with the refresh token the dead holder's request never spent.
    expect(server.tokenRequests.map((request) => request.form.refresh_token)).toEqual(['demo-refresh-token', 'demo-refresh-token'])
    expect(server.grantRevoked).toBe(false)
    // A bound, not a measurement: the lease, plus a process exit and a refresh on busy cores.
    expect(waited).toBeLessThan(leaseMs + 2_000)
  })
})
