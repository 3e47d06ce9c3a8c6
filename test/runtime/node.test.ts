import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import ts from 'typescript'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { startHarness, type Harness } from './support/harness.js'
import { installPackedPackage, ROOT, type Consumer } from './support/package.js'
import { CREDENTIALS, expectResume, expectStart, SCENARIO, scenarioConfig, type ResumeReport, type StartReport } from './support/scenario.js'

const run = promisify(execFile)
// A script that does not exit (a timer or socket left open by the SDK) fails here.
const EXIT_TIMEOUT_MS = 15_000

let consumer: Consumer
let app: string
const running: Array<LocalServer | Harness> = []

beforeAll(async () => {
  consumer = await installPackedPackage()
  app = await consumer.add('app', 'test/runtime/fixtures/node/run.mjs', 'test/runtime/fixtures/node/esm.mjs', 'test/runtime/fixtures/node/cjs.cjs', SCENARIO, 'examples/node/file-storage.mjs')
})
afterEach(async () => {
  await Promise.all(running.splice(0).map((item) => item.close()))
})
afterAll(() => consumer?.remove())

async function serve() {
  const server = await startLocalServer()
  const harness = await startHarness(server)
  running.push(harness, server)
  return { server, harness }
}

async function node(cwd: string, args: string[], env: Record<string, string> = {}) {
  const { stdout } = await run(process.execPath, args, { cwd, env: { PATH: process.env.PATH, ...env }, timeout: EXIT_TIMEOUT_MS })
  return stdout
}

describe.each([
  { kind: 'ESM import', entry: 'esm.mjs', file: 'dist/index.js' },
  { kind: 'CJS require', entry: 'cjs.cjs', file: 'dist/index.cjs' },
])('Node.js $kind', ({ entry, file }) => {
  it('runs the scenario on the packed package; a new process resumes the rotated grant from a file', async () => {
    const { server, harness } = await serve()
    const config = JSON.stringify(scenarioConfig(server))
    const phase = async (name: string) => {
      const output = JSON.parse(await node(app, [entry, name, config, harness.pageOrigin, join(app, `${entry}.grants.json`)]))
      expect(output.resolved.replace('file://', '')).toBe(join(consumer.packageDir, file))
      return output.report
    }
    const start: StartReport = await phase('start')
    expectStart(start, server)
    const resume: ResumeReport = await phase('resume')
    expectResume(resume, start, server)
  })
})

describe('Node.js types', () => {
  // One consumer source, compiled as a bundler project and as node16 ESM and CommonJS files.
  const source = `
import { createRefreshClient, memoryStorage, OAuthError, type RefreshClient, type StoredTokenSet, type TokenStorage } from 'oauth-refresh'
import { indexedDBStorage } from 'oauth-refresh/indexeddb'
import { cloudflareKVStorage } from 'oauth-refresh/cloudflare-kv'
import { createOFetch } from 'oauth-refresh/ofetch'

const storage: TokenStorage = memoryStorage()
const client: RefreshClient = createRefreshClient({ tokenUrl: 'https://auth.example.com/token', clientId: 'id', refreshToken: 'rt', storage })
export const token: Promise<string> = client.getAccessToken({ forceRefresh: true })
export const response: Promise<Response> = client.fetch('https://api.example.com/me', { method: 'POST' })
export const stored: Promise<StoredTokenSet | undefined> = storage.get('key')
export const kv: TokenStorage = cloudflareKVStorage({ get: async () => null, put: async () => {}, delete: async () => {} }, { prefix: 'p:' })
export const idb: TokenStorage = indexedDBStorage({ dbName: 'db', storeName: 'grants' })
export const api = createOFetch(client, { baseURL: 'https://api.example.com' })
export const isDeadGrant = (error: unknown): boolean => error instanceof OAuthError && error.error === 'invalid_grant'
// @ts-expect-error tokenUrl is required: this line errs only if the types really resolved
createRefreshClient({ clientId: 'id' })
`

  function typecheck(files: string[], options: ts.CompilerOptions) {
    const program = ts.createProgram(files, {
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      target: ts.ScriptTarget.ES2022,
      typeRoots: [join(ROOT, 'node_modules/@types')],
      ...options,
    })
    // Errors in the consumer or in our declarations; other packages' declarations are theirs.
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => !d.file || d.file.fileName.startsWith(consumer.dir))
      .map((d) => `${d.file?.fileName.slice(consumer.dir.length + 1)}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`)
    const loaded = program.getSourceFiles().map((f) => f.fileName.slice(consumer.packageDir.length + 1))
    return { diagnostics, loaded }
  }

  async function write(path: string) {
    const file = join(consumer.dir, path)
    await mkdir(join(file, '..'), { recursive: true })
    await writeFile(file, source)
    return file
  }

  // A bound, not a timing assertion: creating a TypeScript program took 19-23 s on 2 busy cores.
  it('resolve with moduleResolution bundler (DOM lib)', { timeout: 60_000 }, async () => {
    const file = await write('types-bundler/consumer.ts')
    const { diagnostics, loaded } = typecheck([file], {
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
      types: [],
    })
    expect(diagnostics).toEqual([])
    expect(loaded).toContain('dist/types/index.d.ts')
    expect(loaded).toContain('dist/types/storage/cloudflare-kv.d.ts')
  })

  it('resolve with node16, from ESM and from CommonJS (Node globals, no DOM lib)', { timeout: 60_000 }, async () => {
    const files = [await write('types-node16/consumer.mts'), await write('types-node16/consumer.cts')]
    const { diagnostics, loaded } = typecheck(files, {
      module: ts.ModuleKind.Node16,
      moduleResolution: ts.ModuleResolutionKind.Node16,
      lib: ['lib.es2022.d.ts'],
      types: ['node'],
    })
    expect(diagnostics).toEqual([])
    expect(loaded).toContain('dist/types/index.d.ts')
    expect(loaded).toContain('dist/types/index.d.cts')
    expect(loaded).toContain('dist/types/storage/indexeddb.d.cts')
  })
})

