import type { Scheduler } from 'fast-check'
import type { StoredTokenSet, TokenStorage } from '../../src/index.js'

// In-process doubles for the property suite: every answer and every storage operation completes
// when the fast-check scheduler says so, and the world records what each client saw and did.

export const SECRET = 'SECRET-q7'
const LEASE_MS = 2_000
export const TOKEN_URL = 'https://auth.test/token'
export const API_URL = 'https://api.test/data'
export const refreshTokenOf = (index: number) => `RT-${index}-q7`
const accessTokenOf = (index: number) => `AT-${index}-q7`
/** Any secret or token the doubles hand out. */
export const SECRETS = /(?:RT|AT)-\d+-q7|SECRET-q7/
/** The position of a refresh token in the grant's rotation chain; -1 for none. */
export const chainIndex = (token: string | undefined) => Number(/^RT-(\d+)-q7$/.exec(token ?? '')?.[1] ?? -1)

/**
 * What the token endpoint does with one request: `ok` keeps the refresh token, `rotate` issues a
 * new one, `invalid_grant` revokes the grant, `500`/`503`/`refused` do nothing, `lost` processes
 * it and drops the answer (a network error), `timeout` processes it and never answers, `hang`
 * never even receives it.
 */
export type Outcome = 'ok' | 'rotate' | 'invalid_grant' | '500' | '503' | 'refused' | 'lost' | 'timeout' | 'hang'
/** `hang`: the operation never completes, as when a Worker request is cancelled mid-refresh. */
export type StorageFault = 'ok' | 'fail' | 'stale' | 'hang'

export interface WorldPlan {
  outcomes: Outcome[]
  /** A spent refresh token presented again revokes the whole grant (RFC 9700 §4.14.2). */
  revokeOnReuse: boolean
  expiresIn: number | undefined
  storageFaults: StorageFault[]
  /** Reads may answer an older value (eventual consistency). */
  staleReads: boolean
  /** The clients share a lock around each refresh. */
  locked: boolean
  /** The storage has its own lock, a lease (`TokenStorage.lock`). */
  lease: boolean
  /** One client, or clients that share a lock. */
  coordinated: boolean
}

interface Issued {
  /** The refresh token index that was current once this access token was issued. */
  chain: number
  rotated: boolean
}

/** Rejects with the signal's reason once it aborts; never settles otherwise. */
const aborted = (signal: AbortSignal | null | undefined) =>
  new Promise<never>((_, reject) => {
    if (signal?.aborted) reject(signal.reason)
    signal?.addEventListener('abort', () => reject(signal.reason))
  })

export class World {
  readonly trace: string[] = []
  readonly violations: string[] = []
  seq = 0
  // The authorization server's view of the one grant.
  current = 0
  nextChain = 1
  dead = false
  readonly issued = new Map<string, Issued>()
  readonly refused = new Set<string>()
  private readonly refusedFor = new Map<string, string>()
  private outcomeIndex = 0
  // What each client has seen of the rotation chain (answers it got, values it read or wrote).
  readonly learned: number[] = []
  readonly tokenRequestsInFlight: number[] = []
  tokenRequestsInFlightTotal = 0
  readonly stale: Map<string, number>[] = []
  readonly handedOut: { client: number; token: string; seq: number }[] = []
  readonly storage: ScheduledStorage
  /** Set once the run's faults are over: every later answer rotates and every storage call succeeds. */
  faultsStopped = false

  constructor(
    readonly s: Scheduler,
    readonly plan: WorldPlan,
    inner: TokenStorage,
    clients: number,
  ) {
    for (let i = 0; i < clients; i++) {
      this.learned.push(0)
      this.tokenRequestsInFlight.push(0)
      this.stale.push(new Map())
    }
    this.storage = new ScheduledStorage(this, inner)
  }

  note(line: string): number {
    this.trace.push(`${++this.seq} ${line}`)
    return this.seq
  }

  violation(property: string, detail: string) {
    this.violations.push(`${property}: ${detail}`)
    this.note(`VIOLATION ${property}: ${detail}`)
  }

  learn(client: number, token: string | undefined) {
    this.learned[client] = Math.max(this.learned[client]!, chainIndex(token))
  }

  /** The `fetch` option of client `client`: the token endpoint and the API, both scheduled. */
  fetchFor(client: number): typeof fetch {
    return (input, init) => {
      const url = String(input instanceof Request ? input.url : input)
      return url === TOKEN_URL ? this.tokenRequest(client, init ?? {}) : this.apiRequest(client, init ?? {})
    }
  }

