import { afterEach, describe, expect, it, vi } from 'vitest'
import { createEvents } from '../src/events.js'

interface TestEvents {
  tick: { n: number }
  tock: { n: number }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('createEvents', () => {
  it('calls the listeners of one type in order, and stops calling one after its unsubscribe', () => {
    const events = createEvents<TestEvents>()
    const seen: string[] = []
    const off = events.on('tick', ({ n }) => seen.push(`a${n}`))
    events.on('tick', ({ n }) => seen.push(`b${n}`))
    events.on('tock', ({ n }) => seen.push(`tock${n}`))
    events.emit('tick', { n: 1 })
    off()
    events.emit('tick', { n: 2 })
    expect(seen).toEqual(['a1', 'b1', 'b2'])
  })

  it('lets a listener unsubscribe itself, or add another, without changing the emit in progress', () => {
    const events = createEvents<TestEvents>()
    const seen: string[] = []
    const off = events.on('tick', () => {
      seen.push('once')
      off()
      events.on('tick', () => seen.push('added'))
    })
    events.on('tick', () => seen.push('always'))
    events.emit('tick', { n: 1 })
    events.emit('tick', { n: 2 })
    expect(seen).toEqual(['once', 'always', 'always', 'added'])
  })

  it('logs a listener that throws and goes on with the others', () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const events = createEvents<TestEvents>()
    const failure = new Error('listener bug')
    const seen: number[] = []
    events.on('tick', () => {
      throw failure
    })
    events.on('tick', ({ n }) => seen.push(n))
    expect(() => events.emit('tick', { n: 7 })).not.toThrow()
    expect(seen).toEqual([7])
    expect(error).toHaveBeenCalledWith('oauth-refresh: a "tick" listener threw', failure)
  })

  it('emits nothing for a type without listeners', () => {
    const events = createEvents<TestEvents>()
    expect(() => events.emit('tock', { n: 1 })).not.toThrow()
  })
})
