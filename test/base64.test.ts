import { Buffer } from 'node:buffer'
import { describe, expect, it } from 'vitest'
import { base64Utf8 } from '../src/base64.js'

describe('base64Utf8', () => {
  it.each(['', 'f', 'fo', 'foo', 'foob', 'fooba', 'foobar'])('matches RFC 4648 §10 for %j', (text) => {
    expect(base64Utf8(text)).toBe(Buffer.from(text).toString('base64'))
  })

  it('encodes the UTF-8 bytes of text beyond Latin-1, where btoa throws', () => {
    const text = 'clïent:sécret:日本:🔑'
    expect(base64Utf8(text)).toBe(Buffer.from(text, 'utf8').toString('base64'))
    expect(() => btoa(text)).toThrow()
  })

  it('agrees with Buffer on every byte value and length', () => {
    for (let n = 0; n < 300; n++) {
      const text = Array.from({ length: n }, (_, i) => String.fromCodePoint((i * 97 + n * 31) % 0x2fff)).join('')
      expect(base64Utf8(text)).toBe(Buffer.from(text, 'utf8').toString('base64'))
    }
  })
})