  private async tokenRequest(client: number, init: RequestInit): Promise<Response> {
    const sent = new URLSearchParams(String(init.body)).get('refresh_token') ?? ''
    const outcome = (!this.faultsStopped && this.plan.outcomes[this.outcomeIndex++]) || 'rotate'
    const inFlight = ++this.tokenRequestsInFlight[client]!
    const total = ++this.tokenRequestsInFlightTotal
    this.note(`c${client} token request with ${sent} (${outcome})`)
    if (inFlight > 1) this.violation('2 one token request per client', `c${client} has ${inFlight} in flight`)
    if (this.plan.locked && total > 1) this.violation('2 one token request with a lock', `${total} in flight`)
    // Clients sharing storage without a lock can roll each other back: not checked there.
    if (this.plan.coordinated && chainIndex(sent) < this.learned[client]!) {
      this.violation('3 no spent refresh token', `c${client} sent ${sent} after it saw ${refreshTokenOf(this.learned[client]!)}`)
    }
    const stored = chainIndex(this.storage.value?.refreshToken)
    if (this.plan.locked && chainIndex(sent) < stored) {
      this.violation('3 no spent refresh token', `c${client} sent ${sent} while storage holds its successor`)
    }
    this.learn(client, sent)
    try {
      return await Promise.race([this.answer(client, sent, outcome, init.signal), aborted(init.signal)])
    } finally {
      this.tokenRequestsInFlight[client]!--
      this.tokenRequestsInFlightTotal--
    }
  }

  private async answer(client: number, sent: string, outcome: Outcome, signal: AbortSignal | null | undefined): Promise<Response> {
    if (outcome === 'hang') return aborted(signal)
    await this.s.schedule(Promise.resolve(), `c${client} token request arrives`)
    if (signal?.aborted) return aborted(signal)
    if (outcome === 'refused') throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } })
    if (outcome === '500' || outcome === '503') return this.respond(client, Number(outcome), { error: 'server_error' })
    const result = this.process(sent, outcome)
    this.note(`server: ${sent} -> ${result.access_token ? `${result.access_token}${result.refresh_token ? ` + ${result.refresh_token}` : ''}` : result.error}`)
    if (outcome === 'timeout') return aborted(signal)
    if (outcome === 'lost') {
      await this.s.schedule(Promise.resolve(), `c${client} answer is lost`)
      throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } })
    }
    const response = await this.respond(client, result.access_token ? 200 : 400, result)
    if (result.refresh_token && !signal?.aborted) this.learn(client, String(result.refresh_token))
    return response
  }

  private async respond(client: number, status: number, body: object): Promise<Response> {
    await this.s.schedule(Promise.resolve(), `c${client} token answer ${status}`)
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })
  }

  private process(sent: string, outcome: Outcome): Record<string, string | number> {
    const index = chainIndex(sent)
    if (this.dead) return { error: 'invalid_grant', error_description: `grant of ${sent} is revoked` }
    if (index !== this.current) {
      if (this.plan.revokeOnReuse) this.dead = true
      return { error: 'invalid_grant', error_description: `${sent} was already used` }
    }
    if (outcome === 'invalid_grant') {
      this.dead = true
      return { error: 'invalid_grant' }
    }
    const rotated = outcome !== 'ok'
    if (rotated) this.current = this.nextChain++
    const accessToken = accessTokenOf(this.issued.size)
    this.issued.set(accessToken, { chain: this.current, rotated })
    return {
      access_token: accessToken,
      token_type: 'Bearer',
      ...(this.plan.expiresIn === undefined ? {} : { expires_in: this.plan.expiresIn }),
      ...(rotated ? { refresh_token: refreshTokenOf(this.current) } : {}),
    }
  }

  private async apiRequest(client: number, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers)
    const token = /^Bearer (.*)$/.exec(headers.get('authorization') ?? '')?.[1] ?? ''
    const call = headers.get('x-call') ?? ''
    const refusedBefore = this.refusedFor.get(call)
    // A replay shows the client has read the 401: from now on that token is stale to it.
    if (refusedBefore) this.markStale(client, refusedBefore)
    this.handOut(client, token, refusedBefore ? 'API replay' : 'API request')
    const refuse = headers.get('x-answer') === '401' || !this.issued.has(token) || this.refused.has(token)
    await Promise.race([this.s.schedule(Promise.resolve(), `c${client} API answer`), aborted(init.signal)])
    if (!refuse) return new Response('ok')
    this.refused.add(token)
    this.refusedFor.set(call, token)
    this.note(`c${client} API: 401 for ${token}`)
    return new Response(null, { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' } })
  }

  /** A token given to a caller or sent to the API: property 5 says it is never a stale one. */
  handOut(client: number, token: string, how: string) {
    const seq = this.note(`c${client} ${how} with ${token}`)
    this.handedOut.push({ client, token, seq })
    const staleSince = this.stale[client]!.get(token)
    if (staleSince !== undefined) this.violation('5 no stale token again', `c${client} handed out ${token}, refused by the API at #${staleSince}`)
  }

  private markStale(client: number, token: string) {
    if (!this.stale[client]!.has(token)) this.stale[client]!.set(token, this.seq)
  }
}

/**
 * A storage whose every operation completes when the scheduler says, with generated failures and,
 * where enabled, reads that answer an older value. Each client gets a view that tags its calls.
 */
export class ScheduledStorage {
  pending = 0
  private faultIndex = 0
  private readonly history: (StoredTokenSet | undefined)[] = [undefined]
  value: StoredTokenSet | undefined
  writer: number | undefined
  /** Writes that failed or hang. */
  readonly failedWrites: { client: number; chain: number }[] = []
  readonly failedDeletes: number[] = []
  /** The rotation chain positions of every refresh token that storage ever held. */
  readonly landed = new Set<number>()
  private leaseTail: Promise<void> = Promise.resolve()
  private holder: number | undefined
  private holderDead = false

