import { describe, expect, it } from 'vitest'
import type { StoredTokenSet, TokenStorage } from '../../src/storage/types.js'

let keyCount = 0
/** A key no other test uses, shaped like the client's own keys (URL, client id, non-ASCII). */
const freshKey = (label: string) => `https://auth.example.com/token#client-é-${label}-${++keyCount}`

/** A token set with every field the client stores, unicode and JSON-hostile text, and long tokens. */
export function fullTokenSet(overrides: Partial<StoredTokenSet> = {}): StoredTokenSet {
  return {
    accessToken: `at-${'x'.repeat(4096)}-🔑-名前-"quoted"-\\back\\slash-\n-\u0000-é`,
    refreshToken: `rt-${'y'.repeat(2048)}-тест-🔁`,
    expiresAt: 1_900_000_000_123,
    obtainedAt: 1_899_999_000_456,
    scope: 'read:äpfel write:🍎 offline_access',
    grantId: 'grant-Ω-1',
    ...overrides,
  }
}

/**
 * The behaviour every `TokenStorage` adapter must show. Each adapter's test file runs it; each
 * test takes a new storage from `makeStorage` and keys of its own.
 */
export function describeStorageContract(name: string, makeStorage: () => TokenStorage | Promise<TokenStorage>): void {
  describe(`${name}: TokenStorage contract`, () => {
    it('resolves undefined for a missing key', async () => {
      const storage = await makeStorage()
      expect(await storage.get(freshKey('missing'))).toBeUndefined()
    })

    it('gives back a full token set exactly as stored', async () => {
      const storage = await makeStorage()
      const key = freshKey('full')
      await storage.set(key, fullTokenSet())
      expect(await storage.get(key)).toStrictEqual(fullTokenSet())
    })

    it('gives back a token set with only the required fields, adding none', async () => {
      const storage = await makeStorage()
      const key = freshKey('minimal')
      await storage.set(key, { refreshToken: 'rt-minimal', grantId: 'g-minimal' })
      expect(await storage.get(key)).toStrictEqual({ refreshToken: 'rt-minimal', grantId: 'g-minimal' })
    })

    it('replaces the whole value on overwrite, keeping no field of the old one', async () => {
      const storage = await makeStorage()
      const key = freshKey('overwrite')
      await storage.set(key, fullTokenSet())
      await storage.set(key, { refreshToken: 'rt-rotated', grantId: 'grant-Ω-1', obtainedAt: 2 })
      expect(await storage.get(key)).toStrictEqual({ refreshToken: 'rt-rotated', grantId: 'grant-Ω-1', obtainedAt: 2 })
    })

    it('deletes a key, and resolves when deleting a missing one', async () => {
      const storage = await makeStorage()
      const key = freshKey('delete')
      await storage.set(key, fullTokenSet())
      await expect(storage.delete(key)).resolves.toBeUndefined()
      expect(await storage.get(key)).toBeUndefined()
      await expect(storage.delete(key)).resolves.toBeUndefined()
      await expect(storage.delete(freshKey('never-set'))).resolves.toBeUndefined()
    })

    it('keeps keys apart, including keys that share a prefix', async () => {
      const storage = await makeStorage()
      const first = freshKey('isolation')
      const second = `${first}:more`
      await storage.set(first, fullTokenSet({ grantId: 'first' }))
      await storage.set(second, fullTokenSet({ grantId: 'second' }))
      expect(await storage.get(first)).toStrictEqual(fullTokenSet({ grantId: 'first' }))
      expect(await storage.get(second)).toStrictEqual(fullTokenSet({ grantId: 'second' }))
      await storage.delete(first)
      expect(await storage.get(first)).toBeUndefined()
      expect(await storage.get(second)).toStrictEqual(fullTokenSet({ grantId: 'second' }))
    })

    it('stores and returns copies, so mutating either object changes nothing stored', async () => {
      const storage = await makeStorage()
      const key = freshKey('copies')
      const written = fullTokenSet()
      await storage.set(key, written)
      written.refreshToken = 'mutated-after-set'
      const read = await storage.get(key)
      read!.refreshToken = 'mutated-after-get'
      delete read!.accessToken
      expect(await storage.get(key)).toStrictEqual(fullTokenSet())
    })

    it('ends concurrent sets to one key with one written value intact', async () => {
      const storage = await makeStorage()
      const key = freshKey('race')
      const values = Array.from({ length: 8 }, (_, i) =>
        fullTokenSet({
          accessToken: `at-${i}-${'a'.repeat(i * 100)}`,
          refreshToken: `rt-${i}`,
          expiresAt: 1_000 + i,
          obtainedAt: 2_000 + i,
          scope: `scope-${i}`,
          grantId: `grant-${i}`,
        }),
      )
      await Promise.all(values.map((value) => storage.set(key, value)))
      const stored = await storage.get(key)
      expect(values).toContainEqual(stored)
    })

    it('persists every one of concurrent sets to different keys', async () => {
      const storage = await makeStorage()
      const entries = Array.from({ length: 8 }, (_, i) => [freshKey(`parallel-${i}`), fullTokenSet({ grantId: `g-${i}` })] as const)
      await Promise.all(entries.map(([key, value]) => storage.set(key, value)))
      for (const [key, value] of entries) expect(await storage.get(key)).toStrictEqual(value)
    })
  })
}
