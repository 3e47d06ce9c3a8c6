// One Deno process holding the grant in a Deno KV file shared with others: bench/figures/deno-kv.mjs
// starts several. Prints {"ready":true} once its client exists, reads a start time (epoch ms) from
// stdin, then does what holder-run.mjs says. With `stopAt`, it stops itself (SIGSTOP) once at that
// point of a refresh, after printing {"stopped": point}; whoever started it sends SIGCONT.
import { createRefreshClient, type TokenStorage } from 'oauth-refresh'
import { denoKVStorage, type DenoKVAtomicLike, type DenoKVLike } from 'oauth-refresh/deno-kv'
import { PID_HEADER, pausePoints, runHolder } from './holder-run.mjs'

interface Config {
  tokenUrl: string
  apiUrl: string
  clientId: string
  clientSecret: string
  refreshToken: string
  kvPath: string
  leaseMs: number
  lock: boolean
  mode: 'rounds' | 'token'
  rounds: number
  periodMs: number
  concurrency: number
  stopAt?: string
  timeoutMs?: number
}

const config: Config = JSON.parse(Deno.args[0]!)
const print = (message: object) => console.log(JSON.stringify(message))
const points = pausePoints(config.stopAt, () => {
  print({ stopped: config.stopAt })
  Deno.kill(Deno.pid, 'SIGSTOP')
})

const kv = await Deno.openKv(config.kvPath)
// The grant's write (a set of a value with a refresh token) stops at 'commit' just before it is sent.
const writesGrant = (value: unknown) => typeof (value as { refreshToken?: unknown })?.refreshToken === 'string'
const atomic = (operation: DenoKVAtomicLike, grant = false): DenoKVAtomicLike => ({
  check: (...checks) => atomic(operation.check(...checks), grant),
  set: (key, value) => atomic(operation.set(key, value), grant || writesGrant(value)),
  delete: (key) => atomic(operation.delete(key), grant),
  commit: async () => (grant && (await points.at('commit')), operation.commit()),
})
const watched: DenoKVLike = { get: (key) => kv.get(key), set: async (key, value) => (writesGrant(value) && (await points.at('commit')), kv.set(key, value)), delete: (key) => kv.delete(key), atomic: () => atomic(kv.atomic()) }
const shared = points.storage(denoKVStorage(watched, { leaseMs: config.leaseMs }))
// Without the lock: the same storage, as an adapter without `lock` would be.
const storage: TokenStorage = config.lock ? shared : { get: (key) => shared.get(key), set: (key, value) => shared.set(key, value), delete: (key) => shared.delete(key) }
const { tokenUrl, clientId, clientSecret, refreshToken, timeoutMs } = config
const client = createRefreshClient({ tokenUrl, clientId, clientSecret, refreshToken, timeoutMs, storage, fetch: points.fetch(fetch), tokenRequest: { headers: { [PID_HEADER]: String(Deno.pid) } } })

async function startTime(): Promise<number> {
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader()
  let text = ''
  while (!text.includes('\n')) {
    const { value, done } = await reader.read()
    if (done) break
    text += value
  }
  await reader.cancel()
  return Number(text.trim())
}

await runHolder(client, config, startTime, print)
kv.close()
