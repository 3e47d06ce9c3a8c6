import { join } from 'node:path'
import type { BrowserContext, Page, Worker } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TokenStorage } from '../../src/storage/types.js'
import type { WebExtensionStorageOptions } from '../../src/storage/webextension.js'
import { describeWithBrowser } from '../runtime/support/chromium.js'
import { buildTestExtension, launchWithExtensions, serviceWorker, type ExtensionGlobals } from '../runtime/support/extension.js'
import { installPackedPackage, type Consumer } from '../runtime/support/package.js'
import { describeClientPersistence, describeStorageContract, fullTokenSet } from './contract.js'

// The adapter runs in the test extension's service worker, built from the packed package, against
// Chromium's real chrome.storage; the tests reach it through playwright's worker.evaluate.
let consumer: Consumer
let context: BrowserContext
let worker: Worker

type Area = 'local' | 'session'

/** What the onDelete tests leave on a context's globals. */
interface Notices {
  /** The keys whose deletes the context was told of, in order. */
  told: string[]
  /** Storage objects made in this context, by name. */
  storages: Record<string, TokenStorage>
}

/** A `TokenStorage` whose every call runs `webExtensionStorage(chrome.storage[area], options)` in the service worker. */
function inExtension(area: Area, options?: WebExtensionStorageOptions): TokenStorage {
  return {
    get: (key) =>
      worker.evaluate(([area, options, key]) => {
        const { chrome, oauthRefresh } = globalThis as unknown as ExtensionGlobals
        return oauthRefresh.webExtensionStorage(chrome.storage[area], options).get(key)
      }, [area, options, key] as const),
    set: (key, value) =>
      worker.evaluate(([area, options, key, value]) => {
        const { chrome, oauthRefresh } = globalThis as unknown as ExtensionGlobals
        return oauthRefresh.webExtensionStorage(chrome.storage[area], options).set(key, value)
      }, [area, options, key, value] as const),
    delete: (key) =>
      worker.evaluate(([area, options, key]) => {
        const { chrome, oauthRefresh } = globalThis as unknown as ExtensionGlobals
        return oauthRefresh.webExtensionStorage(chrome.storage[area], options).delete(key)
      }, [area, options, key] as const),
  }
}

/** What chrome.storage[area] itself holds, every key. */
const rawArea = (area: Area) =>
  worker.evaluate((area) => (globalThis as unknown as ExtensionGlobals).chrome.storage[area].get(null), area)

/** Writes `items` to chrome.storage.local directly, as other code of the extension might. */
const writeRaw = (items: Record<string, unknown>) =>
  worker.evaluate((items) => (globalThis as unknown as ExtensionGlobals).chrome.storage.local.set(items), items)

/** How the adapter call named `operation` ends in the service worker: its value, or its error as plain data. */
type Outcome = { value?: unknown; error?: { name: string; code?: string; message: string; cause?: string } }

