import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { denoKVPlace, holderConfig, RACE_SERVER, rotationRace } from '../../bench/figures/deno-kv.mjs'
import { startLocalServer, type LocalServer } from '../../examples/local-server/server.mjs'
import { installPackedPackage, type Consumer } from './support/package.js'
import { describeFailingHolders } from './support/pause.js'

// Deno processes (`npx deno`) on the packed package share one grant in one Deno KV file.
let consumer: Consumer
let place: Awaited<ReturnType<typeof denoKVPlace>>
const servers: LocalServer[] = []

beforeAll(async () => {
  consumer = await installPackedPackage()
  place = await denoKVPlace({ entries: { core: await consumer.entry(), denoKV: await consumer.entry('./deno-kv') } })
})
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()))
  await place?.close()
  await consumer?.remove()
})

describe('oauth-refresh/deno-kv across Deno processes', () => {
  it('three processes, 50 concurrent calls each, 5 rounds each finding the token due, rotation with revocation on reuse: one token request per round, no failed call, the grant alive', async () => {
    const rounds = 5
    const server = await startLocalServer(RACE_SERVER)
    servers.push(server)
    const kvPath = place.kvPath()
    const run = await rotationRace(place, server, { kvPath, processes: 3, concurrency: 50, rounds, leaseMs: 2000 })
    expect(run.errors).toEqual({})
    expect(run.ok).toBe(3 * 50 * rounds)
    expect(server.tokenRequests, 'one token request per round: the first and 4 expiries').toHaveLength(rounds)
    expect(server.grantRevoked).toBe(false)
    // Alive: a new process refreshes with the stored, rotated refresh token.
    const rotated = server.validRefreshToken
    server.revokeAccessTokens()
    const next = await place.start({ ...holderConfig(server, kvPath), leaseMs: 2000, lock: true, mode: 'rounds', rounds: 1, periodMs: 0, concurrency: 1 })
    next.go(Date.now())
    expect(await next.next()).toEqual({ ok: 1, errors: {} })
    expect(server.tokenRequests.at(-1)!.form.refresh_token).toBe(rotated)
  })

  describeFailingHolders(() => place, () => place.kvPath())
})
