import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, StorageError } from '../../src/errors.js'
import { cloudflareKVStorage, type KVNamespaceLike } from '../../src/storage/cloudflare-kv.js'
import { describeClientPersistence, describeStorageContract, fullTokenSet } from './contract.js'

// Miniflare types its bindings with @cloudflare/workers-types, which this project does not install.
type KV = KVNamespaceLike & {
  put(key: string, value: string): Promise<void>
  list(options: { prefix: string }): Promise<{ keys: { name: string; expiration?: number }[] }>
}
const getKV = async (miniflare: Miniflare) => (await miniflare.getKVNamespace('KV')) as unknown as KV

let mf: Miniflare
let kv: KV

beforeAll(async () => {
  mf = new Miniflare({ modules: true, script: 'export default {}', kvNamespaces: ['KV'] })
  kv = await getKV(mf)
})

afterAll(async () => {
  await mf?.dispose()
})

describeStorageContract('cloudflareKVStorage', () => cloudflareKVStorage(kv))
describeClientPersistence('cloudflareKVStorage', () => cloudflareKVStorage(kv))

const rejection = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error)

describe('cloudflareKVStorage', () => {
  it('stores JSON text under the key itself by default (the client key has its own prefix)', async () => {
    await cloudflareKVStorage(kv).set('oauth-refresh:default-prefix', fullTokenSet())
    expect(JSON.parse((await kv.get('oauth-refresh:default-prefix', 'text'))!)).toStrictEqual(fullTokenSet())
  })

  it('puts a custom prefix before every key and keeps prefixes apart', async () => {
    const app = cloudflareKVStorage(kv, { prefix: 'app-a/' })
    const other = cloudflareKVStorage(kv, { prefix: 'app-b/' })
    await app.set('grant', fullTokenSet({ grantId: 'a' }))
    expect(JSON.parse((await kv.get('app-a/grant', 'text'))!)).toStrictEqual(fullTokenSet({ grantId: 'a' }))
    expect(await other.get('grant')).toBeUndefined()
    await other.set('grant', fullTokenSet({ grantId: 'b' }))
    await other.delete('grant')
    expect(await app.get('grant')).toStrictEqual(fullTokenSet({ grantId: 'a' }))
    await cloudflareKVStorage(kv, { prefix: '' }).set('bare-key', fullTokenSet())
    expect(await kv.get('bare-key', 'text')).toBe(JSON.stringify(fullTokenSet()))
  })

  it('writes with expirationTtl when given, and without an expiration otherwise', async () => {
    const before = Math.floor(Date.now() / 1000)
    await cloudflareKVStorage(kv, { prefix: 'ttl/', expirationTtl: 3600 }).set('k', fullTokenSet())
    const after = Math.ceil(Date.now() / 1000)
    await cloudflareKVStorage(kv, { prefix: 'no-ttl/' }).set('k', fullTokenSet())
    const [withTtl] = (await kv.list({ prefix: 'ttl/' })).keys
    expect(withTtl!.expiration).toBeGreaterThanOrEqual(before + 3600)
    expect(withTtl!.expiration).toBeLessThanOrEqual(after + 3600)
    const [withoutTtl] = (await kv.list({ prefix: 'no-ttl/' })).keys
    expect(withoutTtl!.expiration).toBeUndefined()
  })

  it('throws a ConfigError for a value that is not a KV binding', () => {
    for (const namespace of [undefined, null, {}, 'KV', { get() {}, put() {} }, { get: 1, put() {}, delete() {} }]) {
      expect(() => cloudflareKVStorage(namespace as unknown as KVNamespaceLike)).toThrow(ConfigError)
    }
  })

  it('throws a ConfigError for an expirationTtl that is not an integer of at least 60', () => {
    for (const expirationTtl of [59, 0, -60, 60.5, Number.NaN, Number.POSITIVE_INFINITY, '120']) {
      expect(() => cloudflareKVStorage(kv, { expirationTtl: expirationTtl as number })).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID', message: '"expirationTtl" must be an integer of at least 60 seconds' }),
      )
    }
    expect(() => cloudflareKVStorage(kv, { expirationTtl: 60 })).not.toThrow()
  })

  it('throws a ConfigError for an unknown option, naming the one it probably meant', () => {
    expect(() => cloudflareKVStorage(kv, { ttl: 120 } as never)).toThrow(
      expect.objectContaining({ name: 'ConfigError', message: 'Option "ttl" is not a known option; did you mean "expirationTtl"?' }),
    )
    expect(() => cloudflareKVStorage(kv, { Prefix: 'a/', expirationTtl: 60 } as never)).toThrow('Option "Prefix" is not a known option; did you mean "prefix"?')
  })

  it('throws a ConfigError for options that are not an object', () => {
    for (const options of [null, 'api:', 42]) {
      expect(() => cloudflareKVStorage(kv, options as never), String(options)).toThrow(expect.objectContaining({ name: 'ConfigError', message: '"options" must be an object' }))
    }
  })

  it('throws a ConfigError for a prefix that is not a string', () => {
    expect(() => cloudflareKVStorage(kv, { prefix: 1 as unknown as string })).toThrow(ConfigError)
  })

  it('accepts a key of 512 UTF-8 bytes and rejects a longer one with a StorageError', async () => {
    const storage = cloudflareKVStorage(kv, { prefix: 'é' })
    const longest = 'é'.repeat(255) // 2 + 510 bytes
    await storage.set(longest, fullTokenSet())
    expect(await storage.get(longest)).toStrictEqual(fullTokenSet())
    const tooLong = `${longest}a`
    for (const operation of [() => storage.get(tooLong), () => storage.set(tooLong, fullTokenSet()), () => storage.delete(tooLong)]) {
      const error = await rejection(operation())
      expect(error).toBeInstanceOf(StorageError)
      expect(error).toMatchObject({ code: 'STORAGE_ERROR', message: expect.stringContaining('at most 512 bytes') })
    }
  })

  it('rejects a stored value that is not JSON with a StorageError that quotes none of it', async () => {
    // V8's SyntaxError message would quote part of this text.
    await kv.put('broken', '{"refreshToken":rt-must-not-leak}')
    const error = await rejection(cloudflareKVStorage(kv).get('broken'))
    expect(error).toBeInstanceOf(StorageError)
    expect(error).toMatchObject({ code: 'STORAGE_ERROR', message: 'Cloudflare KV holds a value that is not JSON' })
    const shown = [String(error), JSON.stringify(error), String((error as Error).cause), (error as Error).stack].join('\n')
    expect(shown).not.toContain('rt-must-no')
  })

  it('rejects stored JSON that is not an object with a StorageError', async () => {
    const storage = cloudflareKVStorage(kv, { prefix: 'not-object/' })
    for (const text of ['null', '42', '"rt"', '[]']) {
      await kv.put(`not-object/${text}`, text)
      await expect(storage.get(text)).rejects.toMatchObject({ code: 'STORAGE_ERROR', message: 'Cloudflare KV holds a value that is not a token set' })
    }
  })

  it('turns a failure of KV itself into a StorageError with the failure as cause', async () => {
    // KV refuses the key '.': a real failure from the runtime, not a stub.
    const storage = cloudflareKVStorage(kv, { prefix: '' })
    const cases = [
      ['get', () => storage.get('.')],
      ['put', () => storage.set('.', fullTokenSet())],
      ['delete', () => storage.delete('.')],
    ] as const
    for (const [operation, run] of cases) {
      const error = await rejection(run())
      expect(error).toBeInstanceOf(StorageError)
      expect(error).toMatchObject({ code: 'STORAGE_ERROR', message: `Cloudflare KV ${operation} failed`, cause: expect.any(Error) })
    }
  })

  it('turns a KV binding that is gone into a StorageError', async () => {
    const gone = new Miniflare({ modules: true, script: 'export default {}', kvNamespaces: ['KV'] })
    const storage = cloudflareKVStorage(await getKV(gone))
    await gone.dispose()
    await expect(storage.get('k')).rejects.toMatchObject({ code: 'STORAGE_ERROR', cause: expect.any(Error) })
  })
})
