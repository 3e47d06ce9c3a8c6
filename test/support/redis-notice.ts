import { findRedisServer, redisSkipNotice } from './redis.js'

/** Vitest global setup: says once per run when the Redis tests are skipped, and why. */
export function setup() {
  const notice = redisSkipNotice(findRedisServer())
  if (notice) console.log(notice)
}
