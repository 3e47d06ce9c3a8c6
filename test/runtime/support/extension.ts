import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Worker } from 'playwright-core'
import type { createRefreshClient } from '../../../src/index.js'
import type { StorageAreaLike, webExtensionStorage } from '../../../src/storage/webextension.js'
import { bundle, CONDITIONS } from './bundle.js'
import { CHROMIUM } from './chromium.js'
import type { Consumer } from './package.js'

/** The globals of an extension context that tests reach with playwright's `evaluate`. */
export interface ExtensionGlobals {
  chrome: {
    storage: Record<'local' | 'session' | 'sync' | 'managed', StorageAreaLike & { get(keys?: string | null): Promise<Record<string, unknown>> }>
  }
  /** The packed package, as the test extension (fixtures/extension/oauth.js) exposes it. */
  oauthRefresh: { createRefreshClient: typeof createRefreshClient; webExtensionStorage: typeof webExtensionStorage }
}

/**
 * Copies the test extension into `consumer` and bundles its service worker and page script with
 * the packed package, as an extension's build would. Resolves the extension's directory.
 */
export async function buildTestExtension(consumer: Consumer): Promise<string> {
  const dir = join(await consumer.add('extensions', 'test/runtime/fixtures/extension'), 'extension')
  await writeFile(join(dir, 'oauth.js'), await bundle(join(dir, 'oauth.js'), CONDITIONS.browser))
  return dir
}

/** Starts Chromium with the unpacked extensions in `dirs`, on the profile `profileDir` (kept across restarts). */
export function launchWithExtensions(profileDir: string, dirs: string[]): Promise<BrowserContext> {
  const list = dirs.join(',')
  return chromium.launchPersistentContext(profileDir, {
    ...CHROMIUM,
    args: [...(CHROMIUM.args ?? []), `--disable-extensions-except=${list}`, `--load-extension=${list}`],
  })
}

/** The service worker whose script is `script` (its path in the extension), once it runs. */
export async function serviceWorker(context: BrowserContext, script: string): Promise<Worker> {
  const matches = (worker: Worker) => new URL(worker.url()).pathname === `/${script}`
  return context.serviceWorkers().find(matches) ?? (await context.waitForEvent('serviceworker', { predicate: matches }))
}