describeWithBrowser('webExtensionStorage in a Chromium extension', () => {
  beforeAll(async () => {
    consumer = await installPackedPackage()
    const dir = await buildTestExtension(consumer)
    context = await launchWithExtensions(join(consumer.dir, 'profile'), [dir])
    worker = await serviceWorker(context, 'oauth.js')
  })
  afterAll(async () => {
    await context?.close()
    await consumer?.remove()
  })

  describe('the bridge to the service worker', () => {
    it('carries the contract fixtures (unicode, NUL, 4 KB tokens) and undefined both ways unchanged', async () => {
      const echoed = await worker.evaluate((value) => [value, undefined], fullTokenSet())
      expect(echoed).toStrictEqual([fullTokenSet(), undefined])
    })
  })

  describeStorageContract('webExtensionStorage(chrome.storage.local)', () => inExtension('local'))
  describeStorageContract('webExtensionStorage(chrome.storage.session)', () => inExtension('session'))
  describeStorageContract('webExtensionStorage with a prefix', () => inExtension('local', { prefix: 'app/' }))
  describeClientPersistence('webExtensionStorage(chrome.storage.local)', () => inExtension('local'))

  describe('webExtensionStorage', () => {
    it('stores the token set as an object under the key itself by default, and under prefix + key with a prefix', async () => {
      await inExtension('local').set('oauth-refresh:layout', fullTokenSet())
      await inExtension('session', { prefix: 'mine/' }).set('layout', fullTokenSet({ grantId: 'prefixed' }))
      expect((await rawArea('local'))['oauth-refresh:layout']).toStrictEqual(fullTokenSet())
      expect((await rawArea('session'))['mine/layout']).toStrictEqual(fullTokenSet({ grantId: 'prefixed' }))
      expect(await inExtension('session').get('layout')).toBeUndefined()
      await inExtension('session', { prefix: 'mine/' }).delete('layout')
      expect(await rawArea('session')).not.toHaveProperty('mine/layout')
    })

    it('keeps local and session areas apart', async () => {
      await inExtension('local').set('areas', fullTokenSet({ grantId: 'local' }))
      expect(await inExtension('session').get('areas')).toBeUndefined()
      await inExtension('session').set('areas', fullTokenSet({ grantId: 'session' }))
      expect(await inExtension('local').get('areas')).toStrictEqual(fullTokenSet({ grantId: 'local' }))
    })

    it('rejects a stored value that is not an object with a StorageError that shows none of it', async () => {
      const garbage = { string: 'rt-must-not-leak', number: 42, null: null, array: ['rt-must-not-leak'], boolean: true }
      await writeRaw(garbage)
      const outcomes = await worker.evaluate(async (keys) => {
        const { chrome, oauthRefresh } = globalThis as unknown as ExtensionGlobals
        const storage = oauthRefresh.webExtensionStorage(chrome.storage.local)
        return Promise.all(keys.map((key) => storage.get(key).then(
          (value) => ({ value }),
          (error) => ({ error: { name: error.name, code: error.code, message: error.message, cause: String(error.cause) } }),
        )))
      }, Object.keys(garbage))
      for (const outcome of outcomes as Outcome[]) {
        expect(outcome.error).toEqual({ name: 'StorageError', code: 'STORAGE_ERROR', message: 'Extension storage holds a value that is not a token set', cause: 'undefined' })
      }
      expect(JSON.stringify(outcomes)).not.toContain('rt-must-no')
    })

    it("turns chrome.storage's own failures into StorageErrors with the failure as cause: a read-only area, a full one", async () => {
      const outcomes = await worker.evaluate(async (token) => {
        const { chrome, oauthRefresh } = globalThis as unknown as ExtensionGlobals
        const describe = (run: () => Promise<unknown>) => run().then(
          (value) => ({ value }),
          (error) => ({ error: { name: error.name, code: error.code, message: error.message, cause: String(error.cause) } }),
        )
        const managed = oauthRefresh.webExtensionStorage(chrome.storage.managed)
        // session holds at most 10 MB.
        const huge = { ...token, accessToken: 'a'.repeat(11 * 1024 * 1024) }
        return Promise.all([
          describe(() => managed.set('k', token)),
          describe(() => managed.delete('k')),
          describe(() => oauthRefresh.webExtensionStorage(chrome.storage.session).set('huge', huge)),
          describe(() => managed.get('k')),
        ])
      }, fullTokenSet())
      const [set, remove, full, read] = outcomes as Outcome[]
      expect(set!.error).toMatchObject({ name: 'StorageError', code: 'STORAGE_ERROR', message: 'Extension storage set failed', cause: expect.stringMatching(/read-only/i) })
      expect(remove!.error).toMatchObject({ name: 'StorageError', code: 'STORAGE_ERROR', message: 'Extension storage remove failed', cause: expect.stringMatching(/read-only/i) })
      expect(full!.error).toMatchObject({ name: 'StorageError', code: 'STORAGE_ERROR', message: 'Extension storage set failed', cause: expect.stringMatching(/quota/i) })
      expect(read, 'a missing key of a read-only area').toEqual({})
      expect(await inExtension('session').get('huge')).toBeUndefined()
    })

    it('throws a ConfigError for what is not a storage area, for storage.sync, and for unknown or bad options', async () => {
      const errors = await worker.evaluate(() => {
        const { chrome, oauthRefresh } = globalThis as unknown as ExtensionGlobals
        const attempts: Array<() => unknown> = [
          () => oauthRefresh.webExtensionStorage(undefined as never),
          () => oauthRefresh.webExtensionStorage(chrome.storage as never),
          () => oauthRefresh.webExtensionStorage({ get: chrome.storage.local.get, set: chrome.storage.local.set } as never),
          () => oauthRefresh.webExtensionStorage(chrome.storage.sync),
          () => oauthRefresh.webExtensionStorage(chrome.storage.local, { ttl: 60 } as never),
          () => oauthRefresh.webExtensionStorage(chrome.storage.local, { Prefix: 'a/' } as never),
          () => oauthRefresh.webExtensionStorage(chrome.storage.local, { prefix: 1 } as never),
          () => oauthRefresh.webExtensionStorage(chrome.storage.local, null as never),
        ]
        return attempts.map((attempt) => {
          try {
            attempt()
            return 'no error'
          } catch (error) {
            return `${(error as Error).name} ${(error as { code: string }).code}: ${(error as Error).message}`
          }
        })
      })
      const area = 'ConfigError CONFIG_INVALID: "area" must be an extension storage area such as chrome.storage.local, with get, set and remove methods'
      expect(errors).toEqual([
        area,
        area,
        area,
        'ConfigError CONFIG_INVALID: "area" must not be storage.sync: it copies the grant to other browsers; use storage.local',
        'ConfigError CONFIG_INVALID: Option "ttl" is not a known option',
        'ConfigError CONFIG_INVALID: Option "Prefix" is not a known option; did you mean "prefix"?',
        'ConfigError CONFIG_INVALID: "prefix" must be a string',
        'ConfigError CONFIG_INVALID: "options" must be an object',
      ])
    })
  })

  describe('onDelete', () => {
    let page: Page
    beforeAll(async () => {
      page = await context.newPage()
      await page.goto(`chrome-extension://${new URL(worker.url()).host}/page.html`)
      await page.waitForFunction(() => 'oauthRefresh' in globalThis)
    })
    afterAll(() => page?.close())

    /** In the page: a new storage object `name` on chrome.storage.local that records the deletes of `keys` it is told of. */
    const listen = (name: string, keys: string[], options?: WebExtensionStorageOptions) =>
      page.evaluate(([name, keys, options]) => {
        const globals = globalThis as unknown as ExtensionGlobals & Notices
        globals.told ??= []
        globals.storages ??= {}
        const storage = (globals.storages[name] = globals.oauthRefresh.webExtensionStorage(globals.chrome.storage.local, options))
        for (const key of keys) storage.onDelete!(key, () => globals.told.push(`${name}:${key}`))
      }, [name, keys, options] as const)
    /** Runs `steps` (set or delete, key) in order through the page's storage object `name`. */
    const inPage = (name: string, steps: Array<['set' | 'delete', string]>) =>
      page.evaluate(async ([name, steps, value]) => {
        const storage = (globalThis as unknown as Notices).storages[name]!
        for (const [step, key] of steps) await (step === 'set' ? storage.set(key, value) : storage.delete(key))
      }, [name, steps, fullTokenSet()] as const)
    /** What the page was told, once it was told `last` (events come in order: nothing earlier is still on its way). */
    const toldUntil = async (last: string) => {
      const told = () => page.evaluate(() => (globalThis as unknown as Notices).told)
      await expect.poll(told).toContain(last)
      const all = await told()
      await page.evaluate(() => ((globalThis as unknown as Notices).told = []))
      return all
    }

    it("tells the page of the service worker's delete of a key it listens to, and of no other key", async () => {
      await listen('a', ['k', 'barrier'])
      for (const key of ['k', 'other', 'barrier']) await inExtension('local').set(key, fullTokenSet())
      for (const key of ['other', 'k', 'barrier']) await inExtension('local').delete(key)
      expect(await toldUntil('a:barrier')).toEqual(['a:k', 'a:barrier'])
    })

    it('is not told of its own deletes, even of a delete followed at once by a set; another storage object in its context is', async () => {
      await listen('own', ['k2', 'barrier2'])
      await listen('other', ['k2'])
      await inPage('own', [['set', 'k2'], ['delete', 'k2'], ['set', 'k2']])
      await inExtension('local').set('barrier2', fullTokenSet())
      await inExtension('local').delete('barrier2')
      expect(await toldUntil('own:barrier2')).toEqual(['other:k2', 'own:barrier2'])
    })

    it('counts only its deletes that removed something: after deleting a missing key it is told of the next delete elsewhere', async () => {
      await listen('missing', ['gone'])
      await inPage('missing', [['delete', 'gone']])
      await inExtension('local').set('gone', fullTokenSet())
      await inExtension('local').delete('gone')
      expect(await toldUntil('missing:gone')).toEqual(['missing:gone'])
    })

    it('listens under its prefix only', async () => {
      await listen('prefixed', ['k4', 'barrier4'], { prefix: 'app/' })
      for (const key of ['k4', 'abc/k4', 'app/k4', 'app/barrier4']) await inExtension('local').set(key, fullTokenSet())
      for (const key of ['k4', 'abc/k4', 'app/k4', 'app/barrier4']) await inExtension('local').delete(key)
      expect(await toldUntil('prefixed:barrier4')).toEqual(['prefixed:k4', 'prefixed:barrier4'])
    })
  })
})
