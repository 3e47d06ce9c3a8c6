import { describe, expect, it } from 'vitest'
import { StorageError } from '../../src/errors.js'
import { leasedLock, type LeaseSteps, type LockSteps, type Seen } from '../../src/storage/lease.js'
import type { Lease, StoredTokenSet } from '../../src/storage/types.js'

const grant: StoredTokenSet = { refreshToken: 'rt-1', grantId: 'g' }

/** A lock over scripted steps: `take` answers from `takes`, the lease's steps are `steps`; everything is logged. */
function scripted(steps: Partial<LeaseSteps>, takes: Array<true | number> = [true]) {
  const log: string[] = []
  const seen: Array<Seen<string>> = []
  const lockSteps = (key: string): LockSteps => ({
    take: async () => (log.push(`take ${key}`), takes.shift() ?? true),
    renew: async () => void log.push('renew'),
    release: async () => void log.push('release'),
  })
  const leaseSteps = (_key: string, _holder: string, read: Seen<string>): LeaseSteps => {
    seen.push(read)
    return {
      claim: steps.claim ?? (async () => true),
      replace: steps.replace ?? (async () => true),
    }
  }
  return { locked: leasedLock<string>(1000, lockSteps, leaseSteps), log, seen }
}

const withLease = <T>(locked: ReturnType<typeof scripted>['locked'], task: (lease: Lease) => Promise<T>) => locked.lock('grant', (lease) => task(lease!))

describe('leasedLock', () => {
  it('takes the lease (looking again while it is held), hands the task a lease, and releases after, also when the task throws', async () => {
    const { locked, log } = scripted({}, [3, 1, true])
    expect(await withLease(locked, async (lease) => typeof lease.claim)).toBe('function')
    expect(log).toEqual(['take grant', 'take grant', 'take grant', 'release'])
    const failure = new Error('task failed')
    await expect(locked.lock('grant', () => Promise.reject(failure))).rejects.toBe(failure)
    expect(log.at(-1)).toBe('release')
  })

  it("notes what the holder read of its key while it holds the lease, and nothing of other keys or outside it", async () => {
    const { locked, seen } = scripted({})
    locked.saw('grant', 'before')
    await withLease(locked, async () => {
      expect(seen[0]!.version, 'nothing read yet').toBeUndefined()
      locked.saw('other', 'other key')
      locked.saw('grant', 'v1')
      expect(seen[0]!.version).toBe('v1')
      locked.saw('grant', null)
      expect(seen[0]!.version).toBe(null)
    })
    locked.saw('grant', 'after')
    expect(seen[0]!.version).toBe(null)
  })

  it('claims: waits while a step says how long another record or lease lasts, then resolves what the step decides', async () => {
    const answers: Array<boolean | number> = [2, 1, true, 3, false]
    const asked: Array<[string, number]> = []
    const { locked } = scripted({ claim: async (refreshToken, recordMs) => (asked.push([refreshToken, recordMs]), answers.shift()!) })
    await withLease(locked, async (lease) => {
      expect(await lease.claim('rt-1', 500)).toBe(true)
      expect(await lease.claim('rt-1', 500)).toBe(false)
    })
    expect(asked, 'the record lasts the timeout plus leaseMs').toEqual(Array(5).fill(['rt-1', 1500]))
  })

  it('writes: a refusal is a StorageError that names no token; a failing store is tried again until the claimed deadline', async () => {
    let failures = 2
    const { locked } = scripted({
      replace: async (value) => {
        if (failures-- > 0) throw new StorageError('Redis write failed: no answer')
        return value.refreshToken !== 'rt-refused'
      },
    })
    await withLease(locked, async (lease) => {
      await expect(lease.set(grant), 'no claim yet: no deadline to retry until').rejects.toThrow('Redis write failed')
      expect(await lease.claim('rt-1', 60_000)).toBe(true)
      await expect(lease.set(grant)).resolves.toBeUndefined()
      expect(failures, 'the second failure was retried').toBe(-1)
      const refused = await lease.set({ ...grant, refreshToken: 'rt-refused' }).catch((error: unknown) => error)
      expect(refused).toBeInstanceOf(StorageError)
      expect(String((refused as Error).message)).not.toContain('rt-')
    })
  })
})
