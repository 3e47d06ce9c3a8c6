import * as oauth from 'oauth4webapi'

/**
 * oauth4webapi with the obvious user code around its refresh functions: cache the token until
 * it expires, keep a rotated refresh token. oauth4webapi offers no single flight and no retry
 * on 401, and this code adds neither: it is what a typical user writes, not a tuned version.
 *
 * @param {{ tokenUrl: string, clientId: string, clientSecret: string, refreshToken: string }} options
 * @returns {(input: string | URL, init?: RequestInit) => Promise<Response>}
 */
export function createAuthorizedFetch({ tokenUrl, clientId, clientSecret, refreshToken }) {
  const url = new URL(tokenUrl)
  const as = { issuer: url.origin, token_endpoint: url.href }
  const client = { client_id: clientId }
  const clientAuth = oauth.ClientSecretBasic(clientSecret)
  // The benchmark's token server is plain http on loopback.
  const options = { [oauth.allowInsecureRequests]: url.protocol === 'http:' }
  let token

  async function getAccessToken() {
    if (token && token.expiresAt > Date.now()) return token.accessToken
    const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshToken, options)
    const result = await oauth.processRefreshTokenResponse(as, client, response)
    if (result.refresh_token) refreshToken = result.refresh_token
    token = { accessToken: result.access_token, expiresAt: Date.now() + (result.expires_in ?? 3600) * 1000 }
    return token.accessToken
  }

  return async (input, init) => {
    const headers = new Headers(init?.headers)
    headers.set('authorization', `Bearer ${await getAccessToken()}`)
    return fetch(input, { ...init, headers })
  }
}
