/**
 * The floor: one token request by hand, then plain `fetch` with a hand-set `Authorization`
 * header. No cache, no expiry, no refresh, no single flight.
 *
 * @param {{ tokenUrl: string, clientId: string, clientSecret: string, refreshToken: string }} options
 * @returns {Promise<(input: string | URL, init?: RequestInit) => Promise<Response>>}
 */
export async function createAuthorizedFetch({ tokenUrl, clientId, clientSecret, refreshToken }) {
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa(`${clientId}:${clientSecret}`)}` },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  })
  if (!response.ok) throw new Error(`token request failed with HTTP ${response.status}`)
  const { access_token: accessToken } = await response.json()
  const headers = { authorization: `Bearer ${accessToken}` }
  return (input, init) => fetch(input, { ...init, headers })
}
