import { fileURLToPath, pathToFileURL } from 'node:url'
import { join } from 'node:path'
import { measureRace } from './deno-kv.mjs'
import { startHolder } from './holder-process.mjs'

const root = fileURLToPath(new URL('../..', import.meta.url))
const HOLDER = fileURLToPath(new URL('./redis-holder.mjs', import.meta.url))

/**
 * A place for Node processes to share a grant in one Redis at `redisUrl`: `start(config)` starts
 * a holder (redis-holder.mjs) that loads the package from `entries` and talks to Redis with
 * `redisClient` (node-redis or ioredis, from this repository's node_modules).
 *
 * @param {{ entries: { core: string, redis: string }, redisUrl: string, redisClient?: 'node-redis' | 'ioredis' }} options
 */
export function redisPlace({ entries, redisUrl, redisClient = 'node-redis' }) {
  const env = { PATH: process.env.PATH, NODE_NO_WARNINGS: '1' }
  /** @type {Set<import('node:child_process').ChildProcess>} */
  const children = new Set()
  return {
    /**
     * Starts a holder; resolves once it printed that it is ready.
     *
     * @param {Record<string, unknown>} config see redis-holder.mjs; `kvPath` is ignored
     */
    start: (config) => startHolder(process.execPath, [HOLDER, JSON.stringify({ entries, redisUrl, redisClient, ...config })], env, children),
    /** Kills every holder still running. */
    async close() {
      for (const child of children) child.kill('SIGKILL')
    },
  }
}

/**
 * The figure of `measureRace` for Node processes on one Redis at `redisUrl`.
 *
 * @param {{ redisUrl: string, rounds?: number, processes?: number, concurrency?: number, expiries?: number }} options
 */
export async function measureRedisRace({ redisUrl, rounds = 2, processes = 4, concurrency = 50, expiries = 4 }) {
  const url = (file) => pathToFileURL(join(root, 'dist', file)).href
  const place = redisPlace({ entries: { core: url('index.js'), redis: url('redis.js') }, redisUrl })
  try {
    return await measureRace(place, { rounds, processes, concurrency, expiries, kvPath: () => '', expiresIn: 2 })
  } finally {
    await place.close()
  }
}
