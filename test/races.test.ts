import { inspect } from 'node:util'
import fc from 'fast-check'
import { it, vi } from 'vitest'
import { createRefreshClient, memoryStorage, OAuthRefreshError, StorageError, type TokenStorage } from '../src/index.js'
import { cloudflareKVStorage } from '../src/storage/cloudflare-kv.js'
import { REPLAY_COMMAND, SEARCH_COMMAND } from './races/replay.js'
import { API_URL, chainIndex, refreshTokenOf, SECRET, SECRETS, TOKEN_URL, WebLocks, World, type Outcome, type StorageFault } from './races/world.js'

// Model-based concurrency tests: fast-check generates clients, callers, token endpoint answers and
// storage faults, and its scheduler picks the order in which every answer, storage operation and
// lock acquisition completes, and when time jumps to the next timer. Each run checks:
// 1. every call settles within the waiters' bound, with a token or a typed error (or the caller's abort reason);
// 2. one token request at a time per client, and across clients that share a lock (Web Locks or the storage's lease);
// 3. no lost rotation, and no refresh token sent after the client saw its successor;
// 4. after clear() resolves, that client hands out no token and does not store the grant again;
// 5. a token the API refused (401) is never handed out again by that client;
// 6. no error, toJSON or cause chain shows a secret or token;
// 7. forceRefresh gets a token nobody had been handed when it was called;
// 8. once the faults stop, every client gets a token within the waiters' bound unless its grant
//    ended (the provider revoked it, or the client cleared it): no error outlives its fault.
// RACES_RUNS=5000 searches longer from a random seed; RACES_SEED=n (and RACES_PATH from a failure) replays one.
const LONG = Number(process.env.RACES_RUNS) || 0
const RUNS = LONG || 1000
const SEED = Number(process.env.RACES_SEED) || (LONG ? Math.floor(Math.random() * 2 ** 31) : 20261130)
const T0 = Date.UTC(2026, 10, 30)
const TIMEOUT_MS = 1_000
const MAX_DELAY_MS = 100

type Action =
  | { kind: 'get'; force: boolean; abort: 'none' | 'before' | 'during' }
  | { kind: 'fetch'; answer: 200 | 401; abort: 'none' | 'during' }
  | { kind: 'clear' }

interface Scenario {
  adapter: 'memory' | 'kv'
  /** The clients share Web Locks or the storage's lease; one client alone reads storage with eventual consistency. */
  lock: 'none' | 'web' | 'lease'
  /** Per client, its callers; each caller runs its actions one after another. */
  clients: Action[][][]
  outcomes: Outcome[]
  storageFaults: StorageFault[]
  revokeOnReuse: boolean
  expiresIn: number | undefined
  attempts: number
  /** Scheduler steps between chances for time to jump to the next timer. */
  calm: number
}

interface Call {
  client: number
  action: Action
  start: number
  startTime: number
  reason: Error
  settled?: { seq: number; time: number; value?: unknown; error?: unknown }
}

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('get' as const), force: fc.boolean(), abort: fc.constantFrom('none' as const, 'during' as const, 'before' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('fetch' as const), answer: fc.constantFrom(200 as const, 401 as const), abort: fc.constantFrom('none' as const, 'during' as const) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
)

