import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { startLocalServer } from '../../examples/local-server/server.mjs'
import { interleave, summarize } from '../stats.mjs'
import { startHolder } from './holder-process.mjs'

const root = fileURLToPath(new URL('../..', import.meta.url))
const DENO = join(root, 'node_modules/.bin/deno')
const HOLDER = fileURLToPath(new URL('./deno-kv-holder.ts', import.meta.url))
const CREDENTIALS = { clientId: 'demo-client', clientSecret: 'demo-secret', refreshToken: 'demo-refresh-token' }

/**
 * A place for Deno processes to share a KV file: a temporary directory, an import map that
 * resolves `oauth-refresh` and `oauth-refresh/deno-kv` to the given ES module URLs, and a way to
 * start holders there.
 *
 * @param {{ entries: { core: string, denoKV: string } }} options the URLs of the two entries
 */
export async function denoKVPlace({ entries }) {
  const dir = await mkdtemp(join(tmpdir(), 'oauth-refresh-deno-kv-'))
  const importMap = join(dir, 'import-map.json')
  await writeFile(importMap, JSON.stringify({ imports: { 'oauth-refresh': entries.core, 'oauth-refresh/deno-kv': entries.denoKV } }))
  const env = { PATH: process.env.PATH, NO_COLOR: '1', DENO_DIR: join(dir, 'deno'), DENO_NO_UPDATE_CHECK: '1' }
  /** @type {Set<import('node:child_process').ChildProcess>} */
  const children = new Set()
  let files = 0

  return {
    dir,
    /** A new KV file path in this place. */
    kvPath: () => join(dir, `kv-${++files}.sqlite3`),
    /**
     * Starts a holder; resolves once it printed that it is ready.
     *
     * @param {Record<string, unknown>} config see deno-kv-holder.ts
     * @returns {Promise<import('./holder-process.mjs').Holder>}
     */
    async start(config) {
      // --allow-run: a holder told to stop itself at a point of its refresh (config.stopAt) sends itself SIGSTOP.
      const flags = ['--no-npm', `--import-map=${importMap}`, '--unstable-kv', '--allow-net=127.0.0.1', `--allow-read=${dir}`, `--allow-write=${dir}`, '--allow-run']
      return startHolder(DENO, ['run', ...flags, HOLDER, JSON.stringify(config)], env, children)
    },
    /** Kills every holder still running and deletes the place. */
    async close() {
      for (const child of children) child.kill('SIGKILL')
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Options of the local server for `rotationRace`: tokens last 1 s, so clients refresh them after 0.5 s. */
export const RACE_SERVER = { revokeOnReuse: true, expiresIn: 1 }

/**
 * `processes` Deno processes share one grant in one KV file (`kvPath`), each firing `concurrency`
 * authorized calls at once in each of `rounds` rounds, `periodMs` apart, against `server` (started
 * with `RACE_SERVER`: rotation, revocation on reuse). Each round needs a new token: the first has
 * none, every later one finds it due. With the lock that is one token request per round.
 *
 * @param {{ start(config: Record<string, unknown>): Promise<import('./holder-process.mjs').Holder> }} place Deno or Redis holders
 * @param {import('../../examples/local-server/server.mjs').LocalServer} server
 * @param {{ kvPath: string, processes?: number, concurrency?: number, rounds?: number, periodMs?: number, leaseMs?: number, lock?: boolean }} options
 */
export async function rotationRace(place, server, { kvPath, processes = 3, concurrency = 50, rounds = 5, periodMs = 1200, leaseMs = 2000, lock = true }) {
  const config = { ...holderConfig(server, kvPath), leaseMs, lock, mode: 'rounds', rounds, periodMs, concurrency }
  const holders = await Promise.all(Array.from({ length: processes }, () => place.start(config)))
  const at = Date.now() + 200
  for (const holder of holders) holder.go(at)
  const reports = await Promise.all(holders.map((holder) => holder.next()))
  await Promise.all(holders.map((holder) => holder.exited))
  const errors = {}
  for (const report of reports) for (const [code, count] of Object.entries(report.errors)) errors[code] = (errors[code] ?? 0) + count
  return {
    calls: processes * concurrency * rounds,
    ok: reports.reduce((sum, report) => sum + report.ok, 0),
    failed: Object.values(errors).reduce((sum, count) => sum + count, 0),
    errors,
  }
}

/**
 * What deno-kv-holder.ts needs besides its mode: the server's URLs and credentials, and the KV file.
 *
 * @param {import('../../examples/local-server/server.mjs').LocalServer} server
 * @param {string} kvPath
 */
export function holderConfig(server, kvPath) {
  return { ...CREDENTIALS, tokenUrl: server.tokenUrl, apiUrl: `${server.apiUrl}/me`, kvPath }
}

/**
 * Figure: processes × concurrency under rotation. `processes` holders of `place` fire
 * `concurrency` calls each per expiry, `expiries` times, with the adapter's lock and without it
 * (the same storage minus `lock`), taking turns for `rounds` rounds: token requests per expiry,
 * failed calls, and rounds whose grant the server revoked. `kvPath()` gives each run its file.
 * Tokens last `expiresIn` seconds (rounds are 1.2 times that apart): long enough that every
 * process takes its turn at the lock before the token is due again.
 *
 * @param {{ start(config: Record<string, unknown>): Promise<import('./holder-process.mjs').Holder> }} place
 * @param {{ rounds: number, processes: number, concurrency: number, expiries: number, kvPath: () => string, expiresIn?: number }} options
 */
export async function measureRace(place, { rounds, processes, concurrency, expiries, kvPath, expiresIn = 1 }) {
  const runs = await interleave(['withLock', 'withoutLock'], rounds, async (name) => {
    const server = await startLocalServer({ ...RACE_SERVER, expiresIn })
    try {
      const lock = name === 'withLock'
      const { failed } = await rotationRace(place, server, { kvPath: kvPath(), processes, concurrency, rounds: expiries, lock, periodMs: 1200 * expiresIn })
      return { tokenRequestsPerExpiry: server.tokenRequests.length / expiries, failed, revoked: server.grantRevoked }
    } finally {
      await server.close()
    }
  })
  const figure = (name) => ({
    tokenRequestsPerExpiry: summarize(runs[name].map((run) => run.tokenRequestsPerExpiry)),
    failed: summarize(runs[name].map((run) => run.failed)),
    revokedRounds: runs[name].filter((run) => run.revoked).length,
  })
  return { calls: processes * concurrency * expiries, withLock: figure('withLock'), withoutLock: figure('withoutLock') }
}

/**
 * The figure of `measureRace` for Deno processes on one KV file.
 *
 * @param {{ rounds?: number, processes?: number, concurrency?: number, expiries?: number }} [options]
 */
export async function measureDenoKVRace({ rounds = 2, processes = 3, concurrency = 50, expiries = 4 } = {}) {
  const url = (file) => pathToFileURL(join(root, 'dist', file)).href
  const place = await denoKVPlace({ entries: { core: url('index.js'), denoKV: url('deno-kv.js') } })
  try {
    return await measureRace(place, { rounds, processes, concurrency, expiries, kvPath: place.kvPath })
  } finally {
    await place.close()
  }
}
