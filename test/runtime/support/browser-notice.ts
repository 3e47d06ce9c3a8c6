import { findChromium, skipNotice } from './chromium.js'

/** Vitest global setup: says once per run when the browser tests are skipped, and why. */
export function setup() {
  const notice = skipNotice(findChromium())
  if (notice) console.log(notice)
}
