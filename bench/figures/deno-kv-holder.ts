// One Deno process holding the grant in a Deno KV file shared with others: bench/figures/deno-kv.mjs
// starts several. Prints {"ready":true} once its client exists, reads a start time (epoch ms) from
// stdin, then, in mode "rounds", fires `concurrency` authorized calls at start + r × periodMs for
// each round r and prints their outcome; in mode "token", gets one access token and prints it.
import { createRefreshClient, type TokenStorage } from 'oauth-refresh'
import { denoKVStorage } from 'oauth-refresh/deno-kv'

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
}

const config: Config = JSON.parse(Deno.args[0]!)
const print = (message: object) => console.log(JSON.stringify(message))
const codeOf = (error: unknown) => (error as { code?: string }).code ?? (error as Error).name ?? String(error)

const kv = await Deno.openKv(config.kvPath)
const shared = denoKVStorage(kv, { leaseMs: config.leaseMs })
// Without the lock: the same storage, as an adapter without `lock` would be.
const storage: TokenStorage = config.lock ? shared : { get: (key) => shared.get(key), set: (key, value) => shared.set(key, value), delete: (key) => shared.delete(key) }
const { tokenUrl, clientId, clientSecret, refreshToken } = config
const client = createRefreshClient({ tokenUrl, clientId, clientSecret, refreshToken, storage })

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

async function call(): Promise<string | undefined> {
  try {
    const response = await client.fetch(config.apiUrl)
    await response.body?.cancel()
    return response.ok ? undefined : `HTTP ${response.status}`
  } catch (error) {
    return codeOf(error)
  }
}

print({ ready: true })
const start = await startTime()
const sleepUntil = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())))

if (config.mode === 'token') {
  await sleepUntil(start)
  try {
    print({ token: await client.getAccessToken(), at: Date.now() })
  } catch (error) {
    print({ error: codeOf(error), at: Date.now() })
  }
} else {
  const errors: Record<string, number> = {}
  let ok = 0
  for (let round = 0; round < config.rounds; round++) {
    await sleepUntil(start + round * config.periodMs)
    for (const error of await Promise.all(Array.from({ length: config.concurrency }, call))) {
      if (error === undefined) ok++
      else errors[error] = (errors[error] ?? 0) + 1
    }
  }
  print({ ok, errors })
}
kv.close()
