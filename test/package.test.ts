import { execFile, execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { publint } from 'publint'
import { measureBundle } from '../bench/size.mjs'
import { serve } from './support/loopback.js'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
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
    expect(esm.trim().split(',')).toEqual(['ConfigError', 'OAuthError', 'OAuthRefreshError', 'StorageError', 'TokenRequestError', 'TokenResponseError', 'createRefreshClient', 'memoryStorage'])
    expect(node(`const m = require('oauth-refresh/cloudflare-kv'); console.log(typeof m.cloudflareKVStorage)`, 'commonjs').trim()).toBe('function')
    expect(node(`const m = await import('oauth-refresh/ofetch'); console.log(typeof m.createOFetch)`, 'module').trim()).toBe('function')
  })

  it('has no side effects on import and declares so', () => {
    expect(pkg.sideEffects).toBe(false)
    expect(node(`const before = Object.keys(globalThis).length; await import('oauth-refresh'); await import('oauth-refresh/indexeddb'); console.log(Object.keys(globalThis).length - before)`, 'module').trim()).toBe('0')
  })

  it('the core entry bundles valibot and nothing of the adapters or ofetch', async () => {
    const { modules } = await measureBundle('dist/index.js')
    expect(modules.some((file) => file.includes('valibot'))).toBe(true)
    expect(modules.filter((file) => /idb-keyval|ofetch|indexeddb|cloudflare-kv/.test(file))).toEqual([])
  })

  it('oauth-refresh/cloudflare-kv pulls in no idb-keyval code, and indexeddb no KV code', async () => {
    const kv = await measureBundle('dist/cloudflare-kv.js')
    expect(kv.modules.filter((file) => /idb-keyval|indexeddb|valibot|ofetch/.test(file))).toEqual([])
    expect(kv.code).not.toMatch(/indexedDB|IDBKeyRange/)
    const idb = await measureBundle('dist/indexeddb.js')
    expect(idb.modules.some((file) => file.includes('idb-keyval'))).toBe(true)
    expect(idb.modules.filter((file) => /cloudflare-kv|valibot|ofetch/.test(file))).toEqual([])
  })

  it('oauth-refresh/durable-object pulls in no IndexedDB or KV code, and leaves cloudflare:workers to the runtime', async () => {
    const { modules, code } = await measureBundle('dist/durable-object.js')
    expect(modules.filter((file) => /idb-keyval|indexeddb|cloudflare-kv|ofetch/.test(file))).toEqual([])
    expect(code).not.toMatch(/indexedDB|IDBKeyRange|expirationTtl/)
    expect(code).toMatch(/from"cloudflare:workers"/)
  })

  // A regression budget, not the goal: the issue asks for 4.5 KB and the README says how far off we are.
  it('the core entry stays within its 6.5 KB min+gzip budget for browsers', async () => {
    const { gzip } = await measureBundle('dist/index.js')
    expect(gzip).toBeLessThan(6.5 * 1024)
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
