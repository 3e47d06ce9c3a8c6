import { chromium, type LaunchOptions } from 'playwright-core'

/** The house flags for Debian's chromium, headless, with no traffic beyond what a test makes. */
export const CHROMIUM: LaunchOptions = {
  executablePath: '/usr/bin/chromium',
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
