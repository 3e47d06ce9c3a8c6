import { describe, expect, it } from 'vitest'
import { findChromium, skipNotice, USUAL_PATHS } from './chromium.js'

const only = (...present: string[]) => (path: string) => present.includes(path)

describe('findChromium', () => {
  it('takes CHROMIUM_PATH first, as given', () => {
    expect(findChromium({ CHROMIUM_PATH: '/opt/chrome/chrome' }, only('/usr/bin/chromium'))).toBe('/opt/chrome/chrome')
  })

  it('else the first usual location that exists', () => {
    expect(findChromium({}, only('/usr/bin/google-chrome', '/usr/bin/chromium-browser'))).toBe('/usr/bin/chromium-browser')
    expect(findChromium({ CHROMIUM_PATH: '' }, only('/snap/bin/chromium'))).toBe('/snap/bin/chromium')
    expect(USUAL_PATHS.slice(0, 3)).toEqual(['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'])
  })

  it('finds none where none exists', () => {
    expect(findChromium({}, only())).toBeUndefined()
  })
})

describe('skipNotice', () => {
  it('skips the browser tests without a browser outside CI, saying how to get one', () => {
    expect(skipNotice(undefined, {})).toMatch(/^Skipped the Chromium tests .*no browser found.*apt-get install -y chromium.*CHROMIUM_PATH/)
  })

  it('never skips in CI, nor when a browser is found', () => {
    expect(skipNotice(undefined, { CI: '1' })).toBeUndefined()
    expect(skipNotice('/usr/bin/chromium', {})).toBeUndefined()
  })
})
