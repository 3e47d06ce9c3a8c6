// Figure: isolates × concurrency under rotation. Several Worker scripts (each an isolate of its
// own in workerd, through miniflare) share one grant, kept in KV by the core client or in a
// Durable Object by oauth-refresh/durable-object, against a token endpoint that rotates refresh
// tokens. test/runtime/durable-object.test.ts runs the same race on the packed package.
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { readFile } from 'node:fs/promises'
import { Miniflare } from 'miniflare'
import { rollup } from 'rollup'
import { startLocalServer } from '../../examples/local-server/server.mjs'

/** The Worker every isolate runs: `MODE=kv` keeps the grant in KV, otherwise in the `Grants` object. */
export const FIXTURE = fileURLToPath(new URL('../../test/runtime/fixtures/durable-object/worker.js', import.meta.url))

const COMPATIBILITY_DATE = '2026-04-01'

/** Sends `n` concurrent requests to one isolate, each a request of its own there, and counts the answers by status. */
const DRIVER = `export default {
  async fetch(request, env) {
    const { searchParams } = new URL(request.url)
    const target = env[searchParams.get('isolate')]
    const statuses = await Promise.all(Array.from({ length: Number(searchParams.get('n')) }, async () => {
      const response = await target.fetch('http://worker.test' + searchParams.get('path'))
      await response.arrayBuffer()
      return response.status
    }))
    const counts = {}
    for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1
    return Response.json(counts)
  },
}`

/** The fixture's environment for `server`: its client and API, the grant in KV or in the object. */
export function fixtureBindings(server, mode = 'object') {
  return {
    TOKEN_URL: server.tokenUrl,
    CLIENT_ID: 'demo-client',
    CLIENT_SECRET: 'demo-secret',
    REFRESH_TOKEN: 'demo-refresh-token',
    API_URL: server.apiUrl,
    MODE: mode,
  }
}

/**
 * @typedef {object} Workers
 * @property {string[]} isolates The Worker scripts' names, `isolate-0` … (the first hosts the object).
 * @property {(isolate: string, path: string, init?: RequestInit) => Promise<{ status: number, body: any }>} get One request, its JSON answer.
 * @property {(n: number, path: string) => Promise<number>} burst `n` concurrent requests on every isolate at once; how many failed (not 200).
 * @property {(isolate: string, cron: string) => Promise<{ outcome: string }>} scheduled Runs the isolate's `scheduled` handler, as a Cron Trigger would.
 * @property {() => Promise<void>} dispose
 */

/**
 * Starts `isolates` Worker scripts running `script` in one workerd, plus a driver that sends
 * them concurrent requests. The first script hosts the Durable Object class `className` (bound
 * as `binding`), the others bind it by script name; all share the KV namespace `TOKENS`.
 *
 * @param {{ script: string, bindings: Record<string, string>, isolates?: number, binding?: string, className?: string, compatibilityDate?: string, persist?: string, onOutput?: (chunk: string) => void }} options
 * @returns {Workers}
 */
export function startWorkers({ script, bindings, isolates = 1, binding = 'GRANTS', className = 'Grants', compatibilityDate = COMPATIBILITY_DATE, persist, onOutput }) {
  const names = Array.from({ length: isolates }, (_, i) => `isolate-${i}`)
  const mf = new Miniflare({
    workers: [
      {
        name: 'driver',
        modules: [{ type: 'ESModule', path: 'driver.js', contents: DRIVER }],
        compatibilityDate,
        routes: ['driver.test/*'],
        serviceBindings: Object.fromEntries(names.map((name) => [name, name])),
      },
      ...names.map((name, i) => ({
        name,
        modules: [{ type: 'ESModule', path: 'worker.js', contents: script }],
        compatibilityDate,
        routes: [`${name}.test/*`],
        bindings,
        kvNamespaces: { TOKENS: 'tokens' },
        durableObjects: { [binding]: i === 0 ? { className, useSQLite: true } : { className, scriptName: names[0] } },
      })),
    ],
    durableObjectsPersist: persist ?? false,
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) stream.on('data', (chunk) => onOutput?.(String(chunk)))
    },
  })
  const get = async (isolate, path, init) => {
    const response = await mf.dispatchFetch(`http://${isolate}.test${path}`, init)
    return { status: response.status, body: await response.json() }
  }
  return {
    isolates: names,
    get,
    async burst(n, path) {
      const answers = await Promise.all(names.map((isolate) => get('driver', `/?isolate=${isolate}&n=${n}&path=${encodeURIComponent(path)}`)))
      return answers.reduce((failed, { body }) => failed + n - (body['200'] ?? 0), 0)
    },
    scheduled: async (isolate, cron) => (await mf.getWorker(isolate)).scheduled({ cron }),
    dispose: () => mf.dispose(),
  }
}

