import { existsSync } from 'node:fs'
import { chromium, type LaunchOptions } from 'playwright-core'
import { describe } from 'vitest'

/** Where users' browsers usually are: Debian/Ubuntu, Fedora, Arch, snap, macOS. */
export const USUAL_PATHS = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
]

/** The browser to drive: `CHROMIUM_PATH` when set, else the first of `USUAL_PATHS` that exists. */
export function findChromium(env: Record<string, string | undefined> = process.env, exists: (path: string) => boolean = existsSync): string | undefined {
  return env.CHROMIUM_PATH || USUAL_PATHS.find((path) => exists(path))
}

/** The line printed once when the browser tests are skipped; undefined when they run (always in CI). */
export function skipNotice(path: string | undefined, env: Record<string, string | undefined> = process.env): string | undefined {
  if (path || env.CI) return undefined
  return 'Skipped the Chromium tests (test/runtime/chromium.test.ts, web-locks.test.ts, extension.test.ts, test/storage/webextension.test.ts): no browser found. Install one (apt-get install -y chromium) or set CHROMIUM_PATH.'
}

const path = findChromium()

/** `describe`, skipped where no browser is found outside CI; in CI a missing browser fails the launch. */
export const describeWithBrowser = describe.skipIf(skipNotice(path) !== undefined)

/** The house flags for Chromium, headless, with no traffic beyond what a test makes. */
export const CHROMIUM: LaunchOptions = {
  executablePath: path ?? USUAL_PATHS[0],
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
}

/** Launches Chromium; one launch per test file, a new context per test. */
export function launchChromium() {
  return chromium.launch(CHROMIUM)
}
