import { libraries, grant, sequentialRequests } from '../libraries.mjs'
import { startBenchServer } from '../server.mjs'
import { interleave, summarize } from '../stats.mjs'

// Full GCs with turns of the event loop between them, so that finalizers and closed sockets'
// cleanup run and what they release is collected too.
async function settledHeapUsed() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}

/**
 * Figure 5: heap growth (bytes, after full GCs) over `requests` sequential authorized requests
 * by a client that already holds a valid token. Needs `node --expose-gc`.
 *
 * @param {{ rounds?: number, requests?: number, warmup?: number }} [options]
 */
export async function measureMemory({ rounds = 1, requests = 100_000, warmup = 10_000 } = {}) {
  if (typeof globalThis.gc !== 'function') throw new Error('the memory figure needs node --expose-gc')
  const names = Object.keys(libraries)
  const growth = await interleave(names, rounds, async (name) => {
    const server = await startBenchServer()
    const authorizedFetch = await libraries[name]({ ...grant, tokenUrl: server.tokenUrl })
    await sequentialRequests(authorizedFetch, server.apiUrl, warmup)
    const before = await settledHeapUsed()
    await sequentialRequests(authorizedFetch, server.apiUrl, requests)
    const after = await settledHeapUsed()
    await server.close()
    return after - before
  })
  return Object.fromEntries(names.map((name) => [name, { heapGrowthBytes: summarize(growth[name]) }]))
}
