// `npm run bench`: every figure in one process, the contenders interleaved.
// Prints markdown to stdout, progress to stderr, and writes bench/results/latest.json.
import { spawnSync } from 'node:child_process'
import { writeFile, mkdir } from 'node:fs/promises'
import os from 'node:os'
import { measureOverhead } from './figures/overhead.mjs'
import { measureStorm } from './figures/storm.mjs'
import { measureColdStart } from './figures/cold-start.mjs'
import { denoVersion, measureImportTime } from './figures/import-time.mjs'
import { measureMemory } from './figures/memory.mjs'
import { measureIsolates } from './figures/isolates.mjs'
import { measureDenoKVRace } from './figures/deno-kv.mjs'
import { measureRedisRace, startRedisServer } from './figures/redis.mjs'
import { measureSizes } from './size.mjs'
import { renderMarkdown } from './report.mjs'

// The memory figure needs explicit GCs: run again with them exposed rather than fail late.
if (typeof globalThis.gc !== 'function') {
  const { status } = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' })
  process.exit(status ?? 1)
}

const settings = {
  overhead: { rounds: 9, requests: 2000, warmup: 1000 },
  storm: { rounds: 5, concurrency: 1000, latencyMs: 50 },
  coldStart: { rounds: 15 },
  importTime: { rounds: 25 },
  memory: { rounds: 2, requests: 100_000, warmup: 10_000 },
  isolates: { settings: [{ isolates: 3, concurrency: 100 }], expiries: 3, expiresIn: 2 },
  denoKV: { rounds: 2, processes: 3, concurrency: 50, expiries: 4 },
  redis: { rounds: 2, processes: 4, concurrency: 50, expiries: 4 },
}

/** The Redis figure, on a redis-server of its own; none where redis-server is missing. */
async function redisRace() {
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) return undefined
  const server = await startRedisServer()
  try {
    return await measureRedisRace({ redisUrl: server.url, ...settings.redis })
  } finally {
    await server.stop()
  }
}

async function step(label, measure) {
  const start = performance.now()
  process.stderr.write(`${label}… `)
  const result = await measure()
  process.stderr.write(`${((performance.now() - start) / 1000).toFixed(1)} s\n`)
  return result
}

const results = {
  date: new Date().toISOString(),
  machine: {
    node: process.version,
    deno: denoVersion(),
    platform: process.platform,
    arch: process.arch,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
  },
  settings,
  overhead: await step('per-request overhead', () => measureOverhead(settings.overhead)),
  storm: await step('refresh storm', () => measureStorm(settings.storm)),
  coldStart: await step('cold start', () => measureColdStart(settings.coldStart)),
  importTime: await step('import time', () => measureImportTime(settings.importTime)),
  memory: await step('memory', () => measureMemory(settings.memory)),
  denoKV: await step('Deno KV processes × concurrency', () => measureDenoKVRace(settings.denoKV)),
  redis: await step('Redis processes × concurrency', redisRace),
  size: await step('bundle sizes', () => measureSizes()),
  isolates: await step('isolates × concurrency under rotation', () => measureIsolates(settings.isolates)),
}

const directory = new URL('./results/', import.meta.url)
await mkdir(directory, { recursive: true })
await writeFile(new URL('latest.json', directory), `${JSON.stringify(results, null, 2)}\n`)
console.log(renderMarkdown(results))
