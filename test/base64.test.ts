import { Buffer } from 'node:buffer'
import { describe, expect, it } from 'vitest'
import { base64UrlText, basicCredentials } from '../src/base64.js'

// RFC 6749 §2.3.1 and Appendix B: each part form-encoded (UTF-8, then application/x-www-form-urlencoded).
const formEncode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2)
const expected = (id: string, secret: string) => Buffer.from(`${formEncode(id)}:${formEncode(secret)}`, 'utf8').toString('base64')

describe('basicCredentials', () => {
  it.each([
    ['', '', 'Og=='],
    ['f', 'o', 'Zjpv'],
    ['fooba', 'r', 'Zm9vYmE6cg=='],
    ['foo', 'bar', 'Zm9vOmJhcg=='],
    ['fo', 'obar', 'Zm86b2Jhcg=='],
  ])('matches RFC 4648 base64 of "%s:%s"', (id, secret, base64) => {
    expect(basicCredentials(id, secret)).toBe(base64)
    expect(Buffer.from(base64, 'base64').toString()).toBe(`${id}:${secret}`)
  })

  it('form-encodes id and secret first, so a colon, space, plus or percent in them survives', () => {
    expect(Buffer.from(basicCredentials('my client:1', 'a+b%c d'), 'base64').toString()).toBe('my+client%3A1:a%2Bb%25c+d')
  })

  it('encodes the UTF-8 bytes of text beyond Latin-1, where btoa alone throws', () => {
    const [id, secret] = ['clïent', 'sécret:日本:🔑']
    expect(basicCredentials(id, secret)).toBe(expected(id, secret))
    expect(Buffer.from(basicCredentials(id, secret), 'base64').toString()).toBe('cl%C3%AFent:s%C3%A9cret%3A%E6%97%A5%E6%9C%AC%3A%F0%9F%94%91')
    expect(() => btoa(`${id}:${secret}`)).toThrow()
  })

  it('does its own base64: it works with the platform btoa removed', () => {
    const { btoa: platform } = globalThis
    Reflect.deleteProperty(globalThis, 'btoa')
    try {
      expect(basicCredentials('clïent', 'sécret')).toBe(expected('clïent', 'sécret'))
    } finally {
      globalThis.btoa = platform
    }
  })

  it('agrees with Buffer on every character class and length', () => {
    for (let n = 0; n < 300; n++) {
      const text = Array.from({ length: n }, (_, i) => String.fromCodePoint((i * 97 + n * 31) % 0x2fff)).join('')
      const [id, secret] = [text.slice(0, n >> 1), text.slice(n >> 1)]
      expect(basicCredentials(id, secret)).toBe(expected(id, secret))
    }
  })
})

describe('base64UrlText', () => {
  it.each(['', 'f', 'fo', 'foo', 'foob', '{"exp":1700000000,"name":"Zoë 🙂"}', '\u00ff\u00fe?>'])('decodes the unpadded base64url of %j', (text) => {
    expect(base64UrlText(Buffer.from(text).toString('base64url'))).toBe(text)
  })

  it('reads - and _ as 62 and 63', () => {
    expect(base64UrlText('-_-_')).toBe(Buffer.from('-_-_', 'base64url').toString())
  })

  it.each(['a+b', 'a/b', 'ab==', 'a b', 'ä'])('refuses %j', (text) => {
    expect(base64UrlText(text)).toBeUndefined()
  })
})