const scenario: fc.Arbitrary<Scenario> = fc.record({
  adapter: fc.constantFrom('memory' as const, 'kv' as const),
  lock: fc.constantFrom('none' as const, 'web' as const, 'lease' as const),
  clients: fc.array(fc.array(fc.array(action, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 }),
  outcomes: fc.array(fc.constantFrom<Outcome>('rotate', 'ok', 'invalid_grant', '500', '503', 'refused', 'lost', 'timeout', 'hang'), { maxLength: 8 }),
  storageFaults: fc.array(fc.constantFrom<StorageFault>('ok', 'fail', 'stale', 'hang'), { maxLength: 12 }),
  revokeOnReuse: fc.boolean(),
  expiresIn: fc.constantFrom(undefined, 3600, 2),
  attempts: fc.integer({ min: 1, max: 3 }),
  calm: fc.integer({ min: 0, max: 8 }),
})

const describeAction = (a: Action) =>
  a.kind === 'get' ? `getAccessToken(${a.force ? 'force' : ''}${a.abort === 'none' ? '' : ` abort ${a.abort}`})` : a.kind === 'fetch' ? `fetch(API ${a.answer}${a.abort === 'none' ? '' : ' abort during'})` : 'clear()'

/** A Workers KV namespace in a Map, for the KV adapter. */
function kvNamespace() {
  const data = new Map<string, string>()
  return {
    get: async (key: string) => data.get(key) ?? null,
    put: async (key: string, value: string) => void data.set(key, value),
    delete: async (key: string) => void data.delete(key),
  }
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Releases scheduled tasks one at a time (each takes 1 ms); time jumps to the next timer when the scheduler picks "time passes". */
async function drive(s: fc.Scheduler, world: World, calm: number) {
  let ticking = false
  let lastTick = 0
  let step = 0
  for (; step < 20_000; step++) {
    await flush()
    await flush()
    // Storage answers within moments; only the network waits long enough for timers to fire.
    if (!ticking && step - lastTick >= calm && world.storage.pending === 0 && vi.getTimerCount() > 0) {
      ticking = true
      void s.schedule(Promise.resolve(), 'time passes').then(() => {
        ticking = false
        lastTick = step
        if (world.storage.pending > 0) return
        vi.advanceTimersToNextTimer()
        world.note(`time is T0 + ${Date.now() - T0} ms`)
      })
    }
    if (s.count() > 0) {
      await s.waitOne()
      vi.advanceTimersByTime(1)
    } else if (vi.getTimerCount() > 0) vi.advanceTimersToNextTimer()
    else return
  }
  throw new Error('the run did not settle')
}

async function check(s: fc.Scheduler, sc: Scenario): Promise<void> {
  vi.clearAllTimers()
  vi.setSystemTime(T0)
  const single = sc.clients.length === 1
  const locked = sc.lock !== 'none'
  const inner: TokenStorage = sc.adapter === 'kv' ? cloudflareKVStorage(kvNamespace()) : memoryStorage()
  const world = new World(
    s,
    { outcomes: sc.outcomes, revokeOnReuse: sc.revokeOnReuse, expiresIn: sc.expiresIn, storageFaults: sc.storageFaults, staleReads: single, locked, lease: sc.lock === 'lease', coordinated: single || locked },
    inner,
    sc.clients.length,
  )
  const maxWaitMs = (2 * sc.attempts + 2) * (TIMEOUT_MS + MAX_DELAY_MS)
  const storageErrors: StorageError[] = []
  if (sc.lock === 'web') vi.stubGlobal('navigator', { locks: new WebLocks(world) })
  const clients = sc.clients.map((_, i) =>
    createRefreshClient({
      tokenUrl: TOKEN_URL,
      clientId: 'app',
      clientSecret: SECRET,
      refreshToken: refreshTokenOf(0),
      storage: world.storage.view(i),
      storageKey: 'grant',
      fetch: world.fetchFor(i),
      timeoutMs: TIMEOUT_MS,
      retry: { attempts: sc.attempts, baseDelayMs: 10, maxDelayMs: MAX_DELAY_MS },
      onStorageError: (error) => void storageErrors.push(error),
    }),
  )
  const calls: Call[] = []
  const cleared: { called?: number; resolved?: number }[] = clients.map(() => ({}))

  function launch(i: number, a: Action): Promise<unknown> {
    const client = clients[i]!
    const call: Call = { client: i, action: a, start: world.note(`c${i} calls ${describeAction(a)}`), startTime: Date.now(), reason: new Error(`c${i} gave up`) }
    calls.push(call)
    const controller = new AbortController()
    const signal = a.kind !== 'clear' && a.abort !== 'none' ? controller.signal : undefined
    if (a.kind === 'get' && a.abort === 'before') controller.abort(call.reason)
    if (signal && !signal.aborted) void s.schedule(Promise.resolve(), `c${i} aborts`).then(() => controller.abort(call.reason))
    let promise: Promise<unknown>
    if (a.kind === 'get') promise = client.getAccessToken({ forceRefresh: a.force, ...(signal && { signal }) })
    else if (a.kind === 'fetch') promise = client.fetch(API_URL, { headers: { 'x-answer': String(a.answer), 'x-call': String(call.start) }, ...(signal && { signal }) })
    else {
      cleared[i]!.called ??= call.start
      promise = client.clear()
    }
    return promise.then(
      (value) => {
        call.settled = { seq: world.note(`c${i} ${describeAction(a)} -> ${value instanceof Response ? value.status : String(value)}`), time: Date.now(), value }
        if (typeof value === 'string') world.handOut(i, value, 'getAccessToken returned')
        if (a.kind === 'clear') cleared[i]!.resolved ??= call.settled.seq
      },
      (error: unknown) => {
        const code = error instanceof OAuthRefreshError ? error.code : error === call.reason ? 'abort reason' : inspect(error)
        call.settled = { seq: world.note(`c${i} ${describeAction(a)} rejects ${code}`), time: Date.now(), error }
      },
    )
  }

  sc.clients.forEach((callers, i) =>
    callers.forEach(async (actions) => {
      for (const a of actions) await s.schedule(Promise.resolve(), `c${i} starts ${describeAction(a)}`).then(() => launch(i, a))
    }),
  )
  let afterFaults: Call[] = []
  let reachable: boolean[] = []
  try {
    await drive(s, world, sc.calm)
    world.faultsStopped = true
    world.note('the faults stop')
    // Two rounds: a client may learn in the first that its grant moved on (from another's answer).
    for (let round = 0; round < 2; round++) {
      reachable = clients.map((_, i) => world.storage.landed.has(world.current) || world.learned[i]! >= world.current)
      const first = calls.length
      for (const i of clients.keys()) void launch(i, { kind: 'get', force: false, abort: 'none' })
      afterFaults = calls.slice(first)
      // Answers now come before any timer: time passes only while nothing else can happen.
      await drive(s, world, Infinity)
    }
  } finally {
    vi.unstubAllGlobals()
  }

  // 1. Every call settles, in time, with a token or a typed error.
  for (const call of calls) {
    const name = `c${call.client} ${describeAction(call.action)} #${call.start}`
    const { settled } = call
    if (!settled) {
      world.violation('1 every call settles', `${name} never settled`)
      continue
    }
    // The bound is per wait; a forced call that joined a flight which only read storage waits
    // twice. A few ms of slack: every scheduler step takes 1 ms.
    const bound = (call.action.kind === 'get' && call.action.force ? 2 : 1) * maxWaitMs + 20
    if (call.action.kind !== 'fetch' && settled.time - call.startTime > bound) {
      world.violation('1 every call settles', `${name} took ${settled.time - call.startTime} ms, over ${bound}`)
    }
    if ('error' in settled && !(settled.error instanceof OAuthRefreshError) && settled.error !== call.reason) {
      world.violation('1 every call settles', `${name} rejected with ${inspect(settled.error)}`)
    }
    if (call.action.kind === 'get' && 'value' in settled && !world.issued.has(String(settled.value))) {
      world.violation('1 every call settles', `${name} returned ${String(settled.value)}, not an issued token`)
    }
  }

  // 7. forceRefresh gets a token that nobody had been handed when it was called. Without a lock,
  // a storage read may return another client's token obtained while it ran: not checked there.
  for (const call of single || locked ? calls : []) {
    const value = call.action.kind === 'get' && call.action.force ? call.settled?.value : undefined
    const before = world.handedOut.find(({ token, seq }) => token === value && seq < call.start)
    if (before) world.violation('7 forceRefresh gets a new token', `c${call.client} #${call.start} got ${String(value)}, handed out at #${before.seq}`)
  }

  // 3. A rotation whose access token anyone got is in storage (or a newer one), unless the grant
  // was cleared or revoked, its current refresh token never reached storage (lost with an answer,
  // or with a write that hung), or writing that very rotation failed (it is then kept in memory). Clients that share storage without a lock
  // can overwrite each other's rotation: not checked.
  const rotations = world.handedOut.map(({ token }) => world.issued.get(token)).filter((issued) => issued?.rotated)
  const newest = Math.max(0, ...rotations.map((issued) => issued!.chain))
  const stored = world.storage.value?.refreshToken
  const exempt = !(single || locked) || cleared.some((c) => c.called) || world.dead || !world.storage.landed.has(world.current) || world.storage.failedWrites.some((w) => w.chain === newest)
  if (newest > 0 && !exempt && chainIndex(stored) < newest) {
    world.violation('3 no lost rotation', `storage holds ${stored ?? 'nothing'} though ${refreshTokenOf(newest)} was handed out`)
  }

  // 4. After clear() resolves, that client hands out no token and does not store the grant again.
  cleared.forEach(({ resolved }, i) => {
    if (resolved === undefined) return
    for (const { client, token, seq } of world.handedOut) {
      if (client === i && seq > resolved) world.violation('4 clear() wins', `c${i} handed out ${token} at #${seq} after clear() resolved at #${resolved}`)
    }
    if (world.storage.writer === i && world.storage.value && !world.storage.failedDeletes.includes(i)) {
      world.violation('4 clear() wins', `storage holds ${world.storage.value.refreshToken}, written by c${i} after its clear()`)
    }
  })

  // 8. Once the faults stop, every client gets a token (in the time 1 bounds) by its second call,
  // unless the grant ended (revoked or cleared) or, when that call began, its current refresh
  // token was out of the client's reach: neither in storage nor ever seen by it (an answer lost, a
  // write that failed or hung). Clients that share storage without a lock can roll each other
  // back: not checked.
  const ended = world.dead || cleared.some((c) => c.called !== undefined) || !(single || locked)
  for (const { client, settled } of ended ? [] : afterFaults) {
    if (reachable[client] && settled && 'error' in settled) {
      const { error } = settled
      world.violation('8 no error outlives its fault', `c${client} got ${error instanceof OAuthRefreshError ? error.code : inspect(error)} after the faults stopped`)
    }
  }

  // 6. No error shows a secret.
  const errors = [...storageErrors, ...calls.map((call) => call.settled?.error).filter((error) => error !== undefined)]
  for (const error of errors) {
    const shown = `${inspect(error, { depth: 10 })} ${JSON.stringify(error)} ${String(error)}`
    if (SECRETS.test(shown)) world.violation('6 no secret in errors', shown.match(SECRETS)![0])
  }

  if (world.violations.length > 0) throw new Error(`${world.violations.join('\n')}\n--- trace ---\n${world.trace.join('\n')}`)
}

it(`holds its properties under generated schedules (seed ${SEED}, ${RUNS} runs)`, async () => {
  console.log(`races: seed ${SEED}, ${RUNS} runs; a failure gives its seed and path, replay it with ${REPLAY_COMMAND}${LONG ? '' : `; ${SEARCH_COMMAND} searches longer from a random seed`}`)
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 })
  // Backoff jitter is the only other randomness: fixed, so a seed replays exactly.
  const random = vi.spyOn(Math, 'random').mockReturnValue(0.5)
  try {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), scenario, check),
      { seed: SEED, numRuns: RUNS, ...(process.env.RACES_PATH && { path: process.env.RACES_PATH }) },
    )
  } finally {
    random.mockRestore()
    vi.useRealTimers()
  }
}, 600_000)
