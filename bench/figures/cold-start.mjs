import { libraries, grant } from '../libraries.mjs'
import { startBenchServer } from '../server.mjs'
import { interleave, summarize } from '../stats.mjs'

/**
 * Figure 3: ms from creating a client to its first authorized response (body read), each round
 * against a fresh server: one token request, one request to the local server's own API.
 *
 * @param {{ rounds?: number }} [options]
 */
export async function measureColdStart({ rounds = 15 } = {}) {
  const names = Object.keys(libraries)
  const ms = await interleave(names, rounds, async (name) => {
    const server = await startBenchServer()
    const start = performance.now()
    const authorizedFetch = await libraries[name]({ ...grant, tokenUrl: server.tokenUrl })
    const response = await authorizedFetch(server.authorization.apiUrl)
    await response.arrayBuffer()
    const elapsed = performance.now() - start
    await server.close()
    if (response.status !== 200) throw new Error(`${name}: API answered HTTP ${response.status}`)
    return elapsed
  })
  return Object.fromEntries(names.map((name) => [name, { ms: summarize(ms[name]) }]))
}
