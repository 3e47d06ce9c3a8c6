// What every holder process does (deno-kv-holder.ts, redis-holder.mjs), whatever its runtime and
// storage: the calls it makes, and the points of a refresh where it can be told to stop.

/**
 * Where a holder can stop during a refresh (issue 20): after reading the grant under the lease,
 * just before its token request leaves, while the server holds its answer (the server stops it),
 * with the answer read before writing it, inside the write before the commit, after the commit
 * before releasing the lease.
 */
export const PAUSE_POINTS = /** @type {const} */ (['read', 'send', 'server', 'answer', 'commit', 'release'])

/** The header that tells the local server which process sent a token request (the "server" point). */
export const PID_HEADER = 'x-holder-pid'

/**
 * Hooks that call `stop()` the first time the refresh reaches `point` (none: never): `storage`
 * wraps the adapter's lock, its lease and its reads; `fetch` the token requests; `at(name)` is
 * for the adapter's backend ('commit', just before the grant's write is sent).
 *
 * @param {string | undefined} point
 * @param {() => unknown} stop
 */
export function pausePoints(point, stop) {
  let armed = point !== undefined
  const at = async (/** @type {string} */ here) => {
    if (!armed || here !== point) return
    armed = false
    await stop()
  }
  let leased = false
  return {
    at,
    /** @param {import('oauth-refresh').TokenStorage} storage */
    storage: (storage) => ({
      get: async (key) => {
        const value = await storage.get(key)
        if (leased) await at('read')
        return value
      },
      // A lock that hands no lease: the answer is written with a plain set.
      set: async (key, value) => (leased && (await at('answer')), storage.set(key, value)),
      delete: (key) => storage.delete(key),
      lock: (key, task) =>
        storage.lock(key, async (lease) => {
          leased = true
          try {
            const result = await task(lease && { claim: (token, ms) => lease.claim(token, ms), set: async (value) => (await at('answer'), lease.set(value)) })
            await at('release')
            return result
          } finally {
            leased = false
          }
        }),
    }),
    /** @param {typeof fetch} inner */
    fetch: (inner) => async (input, init) => {
      await at('send')
      return inner(input, init)
    },
  }
}

/**
 * Waits for the start time, then in mode "rounds" fires `concurrency` authorized calls at
 * start + r × periodMs for each round r and prints their outcome; in mode "token" gets one access
 * token and prints it.
 *
 * @param {{ fetch(url: string): Promise<Response>, getAccessToken(): Promise<string> }} client
 * @param {{ apiUrl: string, mode: 'rounds' | 'token', rounds: number, periodMs: number, concurrency: number }} config
 * @param {() => Promise<number>} startTime
 * @param {(message: object) => void} print
 */
export async function runHolder(client, config, startTime, print) {
  const codeOf = (error) => error?.code ?? error?.name ?? String(error)
  const call = async () => {
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
  const sleepUntil = (at) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())))
  if (config.mode === 'token') {
    await sleepUntil(start)
    try {
      print({ token: await client.getAccessToken(), at: Date.now() })
    } catch (error) {
      print({ error: codeOf(error), at: Date.now() })
    }
    return
  }
  const errors = {}
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
