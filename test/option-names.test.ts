import { describe, expect, it } from 'vitest'
import { ConfigError } from '../src/errors.js'
import { rejectUnknown, unknownOption } from '../src/option-names.js'

const known = ['tokenUrl', 'clientId', 'expirationTtl']

describe('unknownOption', () => {
  it('names the known option that differs only in case, or that holds the unknown name', () => {
    expect(unknownOption('tokenURL', known)).toBe('is not a known option; did you mean "tokenUrl"?')
    expect(unknownOption('ttl', known)).toBe('is not a known option; did you mean "expirationTtl"?')
  })

  it('guesses nothing for an unrelated or too short name', () => {
    expect(unknownOption('clientSecert', known)).toBe('is not a known option')
    expect(unknownOption('id', known)).toBe('is not a known option')
  })
})

describe('rejectUnknown', () => {
  it('throws a ConfigError naming the first unknown key, and accepts known ones', () => {
    expect(() => rejectUnknown({ tokenUrl: 1, ttl: 2 }, known)).toThrow(new ConfigError('Option "ttl" is not a known option; did you mean "expirationTtl"?'))
    expect(() => rejectUnknown({ tokenUrl: 1, clientId: 2 }, known)).not.toThrow()
  })
})
