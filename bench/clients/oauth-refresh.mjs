import { createRefreshClient } from '../../dist/index.js'

/**
 * oauth-refresh as a user writes it: one client, `client.fetch` for every request.
 *
 * @param {{ tokenUrl: string, clientId: string, clientSecret: string, refreshToken: string }} options
 * @returns {(input: string | URL, init?: RequestInit) => Promise<Response>}
 */
export function createAuthorizedFetch({ tokenUrl, clientId, clientSecret, refreshToken }) {
  const client = createRefreshClient({ tokenUrl, clientId, clientSecret, refreshToken })
  return (input, init) => client.fetch(input, init)
}
