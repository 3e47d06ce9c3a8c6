import { libraries, grant, sequentialRequests } from '../libraries.mjs'
import { startBenchServer } from '../server.mjs'
import { summarize } from '../stats.mjs'

/**
 * Figure 1: µs per authorized request with a valid token (sequential, keep-alive) and the ratio
 * to raw fetch. Contenders take turns request by request (A, B, C, D, A, B …), each round
 * starting with the next one, so that a noisy millisecond on a shared machine hits all alike; a
 * round's figure is the median latency of its requests, and the ratio compares the same round.
 *
 * @param {{ rounds?: number, requests?: number, warmup?: number }} [options]
 */
export async function measureOverhead({ rounds = 9, requests = 2000, warmup = 1000 } = {}) {
  const contenders = []
  for (const [name, create] of Object.entries(libraries)) {
    const server = await startBenchServer()
    const authorizedFetch = await create({ ...grant, tokenUrl: server.tokenUrl })
    await sequentialRequests(authorizedFetch, server.apiUrl, warmup)
    contenders.push({ name, server, authorizedFetch, micros: [] })
  }

  for (let round = 0; round < rounds; round++) {
    const latencies = contenders.map(() => new Float64Array(requests))
    for (let i = 0; i < requests; i++) {
      for (let turn = 0; turn < contenders.length; turn++) {
        const index = (turn + round) % contenders.length
        const { server, authorizedFetch } = contenders[index]
        const start = performance.now()
        await sequentialRequests(authorizedFetch, server.apiUrl, 1)
        latencies[index][i] = performance.now() - start
      }
    }
    contenders.forEach((contender, index) => contender.micros.push(summarize(latencies[index]).median * 1000))
  }
  for (const { server } of contenders) await server.close()

  const [raw] = contenders
  return Object.fromEntries(
    contenders.map(({ name, micros }) => [
      name,
      {
        microsPerRequest: summarize(micros),
        ratioToRaw: summarize(micros.map((value, round) => value / raw.micros[round])),
      },
    ]),
  )
}
