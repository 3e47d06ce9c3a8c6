// One Node process holding the grant in a Redis shared with others: bench/figures/redis.mjs starts
// several. Prints {"ready":true} once its client exists, reads a start time (epoch ms) from stdin,
// then does what holder-run.mjs says. With `stopAt`, it stops itself (SIGSTOP) once at that point
// of a refresh, after printing {"stopped": point}; whoever started it sends SIGCONT.
import { PID_HEADER, pausePoints, runHolder } from './holder-run.mjs'

/**
 * @type {{ entries: { core: string, redis: string }, redisUrl: string, redisClient: 'node-redis' | 'ioredis', tokenUrl: string,
 *   apiUrl: string, clientId: string, clientSecret: string, refreshToken: string, leaseMs: number, lock: boolean, mode: 'rounds' | 'token',
 *   rounds: number, periodMs: number, concurrency: number, stopAt?: string, timeoutMs?: number }}
 */
const config = JSON.parse(process.argv[2])
const print = (message) => console.log(JSON.stringify(message))
const points = pausePoints(config.stopAt, () => {
  print({ stopped: config.stopAt })
  process.kill(process.pid, 'SIGSTOP')
})
const { createRefreshClient } = await import(config.entries.core)
const { redisStorage } = await import(config.entries.redis)

// The offline queue off, as the README advises. The grant's write (its script, or a plain SET
// without a lease) stops at 'commit' just before it is sent.
const isWrite = (args) => (args[0] === 'EVAL' && args[1].includes("redis.call('SET', KEYS[1], ARGV[4])")) || (args[0] === 'SET' && args.length === 3)
let redis, close
if (config.redisClient === 'ioredis') {
  const { Redis } = await import('ioredis')
  const client = new Redis(config.redisUrl, { enableOfflineQueue: false, lazyConnect: true })
  client.on('error', () => undefined)
  await client.connect()
  redis = { call: async (command, args) => (isWrite([command, ...args]) && (await points.at('commit')), client.call(command, args)) }
  close = () => client.disconnect()
} else {
  const { createClient } = await import('redis')
  const client = createClient({ url: config.redisUrl, disableOfflineQueue: true })
  client.on('error', () => undefined)
  await client.connect()
  redis = { sendCommand: async (args) => (isWrite(args) && (await points.at('commit')), client.sendCommand(args)) }
  close = () => client.destroy()
}
const shared = points.storage(redisStorage(redis, { leaseMs: config.leaseMs }))
// Without the lock: the same storage, as an adapter without `lock` would be.
const storage = config.lock ? shared : { get: (key) => shared.get(key), set: (key, value) => shared.set(key, value), delete: (key) => shared.delete(key) }
const { tokenUrl, clientId, clientSecret, refreshToken, timeoutMs } = config
const client = createRefreshClient({ tokenUrl, clientId, clientSecret, refreshToken, timeoutMs, storage, fetch: points.fetch(fetch), tokenRequest: { headers: { [PID_HEADER]: String(process.pid) } } })

async function startTime() {
  let text = ''
  for await (const chunk of process.stdin) {
    text += chunk
    if (text.includes('\n')) break
  }
  return Number(text.trim())
}

await runHolder(client, config, startTime, print)
close()
