/** Column titles of the contenders, in table order. */
const TITLES = {
  raw: 'raw fetch (floor)',
  'oauth-refresh': 'oauth-refresh',
  badgateway: '@badgateway/oauth2-client',
  oauth4webapi: 'oauth4webapi + user code',
}
const COMPETITORS = ['oauth-refresh', 'badgateway', 'oauth4webapi']

const number = (value, digits) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** "median (min–max)", or the one value when all rounds agree. */
function spread(summary, digits = 0, scale = 1) {
  if (!summary) return '—'
  const [median, min, max] = [summary.median, summary.min, summary.max].map((value) => number(value / scale, digits))
  return min === max ? median : `${median} (${min}–${max})`
}

/** "ours B vs smallest other's B (name), ±n%". */
function bundleComparison(programs) {
  const ours = programs['oauth-refresh'].gzip
  const [other, { gzip }] = Object.entries(programs)
    .filter(([name]) => COMPETITORS.includes(name) && name !== 'oauth-refresh')
    .sort(([, a], [, b]) => a.gzip - b.gzip)[0]
  const percent = Math.round(((ours - gzip) / gzip) * 100)
  return `${number(ours, 0)} B vs ${number(gzip, 0)} B for ${TITLES[other]}, ${percent > 0 ? '+' : ''}${percent}%`
}

/**
 * Checks the targets of issue 6 against measured figures.
 *
 * @param {object} results the object `run.mjs` writes to bench/results/latest.json
 * @returns {{ overheadWithin5Percent: boolean, stormOneRefreshNoFailure: boolean, smallestBrowserBundle: boolean }}
 */
export function checkTargets({ overhead, storm, size }) {
  const ours = size.programs['oauth-refresh'].gzip
  return {
    overheadWithin5Percent: overhead['oauth-refresh'].ratioToRaw.median <= 1.05,
    stormOneRefreshNoFailure:
      storm['oauth-refresh'].tokenRequests.min === 1 && storm['oauth-refresh'].tokenRequests.max === 1 && storm['oauth-refresh'].failed.max === 0,
    smallestBrowserBundle: COMPETITORS.every((name) => name === 'oauth-refresh' || size.programs[name].gzip > ours),
  }
}

/**
 * Renders the results as markdown: the comparison, our entry points, the targets and notes.
 *
 * @param {object} results the object `run.mjs` writes to bench/results/latest.json
 * @returns {string}
 */
export function renderMarkdown(results) {
  const { machine, settings, overhead, storm, coldStart, importTime, size, memory, targets } = results
  const names = Object.keys(TITLES)
  const row = (label, cell) => `| ${label} | ${names.map(cell).join(' | ')} |`
  const lines = [
    `Measured ${results.date.slice(0, 10)} with Node ${machine.node} on ${machine.platform}/${machine.arch}, ${machine.cpus} × ${machine.cpuModel}. Each cell: median (min–max) over rounds.`,
    '',
    `| | ${names.map((name) => TITLES[name]).join(' | ')} |`,
    `|---|${names.map(() => '---:').join('|')}|`,
    row(`µs per request, valid token (${settings.overhead.rounds} rounds × ${settings.overhead.requests})`, (name) => spread(overhead[name].microsPerRequest, 1)),
    row('ratio to raw fetch (same round)', (name) => (name === 'raw' ? '1' : spread(overhead[name].ratioToRaw, 3))),
    row(`storm of ${settings.storm.concurrency}: token requests (${settings.storm.rounds} rounds)`, (name) => spread(storm[name]?.tokenRequests)),
    row(`storm of ${settings.storm.concurrency}: failed requests`, (name) => spread(storm[name]?.failed)),
    row(`storm of ${settings.storm.concurrency}: ms until all done`, (name) => spread(storm[name]?.ms)),
    row(`cold start, ms to first response (${settings.coldStart.rounds} rounds)`, (name) => spread(coldStart[name].ms, 2)),
    row(`\`await import()\` in a fresh Node process, ms (${settings.importTime.rounds} rounds)`, (name) => spread(importTime[name].node, 2)),
    row(`\`await import()\` in a fresh Deno process, ms (${settings.importTime.rounds} rounds)`, (name) => spread(importTime[name].deno, 2)),
    row('browser program, bytes min+gzip', (name) => number(size.programs[name].gzip, 0)),
    row(`heap growth over ${number(settings.memory.requests, 0)} requests, KB (${settings.memory.rounds} round${settings.memory.rounds > 1 ? 's' : ''})`, (name) =>
      spread(memory[name].heapGrowthBytes, 1, 1024),
    ),
    '',
    '| oauth-refresh entry point (dependencies bundled) | bytes min | bytes min+gzip |',
    '|---|---:|---:|',
    ...Object.entries(size.entries).map(([entry, { minified, gzip }]) => `| \`dist/${entry}.js\` | ${number(minified, 0)} | ${number(gzip, 0)} |`),
    '',
    'Targets (issue 6):',
    `- per-request overhead within 5% of raw fetch: ${targets.overheadWithin5Percent ? 'met' : 'MISSED'} (median ratio ${number(overhead['oauth-refresh'].ratioToRaw.median, 3)})`,
    `- refresh storm, exactly 1 token request and 0 failures in every round: ${targets.stormOneRefreshNoFailure ? 'met' : 'MISSED'}`,
    `- smallest browser program of the three libraries: ${targets.smallestBrowserBundle ? 'met' : 'MISSED'} (${bundleComparison(size.programs)})`,
    '',
    'Notes:',
    "- Servers: the token endpoint is examples/local-server; the API is a lean one (bench/api.mjs) that checks each new token once with the local server's API, then only looks it up. Both run on 127.0.0.1 in this thread, so the floor includes their work. Cold start calls the local server's own API.",
    "- Per request: sequential GETs over keep-alive, bodies read. Contenders take turns request by request (A, B, C, D, A …, each round starting with the next); a round's figure is the median latency of its requests, and the ratio divides by raw fetch's figure in the same round.",
    `- Storm: ${settings.storm.concurrency} concurrent requests from a fresh client with no access token; the token endpoint answers after ${settings.storm.latencyMs} ms and rotates the refresh token on every refresh. Raw fetch cannot refresh.`,
    '- oauth4webapi offers no single flight: its column runs the obvious user code (cache the token until expiry, keep a rotated refresh token), not a tuned one. See bench/clients/oauth4webapi.mjs.',
    '- @badgateway/oauth2-client: `OAuth2Fetch` seeded with an expired token holding the refresh token; its background refresh timer is off.',
    '- Bundles: rollup + @rollup/plugin-node-resolve (`browser: true`) + @rollup/plugin-terser, gzip level 9. The program is the same for each library: create the client, one authorized request (bench/size.mjs). With `browser: true`, @badgateway/oauth2-client resolves to its prebuilt browser file.',
    "- Import: `await import()` of the package's ES module entry, timed inside a new Node or Deno process after it has started (its boot is not counted), one process per sample, the contenders taking turns. Deno runs with `--node-modules-dir=manual` and keeps compiled code in its cache as it does for a script run again (one unmeasured import per library fills it). The raw fetch column imports an empty module: the loader's own cost.",
    '- Heap: `heapUsed` after full GCs, before and after the requests, by a client that already holds a token. Run to run it moves by up to about ±1 MB (±10 bytes per request) for every contender alike: read smaller figures as no growth.',
  ]
  return lines.join('\n')
}
