import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, Socket } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
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

/** A loopback port free a moment ago (redis-server refuses `--port 0`). */
async function freePort() {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address())
  server.close()
  await once(server, 'close')
  return port
}

/** Whether a Redis answers PING on `port`. */
async function answers(port) {
  const socket = new Socket()
  try {
    socket.connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write('PING\r\n')
    const [data] = await once(socket, 'data')
    return String(data).startsWith('+PONG')
  } catch {
    return false
  } finally {
    socket.destroy()
  }
}

/**
 * @typedef {object} RedisServer A redis-server of one's own, on a loopback port, keeping nothing on disk.
 * @property {number} port
 * @property {string} url
 * @property {() => Promise<void>} stop Stops the server (SIGTERM) and waits for it to exit.
 * @property {() => Promise<void>} start Starts it again on the same port, empty.
 */

/**
 * Starts `redis-server --port N --save '' --appendonly no` on a free loopback port; resolves
 * once it answers PING.
 *
 * @param {string} [command] the redis-server to run. Default: the one on the PATH.
 * @returns {Promise<RedisServer>}
 */
export async function startRedisServer(command = 'redis-server') {
  const port = await freePort()
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let child
  const server = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn(command, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
      const exited = once(child, 'exit').then(() => {
        throw new Error(`redis-server exited at start (port ${port})`)
      })
      exited.catch(() => undefined)
      for (let tries = 0; !(await answers(port)); tries++) {
        if (tries > 100) throw new Error(`redis-server did not answer on port ${port}`)
        await Promise.race([new Promise((resolve) => setTimeout(resolve, 50)), exited])
      }
    },
    async stop() {
      if (!child || child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    },
  }
  await server.start()
  return server
}
