import { afterEach } from 'vitest'
import { startLocalServer, type LocalServer, type LocalServerOptions } from '../../examples/local-server/server.mjs'
import type { RefreshClientOptions } from '../../src/index.js'

const open: LocalServer[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((server) => server.close()))
})

/** Starts the local authorization server and API for one test; it is closed after the test. */
export async function serve(options?: LocalServerOptions): Promise<LocalServer> {
  const server = await startLocalServer(options)
  open.push(server)
  return server
}

/** Options for the local server's demo client, with retries fast enough for tests. */
export function demoClient(server: LocalServer, overrides: Partial<RefreshClientOptions> = {}): RefreshClientOptions {
  return {
    tokenUrl: server.tokenUrl,
    clientId: 'demo-client',
    clientSecret: 'demo-secret',
    refreshToken: 'demo-refresh-token',
    retry: { baseDelayMs: 1, maxDelayMs: 50 },
    ...overrides,
  }
}
