import { expect } from 'vitest'
import { PID_HEADER } from '../../../bench/figures/holder-run.mjs'
import type { Holder } from '../../../bench/figures/holder-process.mjs'
import type { LocalServer } from '../../../examples/local-server/server.mjs'

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