  constructor(
    private readonly world: World,
    private readonly inner: TokenStorage,
  ) {}

  private async op<T>(client: number, name: string, run: (fault: StorageFault) => Promise<T>, onHang?: () => void): Promise<T> {
    this.pending++
    try {
      await this.world.s.schedule(Promise.resolve(), `c${client} storage.${name}`)
    } finally {
      this.pending--
    }
    const fault = (!this.world.faultsStopped && this.world.plan.storageFaults[this.faultIndex++]) || 'ok'
    // clear() has no bound of its own: its delete never hangs here.
    if (fault === 'hang' && name !== 'delete') {
      this.world.note(`c${client} storage.${name} hangs`)
      if (this.holder === client) this.holderDead = true
      onHang?.()
      return new Promise<never>(() => {})
    }
    if (fault === 'fail') {
      this.world.note(`c${client} storage.${name} fails`)
      throw new Error(`storage.${name} is unavailable`)
    }
    return run(fault)
  }

  /**
   * An in-process lease: one holder at a time, first come first served, each acquisition a
   * scheduled step. The holder renews it while it lives; a holder whose storage call hung (its
   * Worker request was cancelled) is dead, and its lease ends a lease term later.
   */
  private async lease<T>(client: number, task: () => Promise<T>): Promise<T> {
    const turn = this.leaseTail
    let release!: () => void
    this.leaseTail = new Promise((resolve) => (release = resolve))
    await turn
    await this.world.s.schedule(Promise.resolve(), `c${client} takes the lease`)
    this.holder = client
    this.holderDead = false
    this.world.note(`c${client} holds the lease`)
    let timer: ReturnType<typeof setTimeout>
    const renew = () => {
      if (!this.holderDead) timer = setTimeout(renew, LEASE_MS)
      else if (this.holder === client) {
        this.holder = undefined
        this.world.note(`the lease of c${client} expires`)
        release()
      }
    }
    timer = setTimeout(renew, LEASE_MS)
    try {
      return await task()
    } finally {
      clearTimeout(timer)
      this.holder = undefined
      this.world.note(`c${client} releases the lease`)
      release()
    }
  }

  view(client: number): TokenStorage {
    const storage: TokenStorage = {
      ...(this.world.plan.lease && { lock: <T>(_key: string, task: () => Promise<T>) => this.lease(client, task) }),
      get: (key) =>
        this.op(client, 'get', async (fault) => {
          // Eventual consistency: the last value stored before the current one.
          const stale = fault === 'stale' && this.world.plan.staleReads && this.history.length > 1
          const value = stale ? this.history.slice(0, -1).reverse().find((older) => older !== undefined) : await this.inner.get(key)
          this.world.note(`c${client} storage.get -> ${value?.refreshToken ?? 'nothing'}${stale ? ' (stale)' : ''}`)
          this.world.learn(client, value?.refreshToken)
          return value && { ...value }
        }),
      set: (key, value) => {
        const fail = () => void this.failedWrites.push({ client, chain: chainIndex(value.refreshToken) })
        return this.op(client, 'set', async (fault) => {
          await this.inner.set(key, value)
          this.record(client, { ...value })
          this.world.learn(client, value.refreshToken)
          this.world.note(`c${client} storage.set <- ${value.refreshToken} (${fault})`)
        }, fail).catch((error: unknown) => {
          fail()
          throw error
        })
      },
      delete: (key) =>
        this.op(client, 'delete', async () => {
          await this.inner.delete(key)
          this.record(client, undefined)
          this.world.note(`c${client} storage.delete`)
        }).catch((error: unknown) => {
          this.failedDeletes.push(client)
          throw error
        }),
    }
    return storage
  }

  private record(client: number, value: StoredTokenSet | undefined) {
    this.value = value
    this.writer = client
    if (value) this.landed.add(chainIndex(value.refreshToken))
    this.history.push(value)
  }
}

/**
 * An in-process model of the Web Locks API (`navigator.locks.request`) shared by the clients:
 * one holder at a time, first come first served, each acquisition a scheduled step; a request
 * whose `signal` aborts before its turn leaves the queue, rejected with the signal's reason.
 */
export class WebLocks {
  private tail: Promise<unknown> = Promise.resolve()

  constructor(private readonly world: World) {}

  request<T>(name: string, options: { signal?: AbortSignal }, run: () => Promise<T>): Promise<T> {
    const { signal } = options
    const turn = this.tail.then(() => this.world.s.schedule(Promise.resolve(), `a client acquires ${name}`))
    const result = Promise.race([
      turn.then(() => {
        if (signal?.aborted) throw signal.reason
        this.world.note('a client holds the Web Lock')
        return run()
      }),
      aborted(signal),
    ])
    const released = () => void this.world.note('the Web Lock is released')
    this.tail = turn.then(() => (signal?.aborted ? undefined : result.then(released, released)))
    return result
  }
}
