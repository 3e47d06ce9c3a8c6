import { expect, it } from 'vitest'
import { holderConfig } from '../../../bench/figures/deno-kv.mjs'
import type { Holder } from '../../../bench/figures/holder-process.mjs'
import { PAUSE_POINTS, PID_HEADER } from '../../../bench/figures/holder-run.mjs'
import { startLocalServer, type LocalServer, type LocalServerOptions } from '../../../examples/local-server/server.mjs'
import { CREDENTIALS } from './scenario.js'

/** Starts holders (Deno processes on one KV file, Node processes on one Redis) with a config of their own. */
export interface Place {
  start(config: Record<string, unknown>): Promise<Holder>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * One holder stops (SIGSTOP) at `point` of its refresh for `pauseMs`, then continues (SIGCONT);
 * once it stopped, two others want a token. Every holder asks for one token (`config` in mode
 * "token"); resolves their answers, the stopped holder's first. At "server" the server stops the
 * holder once it has processed its request, before answering.
 */
export async function pauseAt(place: Place, server: LocalServer, config: Record<string, unknown>, point: string, pauseMs: number) {
  const token = { ...config, mode: 'token', rounds: 0, periodMs: 0, concurrency: 0 }
  const [paused, ...others] = await Promise.all([place.start({ ...token, stopAt: point }), place.start(token), place.start(token)])
  let stopped!: () => void
  const serverStopped = new Promise<void>((resolve) => (stopped = resolve))
  if (point === 'server') {
    server.fault({
      beforeAnswer: (request) => {
        process.kill(Number(request.headers[PID_HEADER]), 'SIGSTOP')
        stopped()
      },
    })
  }
  paused!.go(Date.now())
  if (point === 'server') await serverStopped
  else expect(await paused!.next()).toEqual({ stopped: point })
  const continued = sleep(pauseMs).then(() => process.kill(paused!.pid, 'SIGCONT'))
  for (const other of others) other.go(Date.now())
  const answers = await Promise.all([paused!.next(), ...others.map((other) => other.next())])
  await continued
  return answers as Array<{ token?: string; error?: string }>
}

/** Every refresh token the server was sent; with rotation, one sent twice is a spent one presented again. */
export const sentRefreshTokens = (server: LocalServer) => server.tokenRequests.map((request) => request.form.refresh_token)

/**
 * The grant is alive and storage holds its newest refresh token: a new holder, whose access token
 * the API refuses, refreshes with the refresh token the server accepts now.
 */
export async function expectAliveAndNewest(place: Place, server: LocalServer, config: Record<string, unknown>) {
  expect(server.grantRevoked).toBe(false)
  const newest = server.validRefreshToken
  server.revokeAccessTokens()
  const next = await place.start({ ...config, mode: 'rounds', rounds: 1, periodMs: 0, concurrency: 1 })
  next.go(Date.now())
  expect(await next.next()).toEqual({ ok: 1, errors: {} })
  expect(server.tokenRequests.at(-1)!.form.refresh_token, 'storage held the newest refresh token').toBe(newest)
}

/** Runs `test` against a new local server with `options`, closed after. */
async function withServer(options: LocalServerOptions, test: (server: LocalServer) => Promise<void>) {
  const server = await startLocalServer(options)
  try {
    await test(server)
  } finally {
    await server.close()
  }
}

/**
 * The holders of `place()` (created in the caller's `beforeAll`) against a server that rotates
 * refresh tokens and revokes the grant on reuse: one killed while its token request is out, one
 * stopped past its lease at each of the pause points, and one stopped past its in-flight deadline
 * against a provider with a grace period. `kvPath()` gives each test its storage file, if any.
 */
export function describeFailingHolders(place: () => Place, kvPath: () => string): void {
  it('a process killed while its token request is out: the others get one token once its lease and its in-flight record have ended', () =>
    withServer({ revokeOnReuse: true }, async (server) => {
      const leaseMs = 1000
      const timeoutMs = 3000
      server.fault({ hang: true })
      const config = { ...holderConfig(server, kvPath()), leaseMs, timeoutMs, lock: true, mode: 'token', rounds: 0, periodMs: 0, concurrency: 0 }
      const killed = await place().start(config)
      killed.go(Date.now())
      while (server.tokenRequests.length === 0) await sleep(10)
      // It holds the lock and its token request hangs. The others start and wait.
      const others = await Promise.all([place().start(config), place().start(config)])
      for (const other of others) other.go(Date.now())
      const answers = others.map((other) => other.next())
      let answered = false
      for (const answer of answers) void answer.then(() => (answered = true))
      await sleep(1.5 * leaseMs)
      expect(answered, 'the others wait while the holder renews its lease').toBe(false)

      const killedAt = Date.now()
      killed.kill('SIGKILL')
      const [first, second] = await Promise.all(answers)
      const takeoverMs = Math.max(first.at, second.at) - killedAt
      console.info(`takeover after SIGKILL with a request out: ${takeoverMs} ms (leaseMs ${leaseMs}, timeoutMs ${timeoutMs})`)
      expect(first.token).toBeDefined()
      expect(second.token).toBe(first.token)
      expect(sentRefreshTokens(server), 'one more token request, with the unspent token').toEqual([CREDENTIALS.refreshToken, CREDENTIALS.refreshToken])
      expect(server.grantRevoked).toBe(false)
      // The bound: the record's deadline (timeoutMs + leaseMs after the claim, before the kill), a
      // poll, and the refresh and write on a busy machine (allowed 1,000 ms).
      expect(takeoverMs).toBeLessThan(timeoutMs + leaseMs + 1000)
      expect(await killed.exited).toBeNull()
    }))

  for (const point of PAUSE_POINTS) {
    const where = point === 'server' ? 'while the server holds its answer' : `at "${point}"`
    it(`a holder stopped past its lease ${where}, then continued: no spent refresh token presented, the grant alive, storage on the newest refresh token`, () =>
      withServer({ revokeOnReuse: true }, async (server) => {
        const leaseMs = 1000
        const config = { ...holderConfig(server, kvPath()), leaseMs, lock: true }
        const answers = await pauseAt(place(), server, config, point, leaseMs + 600)
        expect(answers.map((answer) => answer.error)).toEqual([undefined, undefined, undefined])
        const sent = sentRefreshTokens(server)
        expect(new Set(sent).size, `no refresh token sent twice: ${sent.length} sent`).toBe(sent.length)
        await expectAliveAndNewest(place(), server, config)
      }))
  }

  it('a holder stopped past its in-flight deadline, before writing its answer, against a provider with a grace period: storage never rolls back', () =>
    withServer({ revokeOnReuse: true, graceMs: 60_000 }, async (server) => {
      const leaseMs = 1000
      const timeoutMs = 1000
      const config = { ...holderConfig(server, kvPath()), leaseMs, timeoutMs, lock: true }
      // The others wait out its lease and its record (timeoutMs + leaseMs), then send the spent token.
      const answers = await pauseAt(place(), server, config, 'answer', timeoutMs + 2 * leaseMs + 1000)
      expect(answers.every((answer) => answer.token)).toBe(true)
      expect(sentRefreshTokens(server), 'the documented window: the spent token, sent again past the deadline').toEqual([CREDENTIALS.refreshToken, CREDENTIALS.refreshToken])
      await expectAliveAndNewest(place(), server, config)
    }))
}
