/** Column titles of the contenders, in table order. */
const TITLES = {
  raw: 'raw fetch (floor)',
  'oauth-refresh': 'oauth-refresh',
  badgateway: '@badgateway/oauth2-client',
  oauth4webapi: 'oauth4webapi + user code',
}

const number = (value, digits) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** "median (min–max)", or the one value when all rounds agree. */
function spread(summary, digits = 0, scale = 1) {
  if (!summary) return '—'
  const [median, min, max] = [summary.median, summary.min, summary.max].map((value) => number(value / scale, digits))
  return min === max ? median : `${median} (${min}–${max})`
}

/**
 * Renders the results as markdown for bench/README.md: the figures of every contender side by side,
 * then the size of each entry point. How each is measured is that README's prose.
 *
 * @param {object} results the object `run.mjs` writes to bench/results/latest.json
 * @returns {string}
 */
export function renderMarkdown(results) {
  const { machine, settings, overhead, storm, coldStart, importTime, size, memory, denoKV, redis, isolates } = results
  /** A processes × concurrency race of `what`, with and without the adapter's lock. */
  const race = (what, options, figure) => [
    `| ${what}: ${options.processes} processes × ${options.concurrency} concurrent calls per expiry, ${options.expiries} expiries, rotation with revocation on reuse (${options.rounds} rounds) | token requests per expiry | failed calls of ${number(figure.calls, 0)} | rounds the grant was revoked |`,
    '|---|---:|---:|---:|',
    `| with the adapter's lock | ${spread(figure.withLock.tokenRequestsPerExpiry, 2)} | ${spread(figure.withLock.failed)} | ${figure.withLock.revokedRounds} |`,
    `| without it (the same storage minus \`lock\`) | ${spread(figure.withoutLock.tokenRequestsPerExpiry, 2)} | ${spread(figure.withoutLock.failed)} | ${figure.withoutLock.revokedRounds} |`,
    '',
  ]
  const names = Object.keys(TITLES)
  const row = (label, cell) => `| ${label} | ${names.map(cell).join(' | ')} |`
  const toOauth4webapi = (name) => (name === 'raw' ? '—' : number(coldStart[name].ms.median / coldStart.oauth4webapi.ms.median, 2))
  const lines = [
    `Measured ${results.date.slice(0, 10)} with Node ${machine.node} and Deno ${machine.deno} on ${machine.platform}/${machine.arch}, ${machine.cpus} × ${machine.cpuModel}. Each cell: median (min–max) over rounds.`,
    '',
    `| | ${names.map((name) => TITLES[name]).join(' | ')} |`,
    `|---|${names.map(() => '---:').join('|')}|`,
    row(`µs per request, valid token (${settings.overhead.rounds} rounds × ${settings.overhead.requests})`, (name) => spread(overhead[name].microsPerRequest, 1)),
    row('ratio to raw fetch (same round)', (name) => (name === 'raw' ? '1' : spread(overhead[name].ratioToRaw, 3))),
    row(`storm of ${settings.storm.concurrency}: token requests (${settings.storm.rounds} rounds)`, (name) => spread(storm[name]?.tokenRequests)),
    row(`storm of ${settings.storm.concurrency}: failed requests`, (name) => spread(storm[name]?.failed)),
    row(`storm of ${settings.storm.concurrency}: ms until all done`, (name) => spread(storm[name]?.ms)),
    row(`cold start, ms to first response (${settings.coldStart.rounds} rounds)`, (name) => spread(coldStart[name].ms, 2)),
    row('cold start, median over oauth4webapi\'s', toOauth4webapi),
    row(`\`await import()\`, fresh Node process, ms (${settings.importTime.rounds} rounds)`, (name) => spread(importTime[name].node, 2)),
    row(`\`await import()\`, fresh Deno process, ms (${settings.importTime.rounds} rounds)`, (name) => spread(importTime[name].deno, 2)),
    row('browser program, bytes min+gzip', (name) => number(size.programs[name].gzip, 0)),
    row(`heap growth over ${number(settings.memory.requests, 0)} requests, KB (${settings.memory.rounds} round${settings.memory.rounds > 1 ? 's' : ''})`, (name) =>
      spread(memory[name].heapGrowthBytes, 1, 1024),
    ),
    '',
    '| oauth-refresh entry point, bundled for browsers | bytes min | bytes min+gzip |',
    '|---|---:|---:|',
    ...Object.entries(size.entries).map(([entry, { minified, gzip }]) => `| \`oauth-refresh${entry === 'index' ? '' : `/${entry}`}\` | ${number(minified, 0)} | ${number(gzip, 0)} |`),
    '',
    ...race('Deno KV', settings.denoKV, denoKV),
    ...(redis ? race('Redis (node-redis)', settings.redis, redis) : []),
    `| isolates × concurrency under rotation (${settings.isolates.expiries + 1} expiries, the cold start included) | token requests per expiry | failed requests |`,
    '|---|---:|---:|',
    ...isolates.map(
      (race) =>
        `| ${race.isolates} × ${race.concurrency}, grant in ${race.mode === 'kv' ? 'KV (`cloudflareKVStorage`)' : 'a Durable Object (`RefreshGrantObject`)'} | ${number(race.tokenRequestsPerExpiry, 2)} | ${number(race.failedRequests, 0)} of ${number(race.isolates * race.concurrency * race.expiries, 0)} |`,
    ),
  ]
  return lines.join('\n')
}
