import { describe, expect, it } from 'vitest'
import { ConfigError } from '../src/errors.js'
import { rejectUnknown, unknownOption } from '../src/option-names.js'

const known = ['tokenUrl', 'clientId', 'expirationTtl']

describe('unknownOption', () => {
  it('names the known option that differs only in case, or that holds the unknown name', () => {
    expect(unknownOption('tokenURL', known)).toBe('is not a known option; did you mean "tokenUrl"?')
    expect(unknownOption('ttl', known)).toBe('is not a known option; did you mean "expirationTtl"?')
  })

  it('names the camelCase option for a snake_case name', () => {
    expect(unknownOption('token_url', known)).toBe('is not a known option; did you mean "tokenUrl"?')
    expect(unknownOption('client_id', known)).toBe('is not a known option; did you mean "clientId"?')
    expect(unknownOption('expiration_ttl', known)).toBe('is not a known option; did you mean "expirationTtl"?')
  })

  it('guesses nothing for an unrelated or too short name', () => {
    expect(unknownOption('clientSecert', known)).toBe('is not a known option')
    expect(unknownOption('id', known)).toBe('is not a known option')
  })
})

describe('rejectUnknown', () => {
  it('throws a ConfigError naming every unknown key, and accepts known ones', () => {
    expect(() => rejectUnknown({ tokenUrl: 1, ttl: 2 }, known)).toThrow(new ConfigError('Option "ttl" is not a known option; did you mean "expirationTtl"?'))
    expect(() => rejectUnknown({ ttl: 2, token_url: 1, colour: 3 }, known)).toThrow(
      new ConfigError('Option "ttl" is not a known option; did you mean "expirationTtl"?\nOption "token_url" is not a known option; did you mean "tokenUrl"?\nOption "colour" is not a known option'),
    )
    expect(() => rejectUnknown({ tokenUrl: 1, clientId: 2 }, known)).not.toThrow()
  })
})
