import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { startHarness, type Harness } from './support/harness.js'
import { installPackedPackage, ROOT, type Consumer } from './support/package.js'
import { CREDENTIALS, expectResume, expectStart, SCENARIO, scenarioConfig } from './support/scenario.js'

const run = promisify(execFile)
const DENO = join(ROOT, 'node_modules/.bin/deno')

let consumer: Consumer
const running: Array<LocalServer | Harness> = []

beforeAll(async () => {
  consumer = await installPackedPackage()
})
afterEach(async () => {
  await Promise.all(running.splice(0).map((item) => item.close()))
})
afterAll(() => consumer?.remove())

async function deno(cwd: string, args: string[], env: Record<string, string> = {}) {
  // Deno's own directory (caches, localStorage) in the throwaway project.
  const base = { PATH: process.env.PATH, NO_COLOR: '1', DENO_DIR: join(consumer.dir, '.deno'), DENO_NO_UPDATE_CHECK: '1' }
  const { stdout } = await run(DENO, args, { cwd, env: { ...base, ...env }, timeout: 15_000 })
  return stdout
}

/** Deno KV (still unstable in Deno 2.9) on a file in `dir`. */
const kvFlags = (dir: string) => ['--unstable-kv', `--allow-read=${dir}`, `--allow-write=${dir}`]

describe('Deno', () => {
  it('runs the scenario on plain ESM (no npm resolution, no Node built-ins); a new process resumes from Deno KV', async () => {
    const server = await startLocalServer()
    const harness = await startHarness(server)
    running.push(harness, server)
    const app = await consumer.add('deno', 'test/runtime/fixtures/deno/run.ts', SCENARIO)
    const importMap = join(app, 'import-map.json')
    const imports = { 'oauth-refresh': await consumer.entry(), 'oauth-refresh/deno-kv': await consumer.entry('./deno-kv') }
    await writeFile(importMap, JSON.stringify({ imports }))
    const flags = ['--no-npm', `--import-map=${importMap}`]

    const { modules } = JSON.parse(await deno(app, ['info', '--json', ...flags, 'run.ts'])) as { modules: Array<{ kind: string; specifier: string }> }
    expect(modules.map((module) => module.specifier)).toEqual(expect.arrayContaining(Object.values(imports)))
    expect(modules.filter((module) => module.kind !== 'esm'), 'only ES modules, no node: built-ins').toEqual([])

    const phase = async (name: string) =>
      JSON.parse(await deno(app, ['run', ...flags, ...kvFlags(app), '--allow-net=127.0.0.1', 'run.ts', name, JSON.stringify(scenarioConfig(server)), harness.pageOrigin, join(app, 'kv.sqlite3')]))
    const start = await phase('start')
    expectStart(start, server)
    expectResume(await phase('resume'), start, server)
  })
})

describe('examples/deno', () => {
  const env = (server: LocalServer, refreshToken?: string) => ({
    OAUTH_TOKEN_URL: server.tokenUrl,
    OAUTH_CLIENT_ID: CREDENTIALS.clientId,
    OAUTH_CLIENT_SECRET: CREDENTIALS.clientSecret,
    ...(refreshToken && { OAUTH_REFRESH_TOKEN: refreshToken }),
    API_URL: `${server.apiUrl}/me`,
  })
  const permissions = ['--allow-net=127.0.0.1', '--allow-env=OAUTH_TOKEN_URL,OAUTH_CLIENT_ID,OAUTH_CLIENT_SECRET,OAUTH_REFRESH_TOKEN,OAUTH_SCOPE,API_URL']

  it('type-checks and runs as shipped (deno.json maps the npm package); run again and again, cron-style, each run resumes the rotated grant from Deno KV', async () => {
    const server = await startLocalServer({ revokeOnReuse: true })
    running.push(server)
    const cwd = join(await consumer.add('examples', 'examples/deno'), 'deno')
    // Resolve npm: specifiers from the project's node_modules, where the packed package is.
    const flags = ['--node-modules-dir=manual']
    await deno(cwd, ['check', ...flags, 'main.ts', 'server.ts', 'keep-alive.ts'])

    const args = ['run', ...flags, ...permissions, 'main.ts']
    expect(await deno(cwd, args, env(server, CREDENTIALS.refreshToken))).toMatch(/^200 OK\n.*"ok":true/)
    const sent = [CREDENTIALS.refreshToken]
    for (let run = 0; run < 3; run++) {
      sent.push(server.validRefreshToken)
      server.revokeAccessTokens()
      expect(await deno(cwd, args, env(server)), `run ${run + 2}, no refresh token configured: resumed`).toMatch(/^200 OK\n/)
    }
    expect(server.tokenRequests.map((entry) => entry.form.refresh_token)).toEqual(sent)
    expect(server.grantRevoked).toBe(false)
  })

  it("runs the README's local way: import_map.local.json on the repository's dist/", async () => {
    const server = await startLocalServer()
    running.push(server)
    const args = ['run', '--import-map=import_map.local.json', ...permissions, 'main.ts']
    expect(await deno(join(ROOT, 'examples/deno'), args, env(server, CREDENTIALS.refreshToken))).toMatch(/^200 OK\n.*"ok":true/)
  })
})
