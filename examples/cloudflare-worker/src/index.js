// A Worker that proxies an upstream API and attaches an access token from oauth-refresh. The
// grant lives in Workers KV, so a rotated refresh token survives new isolates and deploys.
import { createRefreshClient } from 'oauth-refresh'
import { cloudflareKVStorage } from 'oauth-refresh/cloudflare-kv'

/**
 * @typedef {object} Env
 * @property {import('oauth-refresh/cloudflare-kv').KVNamespaceLike} TOKENS KV namespace for the grant.
 * @property {string} OAUTH_TOKEN_URL
 * @property {string} OAUTH_CLIENT_ID
 * @property {string} [OAUTH_CLIENT_SECRET] A secret (`wrangler secret put`).
 * @property {string} [OAUTH_REFRESH_TOKEN] A secret; needed until the first refresh has stored a grant.
 * @property {string} UPSTREAM_URL The API to proxy, e.g. `https://api.example.com/v1`.
 */

/** Request headers passed on to the upstream API; the caller's own credentials never are. */
const FORWARDED_HEADERS = ['accept', 'accept-language', 'content-type', 'if-match', 'if-none-match']

/** @type {import('oauth-refresh').RefreshClient | undefined} */
let client

/**
 * One client per isolate, created on the first request (env is not available at module scope),
 * so the concurrent requests of an isolate share one refresh.
 *
 * @param {Env} env
 */
function getClient(env) {
  client ??= createRefreshClient({
    tokenUrl: env.OAUTH_TOKEN_URL,
    clientId: env.OAUTH_CLIENT_ID,
    clientSecret: env.OAUTH_CLIENT_SECRET,
    refreshToken: env.OAUTH_REFRESH_TOKEN,
    storage: cloudflareKVStorage(env.TOKENS, { prefix: 'upstream:' }),
    // The token goes to the upstream API only, whatever path a caller asks for.
    allowedOrigins: [new URL(env.UPSTREAM_URL).origin],
  })
  return client
}

export default {
  /**
   * @param {Request} request
   * @param {Env} env
   */
  async fetch(request, env) {
    const { pathname, search } = new URL(request.url)
    const target = `${env.UPSTREAM_URL.replace(/\/$/, '')}${pathname}${search}`
    const headers = new Headers()
    for (const name of FORWARDED_HEADERS) {
      const value = request.headers.get(name)
      if (value !== null) headers.set(name, value)
    }
    // Read the body once, so the client can send it again after a 401.
    const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.arrayBuffer()
    try {
      return await getClient(env).fetch(target, { method: request.method, headers, body })
    } catch (error) {
      // An SDK error names what failed (e.g. OAUTH_ERROR for a refused grant) and never a secret.
      console.error('oauth-refresh proxy:', error.name, error.code)
      return Response.json({ error: 'token_unavailable', code: error.code }, { status: 502 })
    }
  },
}