/** The environment examples/node reads, for the demo client of `server`. */
const exampleEnv = (server: LocalServer) => ({
  OAUTH_TOKEN_URL: server.tokenUrl,
  OAUTH_CLIENT_ID: CREDENTIALS.clientId,
  OAUTH_CLIENT_SECRET: CREDENTIALS.clientSecret,
  OAUTH_REFRESH_TOKEN: CREDENTIALS.refreshToken,
  API_URL: `${server.apiUrl}/me`,
})

describe('examples/node', () => {
  it('calls the API, keeps the grant in a 0600 file, and the next run resumes it', async () => {
    const { server } = await serve()
    const dir = await consumer.add('examples', 'examples/node')
    const cwd = join(dir, 'node')
    const env = exampleEnv(server)
    expect(await node(cwd, ['main.mjs'], env)).toMatch(/^200 OK\n.*"ok":true/)
    const file = join(cwd, '.oauth-refresh.json')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    const [grant] = Object.values(JSON.parse(await readFile(file, 'utf8'))) as Array<{ refreshToken: string }>
    expect(grant.refreshToken).toBe(server.validRefreshToken)

    server.revokeAccessTokens()
    expect(await node(cwd, ['main.mjs'], env)).toMatch(/^200 OK\n/)
    expect(server.tokenRequests.map((entry) => entry.form.refresh_token)).toEqual([CREDENTIALS.refreshToken, grant.refreshToken])
  })

  it("runs from a copy of the checkout with its README's steps: npm install links oauth-refresh to the checkout", async () => {
    const { server } = await serve()
    const checkout = await mkdtemp(join(tmpdir(), 'oauth-refresh-checkout-'))
    try {
      // The files a clone has (tracked, or new and not ignored), and dist/ as `npm run build` makes it.
      const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT })
      for (const file of [...stdout.split('\0').filter(Boolean), 'dist']) {
        if (existsSync(join(ROOT, file))) await cp(join(ROOT, file), join(checkout, file), { recursive: true })
      }
      const cwd = join(checkout, 'examples/node')
      const manifest = await readFile(join(cwd, 'package.json'), 'utf8')
      await run('npm', ['install', '--offline', '--no-audit', '--no-fund'], { cwd })
      expect(await realpath(join(cwd, 'node_modules/oauth-refresh'))).toBe(await realpath(checkout))
      const env = exampleEnv(server)
      expect(await node(cwd, ['main.mjs'], env)).toMatch(/^200 OK\n/)
      // No tracked file edited: the manifest as it was, and no lockfile written.
      expect(await readFile(join(cwd, 'package.json'), 'utf8')).toBe(manifest)
      expect(existsSync(join(cwd, 'package-lock.json'))).toBe(false)
    } finally {
      await rm(checkout, { recursive: true, force: true })
    }
  })
})
