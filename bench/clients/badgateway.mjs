import { OAuth2Client, OAuth2Fetch } from '@badgateway/oauth2-client'

/**
 * @badgateway/oauth2-client as its README shows it: an `OAuth2Client` and an `OAuth2Fetch`
 * wrapper seeded with an expired token that carries the refresh token, so the first request
 * refreshes it.
 *
 * @param {{ tokenUrl: string, clientId: string, clientSecret: string, refreshToken: string }} options
 * @returns {(input: string | URL, init?: RequestInit) => Promise<Response>}
 */
export function createAuthorizedFetch({ tokenUrl, clientId, clientSecret, refreshToken }) {
  const client = new OAuth2Client({ tokenEndpoint: tokenUrl, clientId, clientSecret })
  const wrapper = new OAuth2Fetch({
    client,
    getStoredToken: () => ({ accessToken: '', refreshToken, expiresAt: 0 }),
    getNewToken: () => null,
    // Its refresh timer would keep a finished benchmark process alive for the token's lifetime.
    scheduleRefresh: false,
  })
  return (input, init) => wrapper.fetch(input, init)
}
