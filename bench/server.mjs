import { startLocalServer } from '../examples/local-server/server.mjs'
import { startLeanApi } from './api.mjs'
import { grant } from './libraries.mjs'

/**
 * Starts, in this thread, the loopback authorization server (examples/local-server) for the
 * shared grant, and a lean API in front of its own. Tokens live an hour and every refresh
 * rotates the refresh token, unless `options` say otherwise.
 *
 * @param {import('../examples/local-server/server.mjs').LocalServerOptions} [options]
 * @returns {Promise<{ tokenUrl: string, apiUrl: string, authorization: import('../examples/local-server/server.mjs').LocalServer, close(): Promise<void> }>}
 *   `apiUrl` is the lean API; `authorization` the local server, with its own `apiUrl` and counters.
 */
export async function startBenchServer(options) {
  // A storm opens up to 1,000 connections at once while this thread is busy sending; Node's
  // default backlog of 511 would drop SYNs and add 1 s retransmits to the figure.
  const authorization = await startLocalServer({ ...grant, expiresIn: 3600, rotate: true, backlog: 2048, ...options })
  const api = await startLeanApi(authorization.apiUrl)
  return {
    tokenUrl: authorization.tokenUrl,
    apiUrl: api.apiUrl,
    authorization,
    async close() {
      await api.close()
      await authorization.close()
    },
  }
}