/**
 * @typedef {object} RaceFigures
 * @property {'object' | 'kv'} mode
 * @property {number} isolates
 * @property {number} concurrency
 * @property {number} expiries Rounds of requests, the cold start included; each met an expired token.
 * @property {number} tokenRequests
 * @property {number} failedRequests
 * @property {boolean} grantAlive No spent refresh token was sent, and the server did not revoke the grant.
 * @property {number[]} rpcs RPCs each isolate made to the object (object mode).
 */

/**
 * `isolates` × `concurrency` requests at once through the fixture Worker, on a cold start and
 * then each time the token is past its refresh point (half of `expiresIn`; each round waits
 * that long after the last one ended).
 *
 * @param {{ script: string, mode: 'object' | 'kv', isolates?: number, concurrency?: number, expiries?: number, expiresIn?: number, revokeOnReuse?: boolean, onOutput?: (chunk: string) => void }} options
 * @returns {Promise<RaceFigures>}
 */
export async function race({ script, mode, isolates = 3, concurrency = 200, expiries = 5, expiresIn = 3, revokeOnReuse = true, onOutput }) {
  const server = await startLocalServer({ expiresIn, revokeOnReuse, backlog: 2048 })
  const workers = startWorkers({ script, bindings: fixtureBindings(server, mode), isolates, onOutput })
  try {
    let failedRequests = 0
    for (let round = 0; round <= expiries; round++) {
      if (round > 0) await sleep((expiresIn * 1000) / 2 + 250)
      failedRequests += await workers.burst(concurrency, '/api/race')
    }
    const refreshTokens = server.tokenRequests.map((request) => request.form.refresh_token)
    return {
      mode,
      isolates,
      concurrency,
      expiries: expiries + 1,
      tokenRequests: refreshTokens.length,
      failedRequests,
      grantAlive: !server.grantRevoked && new Set(refreshTokens).size === refreshTokens.length,
      rpcs: mode === 'object' ? await Promise.all(workers.isolates.map(async (isolate) => (await workers.get(isolate, '/rpcs')).body)) : [],
    }
  } finally {
    await workers.dispose()
    await server.close()
  }
}

/** Bundles the fixture against dist/, as wrangler would bundle a Worker that imports the package. */
async function bundleFixture() {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'))
  const build = await rollup({
    input: FIXTURE,
    external: (id) => id.startsWith('cloudflare:'),
    plugins: [
      {
        name: 'oauth-refresh-dist',
        resolveId(id) {
          const match = /^oauth-refresh(\/[\w-]+)?$/.exec(id)
          return match && fileURLToPath(new URL(`../../${pkg.exports[`.${match[1] ?? ''}`].import.default}`, import.meta.url))
        },
      },
    ],
  })
  try {
    return (await build.generate({ format: 'es' })).output[0].code
  } finally {
    await build.close()
  }
}

/**
 * The figure: for each setting of isolates × concurrency, the race with the grant in KV and in
 * the object, against a token endpoint that rotates refresh tokens (`revokeOnReuse` off, so that
 * KV's extra refreshes are counted rather than ending the run).
 *
 * @param {{ settings?: Array<{ isolates: number, concurrency: number }>, expiries?: number, expiresIn?: number }} [options]
 */
export async function measureIsolates({ settings = [{ isolates: 3, concurrency: 100 }], expiries = 3, expiresIn = 2 } = {}) {
  const script = await bundleFixture()
  const results = []
  for (const { isolates, concurrency } of settings) {
    for (const mode of ['kv', 'object']) {
      const figures = await race({ script, mode, isolates, concurrency, expiries, expiresIn, revokeOnReuse: false })
      results.push({ ...figures, tokenRequestsPerExpiry: figures.tokenRequests / figures.expiries })
    }
  }
  return results
}
