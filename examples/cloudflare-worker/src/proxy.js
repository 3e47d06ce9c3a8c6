// What both Workers of this example do with a request: send it to the upstream API with an
// access token from oauth-refresh, passing on only a few of the caller's headers.

/** Request headers passed on to the upstream API; the caller's own credentials never are. */
const FORWARDED_HEADERS = ['accept', 'accept-language', 'content-type', 'if-match', 'if-none-match']

/**
 * Sends `request` to `upstreamUrl` plus its path, through `client.fetch`, which adds the token.
 *
 * @param {Request} request
 * @param {string} upstreamUrl The API to proxy, e.g. `https://api.example.com/v1`.
 * @param {import('oauth-refresh').RefreshClient} client
 */
export async function proxy(request, upstreamUrl, client) {
  const { pathname, search } = new URL(request.url)
  const target = `${upstreamUrl.replace(/\/$/, '')}${pathname}${search}`
  const headers = new Headers()
  for (const name of FORWARDED_HEADERS) {
    const value = request.headers.get(name)
    if (value !== null) headers.set(name, value)
  }
  // Read the body once, so the client can send it again after a 401.
  const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.arrayBuffer()
  try {
    return await client.fetch(target, { method: request.method, headers, body })
  } catch (error) {
    // An SDK error names what failed (e.g. OAUTH_ERROR for a refused grant) and never a secret.
    console.error('oauth-refresh proxy:', error.name, error.code)
    return Response.json({ error: 'token_unavailable', code: error.code }, { status: 502 })
  }
}
