import { createFetch, type $Fetch, type FetchOptions } from 'ofetch'
import type { RefreshClient } from './client.js'

/**
 * An ofetch instance (`$fetch`) whose requests carry the client's access token and recover from a
 * 401 through the client's shared refresh, for users who want ofetch's JSON parsing, `baseURL`,
 * retries and hooks. `defaults` are ofetch options applied to every request.
 *
 * @example
 * import { createOFetch } from 'oauth-refresh/ofetch'
 * const api = createOFetch(client, { baseURL: 'https://api.example.com' })
 * const me = await api<{ id: string }>('/me')
 */
export function createOFetch(client: Pick<RefreshClient, 'fetch'>, defaults: FetchOptions = {}): $Fetch {
  return createFetch({ fetch: client.fetch, defaults })
}
