import { execFile, execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { publint } from 'publint'
import { parseAst } from 'rollup/parseAst'
import { measureBundle } from '../bench/size.mjs'
import { serve } from './support/loopback.js'

const root = new URL('../', import.meta.url)
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'))
const node = (code: string, type: 'module' | 'commonjs') =>
  execFileSync(process.execPath, [type === 'module' ? '--input-type=module' : '--input-type=commonjs', '-e', code], { encoding: 'utf8' })

describe('the built package', () => {
  it('every exports entry exists as ESM, CJS and types', () => {
    for (const [entry, target] of Object.entries(pkg.exports as Record<string, { import: Record<string, string>; require: Record<string, string> }>)) {
      if (entry === './package.json') continue
      for (const file of [target.import.types, target.import.default, target.require.types, target.require.default]) {
        expect(() => readFileSync(new URL(`../${file}`, import.meta.url)), file).not.toThrow()
      }
    }
  })

  it('passes publint in strict mode', async () => {
    const { messages } = await publint({ pkgDir: fileURLToPath(new URL('..', import.meta.url)), strict: true })
    expect(messages.map((message) => `${message.type} ${message.code} ${message.path.join('.')}`)).toEqual([])
  })

  it('is importable by name through its exports, as ESM and as CJS, with the same public API', () => {
    const names = 'Object.keys(m).sort().join(",")'
    const esm = node(`const m = await import('oauth-refresh'); console.log(${names})`, 'module')
    const cjs = node(`const m = require('oauth-refresh'); console.log(${names})`, 'commonjs')
    expect(esm).toBe(cjs)
    expect(esm.trim().split(',')).toEqual(['ConfigError', 'NoGrantError', 'OAuthError', 'OAuthRefreshError', 'StorageError', 'TokenRequestError', 'TokenResponseError', 'createRefreshClient', 'memoryStorage'])
    expect(node(`const m = require('oauth-refresh/cloudflare-kv'); console.log(typeof m.cloudflareKVStorage)`, 'commonjs').trim()).toBe('function')
    expect(node(`const m = await import('oauth-refresh/ofetch'); console.log(typeof m.createOFetch)`, 'module').trim()).toBe('function')
    expect(node(`const m = require('oauth-refresh/deno-kv'); console.log(typeof m.denoKVStorage)`, 'commonjs').trim()).toBe('function')
    expect(node(`const m = require('oauth-refresh/redis'); console.log(typeof m.redisStorage)`, 'commonjs').trim()).toBe('function')
    expect(node(`const m = await import('oauth-refresh/dpop'); console.log(typeof m.createDPoP)`, 'module').trim()).toBe('function')
    expect(node(`const m = require('oauth-refresh/private-key-jwt'); console.log(typeof m.privateKeyJwt)`, 'commonjs').trim()).toBe('function')
  })

  it('has no side effects on import and declares so', () => {
    expect(pkg.sideEffects).toBe(false)
    expect(node(`const before = Object.keys(globalThis).length; await import('oauth-refresh'); await import('oauth-refresh/indexeddb'); console.log(Object.keys(globalThis).length - before)`, 'module').trim()).toBe('0')
  })

  it('the built files import only each other and the optional peers: valibot is built in, with its license', () => {
    const files = execFileSync('find', ['dist', '-name', '*.js', '-o', '-name', '*.cjs'], { cwd: root, encoding: 'utf8' }).trim().split('\n')
    const specifiers = files.flatMap((file) => {
      const code = readFileSync(new URL(file, root), 'utf8')
      if (file.endsWith('.cjs')) return [...code.matchAll(/\brequire\('([^']+)'\)/g)].map((match) => match[1]!)
      return parseAst(code).body.flatMap((node) => ('source' in node && node.source ? [String(node.source.value)] : []))
    })
    expect(specifiers.filter((specifier) => specifier.startsWith('./chunks/')).length, 'the files were read').toBeGreaterThan(2)
    expect([...new Set(specifiers.filter((specifier) => !specifier.startsWith('.')))].sort()).toEqual(['cloudflare:workers', 'idb-keyval', 'ofetch'])
    expect(pkg.dependencies).toBeUndefined()
    // The core's code, valibot's with it, lives in a chunk that the core and durable-object entries share.
    const withValibot = files.filter((file) => readFileSync(new URL(file, root), 'utf8').includes('vendor: "valibot"'))
    expect(withValibot.map((file) => file.replace(/.*\./, '')).sort(), 'one ESM and one CJS file hold valibot').toEqual(['cjs', 'js'])
    for (const file of withValibot) {
      const code = readFileSync(new URL(file, root), 'utf8')
      expect(code).toMatch(/^\/\*! valibot \d+\.\d+\.\d+ \| MIT License \| Copyright \(c\) Fabian Hiller \*\/\n/)
      expect(code).toContain('The above copyright notice and this permission notice shall be included in all copies or substantial portions of the Software.')
    }
  })

  it('the core entry holds valibot and nothing of the adapters or ofetch', async () => {
    const { modules, code } = await measureBundle('dist/index.js')
    expect(code).toContain('/*! valibot ')
    expect(code).toContain('"valibot"')
    expect(modules.filter((file) => /idb-keyval|ofetch|indexeddb|cloudflare-kv|deno-kv|redis|lease/.test(file))).toEqual([])
  })

  it('the core entry holds no DPoP or private_key_jwt code, and no Web Crypto', async () => {
    const { modules, code } = await measureBundle('dist/index.js')
    expect(modules.filter((file) => /dpop|jws|private-key-jwt/.test(file))).toEqual([])
    expect(code).not.toMatch(/crypto|dpop\+jwt|client-assertion-type/)
  })

  it('oauth-refresh/dpop and oauth-refresh/private-key-jwt pull in no client, valibot, adapter or each other', async () => {
    for (const [entry, other] of [['dpop', 'private-key-jwt'], ['private-key-jwt', 'dpop']]) {
      const { modules, code } = await measureBundle(`dist/${entry}.js`)
      expect(modules.some((file) => file.endsWith(`/${entry}.js`))).toBe(true)
      expect(modules.filter((file) => new RegExp(`idb-keyval|indexeddb|cloudflare-kv|deno-kv|redis|ofetch|index-|${other}`).test(file))).toEqual([])
      expect(code).not.toMatch(/valibot|createRefreshClient|refresh_token/)
    }
  })

  it('oauth-refresh/cloudflare-kv pulls in no idb-keyval code, and indexeddb no KV code', async () => {
    const kv = await measureBundle('dist/cloudflare-kv.js')
    expect(kv.modules.filter((file) => /idb-keyval|indexeddb|ofetch/.test(file))).toEqual([])
    expect(kv.code).not.toMatch(/indexedDB|IDBKeyRange|valibot/)
    const idb = await measureBundle('dist/indexeddb.js')
    expect(idb.modules.some((file) => file.includes('idb-keyval'))).toBe(true)
    expect(idb.modules.filter((file) => /cloudflare-kv|ofetch/.test(file))).toEqual([])
    expect(idb.code).not.toMatch(/valibot/)
  })

  it('oauth-refresh/deno-kv pulls in no other adapter, idb-keyval, valibot or ofetch', async () => {
    const { modules, code } = await measureBundle('dist/deno-kv.js')
    expect(modules.some((file) => file.includes('deno-kv'))).toBe(true)
    expect(modules.filter((file) => /idb-keyval|indexeddb|cloudflare-kv|webextension|ofetch/.test(file))).toEqual([])
    expect(code).not.toMatch(/indexedDB|IDBKeyRange|valibot/)
  })

  it('oauth-refresh/redis pulls in no other adapter, no Redis client, idb-keyval, valibot or ofetch', async () => {
    const { modules, code } = await measureBundle('dist/redis.js')
    expect(modules.some((file) => file.includes('redis'))).toBe(true)
    expect(modules.filter((file) => /idb-keyval|indexeddb|cloudflare-kv|deno-kv|webextension|ofetch|client|ioredis|@redis/.test(file))).toEqual([])
    expect(code).not.toMatch(/indexedDB|IDBKeyRange|valibot|Deno KV/)
  })

  it('oauth-refresh/webextension pulls in no other adapter, idb-keyval, valibot or ofetch code', async () => {
    const { modules, code } = await measureBundle('dist/webextension.js')
    expect(modules.filter((file) => /idb-keyval|indexeddb|cloudflare-kv|deno-kv|ofetch|client/.test(file))).toEqual([])
    expect(code).not.toMatch(/indexedDB|IDBKeyRange|valibot/)
  })

  it('oauth-refresh/durable-object pulls in no IndexedDB, KV or DPoP code (a subclass brings createDPoP), and leaves cloudflare:workers to the runtime', async () => {
    const { modules, code } = await measureBundle('dist/durable-object.js')
    expect(modules.filter((file) => /idb-keyval|indexeddb|cloudflare-kv|ofetch|dpop|jws|private-key-jwt/.test(file))).toEqual([])
    expect(code).not.toMatch(/indexedDB|IDBKeyRange|expirationTtl|dpop\+jwt|crypto\.subtle/)
    expect(code).toMatch(/from"cloudflare:workers"/)
  })

  // The core's browser bundle as last measured: it must not grow unnoticed.
  it('the core entry stays within its 9,886 B min+gzip budget for browsers', async () => {
    const { gzip } = await measureBundle('dist/index.js')
    expect(gzip).toBeLessThanOrEqual(9_886)
  })

  it('leaves nothing running: a script that refreshes and calls the API ends by itself', async () => {
    const server = await serve()
    const script = `import { createRefreshClient } from 'oauth-refresh'
const client = createRefreshClient({ tokenUrl: '${server.tokenUrl}', clientId: 'demo-client', clientSecret: 'demo-secret', refreshToken: 'demo-refresh-token' })
const response = await client.fetch('${server.apiUrl}')
console.log(response.status)`
    // The kill timeout only keeps a regression from hanging the suite; no timing is asserted.
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 15_000, killSignal: 'SIGKILL' })
    expect(stdout.trim()).toBe('200')
  })
})
