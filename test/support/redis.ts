import { spawnSync } from 'node:child_process'
import { describe } from 'vitest'
import { startRedisServer } from '../../bench/figures/redis.mjs'

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

/** A redis-server of the test's own (bench/figures/redis.mjs). */
export type { RedisServer } from '../../bench/figures/redis.mjs'

/** Starts a redis-server of the test's own on a free loopback port, keeping nothing on disk. */
export const startRedis = () => startRedisServer(path)
