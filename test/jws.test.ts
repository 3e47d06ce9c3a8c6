import { describe, expect, it } from 'vitest'
import { verifyJws } from '../examples/local-server/jose.mjs'
import { base64Url, signer, signJwt } from '../src/jws.js'

const RSA = { modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
const KEYS = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  RS256: { name: 'RSASSA-PKCS1-v1_5', ...RSA },
  PS256: { name: 'RSA-PSS', ...RSA },
  EdDSA: { name: 'Ed25519' },
} as const

describe('signJwt', () => {
  it.each(Object.entries(KEYS))('signs %s as node:crypto verifies it, from a CryptoKey and from a JWK', async (alg, params) => {
    const pair = (await crypto.subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair
    const publicJwk = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as Record<string, string>
    for (const key of [pair.privateKey, await crypto.subtle.exportKey('jwk', pair.privateKey)]) {
      const found = await signer(key, undefined, 'key')
      expect(found.alg).toBe(alg)
      const token = await signJwt({ typ: 'JWT' }, { sub: 'ü' }, found)
      expect(verifyJws(token, publicJwk)).toEqual({ header: { typ: 'JWT', alg }, payload: { sub: 'ü' } })
      expect(verifyJws(`${token.slice(0, -4)}AAAA`, publicJwk)).toBeUndefined()
    }
  })
})

describe('base64Url', () => {
  it('encodes bytes without padding, with the URL alphabet', () => {
    expect(base64Url(new Uint8Array([251, 255, 191]))).toBe('-_-_')
    expect(base64Url(new Uint8Array([1]))).toBe('AQ')
    expect(base64Url(new Uint8Array([]))).toBe('')
  })
})
