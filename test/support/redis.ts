import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer, Socket } from 'node:net'
import { describe } from 'vitest'

/** `redis-server` on the PATH (Debian's package), or undefined. */
export function findRedisServer(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' })
  return found.status === 0 ? found.stdout.trim() : undefined
}

/** The line printed once when the Redis tests are skipped; undefined when they run (always in CI). */
export function redisSkipNotice(path: string | undefined, env: Record<string, string | undefined> = process.env): string | undefined {
  if (path || env.CI) return undefined
  return 'Skipped the Redis tests (test/storage/redis.test.ts, test/runtime/redis.test.ts): no redis-server found. Install it (apt-get install -y redis-server).'
}

const path = findRedisServer()

/** `describe`, skipped where no redis-server is found outside CI; in CI a missing server fails the start. */
export const describeWithRedis = describe.skipIf(redisSkipNotice(path) !== undefined)

/** A loopback port free a moment ago (redis-server refuses `--port 0`). */
async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/** A redis-server of the test's own, on a loopback port, keeping nothing on disk. */
export interface RedisServer {
  port: number
  url: string
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>
  /** Starts it again on the same port, empty. */
  start(): Promise<void>
}

async function answers(port: number): Promise<boolean> {
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

/** Starts `redis-server --port N --save '' --appendonly no` on a free loopback port; resolves once it answers PING. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn(path ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
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
