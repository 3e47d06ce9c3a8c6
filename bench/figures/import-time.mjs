import { execFile, execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { interleave, summarize } from '../stats.mjs'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../..', import.meta.url))
const DENO = join(root, 'node_modules/.bin/deno')

/** The Deno the figure runs, e.g. '2.9.6'. */
export const denoVersion = () => /deno (\S+)/.exec(execFileSync(DENO, ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown'

/** The module each contender's users import; `raw` imports an empty module: the loader's own cost. */
const modules = {
  raw: null,
  'oauth-refresh': 'oauth-refresh',
  badgateway: '@badgateway/oauth2-client',
  oauth4webapi: 'oauth4webapi',
}

/** Prints the ms an `await import(url)` takes, timed inside the fresh process. */
const script = (url) => `const start = performance.now()
await import(${JSON.stringify(url)})
console.log(performance.now() - start)`

/** Each runtime as a command line that runs `code` as an ES module, from the repository root. */
const runtimes = {
  node: (code) => [process.execPath, ['--input-type=module', '-e', code]],
  // node_modules as npm laid it out, as a Deno project with a package.json uses it.
  deno: (code) => [DENO, ['eval', '--node-modules-dir=manual', code]],
}

/**
 * Figure: ms of `await import(…)` of each library's ES module entry in a fresh Node and a fresh
 * Deno process, the process already started (its boot is not counted). Each sample is a new
 * process; contenders take turns. Deno keeps compiled code in its cache directory, as it does
 * for a script run again: one unmeasured import per library fills it first.
 *
 * @param {{ rounds?: number }} [options]
 */
export async function measureImportTime({ rounds = 20 } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'oauth-refresh-import-'))
  try {
    const empty = join(dir, 'empty.mjs')
    await writeFile(empty, 'export {}\n')
    const urls = Object.fromEntries(
      Object.entries(modules).map(([name, specifier]) => [name, specifier ? import.meta.resolve(specifier) : pathToFileURL(empty).href]),
    )
    const env = { PATH: process.env.PATH, NO_COLOR: '1', DENO_DIR: join(dir, 'deno'), DENO_NO_UPDATE_CHECK: '1' }
    const sample = async (runtime, name) => {
      const [command, args] = runtimes[runtime](script(urls[name]))
      const { stdout } = await run(command, args, { cwd: root, env, timeout: 30_000 })
      const ms = Number(stdout.trim())
      if (!Number.isFinite(ms)) throw new Error(`${runtime} ${name}: printed ${JSON.stringify(stdout)}`)
      return ms
    }
    const names = Object.keys(modules)
    const result = Object.fromEntries(names.map((name) => [name, {}]))
    for (const runtime of Object.keys(runtimes)) {
      for (const name of names) await sample(runtime, name)
      const ms = await interleave(names, rounds, (name) => sample(runtime, name))
      for (const name of names) result[name][runtime] = summarize(ms[name])
    }
    return result
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
