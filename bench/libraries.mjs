import * as raw from './clients/raw.mjs'
import * as oauthRefresh from './clients/oauth-refresh.mjs'
import * as badgateway from './clients/badgateway.mjs'
import * as oauth4webapi from './clients/oauth4webapi.mjs'

/**
 * Every contender's `createAuthorizedFetch`, in the order rounds interleave them. `raw` is the
 * floor: it fetches its token once by hand and cannot refresh.
 */
export const libraries = {
  raw: raw.createAuthorizedFetch,
  'oauth-refresh': oauthRefresh.createAuthorizedFetch,
  badgateway: badgateway.createAuthorizedFetch,
  oauth4webapi: oauth4webapi.createAuthorizedFetch,
}

/** The client registration every benchmark server and client shares. */
export const grant = { clientId: 'bench-client', clientSecret: 'bench-secret', refreshToken: 'bench-refresh-token' }

/**
 * Sends `count` authorized GETs one after another and reads each body (so the connection is
 * reused); throws on the first answer that is not 200.
 *
 * @param {(input: string) => Promise<Response>} authorizedFetch
 * @param {string} url
 * @param {number} count
 */
export async function sequentialRequests(authorizedFetch, url, count) {
  for (let i = 0; i < count; i++) {
    const response = await authorizedFetch(url)
    await response.arrayBuffer()
    if (response.status !== 200) throw new Error(`API answered HTTP ${response.status}`)
  }
}
