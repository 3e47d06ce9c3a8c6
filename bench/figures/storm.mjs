import { libraries, grant } from '../libraries.mjs'
import { startBenchServer } from '../server.mjs'
import { interleave, summarize } from '../stats.mjs'

/**
 * Figure 2: `concurrency` authorized requests at once from a fresh client with no token, against
 * a token endpoint that answers after `latencyMs` and rotates the refresh token on every
 * refresh. Raw fetch cannot refresh and takes no part.
 *
 * @param {{ rounds?: number, concurrency?: number, latencyMs?: number }} [options]
 */
export async function measureStorm({ rounds = 5, concurrency = 1000, latencyMs = 50 } = {}) {
  const names = Object.keys(libraries).filter((name) => name !== 'raw')
  const results = await interleave(names, rounds, async (name) => {
    const server = await startBenchServer({ latencyMs })
    const authorizedFetch = await libraries[name]({ ...grant, tokenUrl: server.tokenUrl })
    const start = performance.now()
    const outcomes = await Promise.allSettled(
      Array.from({ length: concurrency }, async () => {
        const response = await authorizedFetch(server.apiUrl)
        await response.arrayBuffer()
        if (response.status !== 200) throw new Error(`API answered HTTP ${response.status}`)
      }),
    )
    const ms = performance.now() - start
    const tokenRequests = server.authorization.tokenRequests.length
    await server.close()
    return { tokenRequests, failed: outcomes.filter(({ status }) => status === 'rejected').length, ms }
  })

  return Object.fromEntries(
    names.map((name) => [
      name,
      {
        tokenRequests: summarize(results[name].map(({ tokenRequests }) => tokenRequests)),
        failed: summarize(results[name].map(({ failed }) => failed)),
        ms: summarize(results[name].map(({ ms }) => ms)),
      },
    ]),
  )
}
