// A Worker that proxies an upstream API and attaches an access token from oauth-refresh. The
// grant lives in Workers KV, so a rotated refresh token survives new isolates and deploys.
import { createRefreshClient } from 'oauth-refresh'
import { cloudflareKVStorage } from 'oauth-refresh/cloudflare-kv'
import { proxy } from './proxy.js'

/**
 * @typedef {object} Env
 * @property {import('oauth-refresh/cloudflare-kv').KVNamespaceLike} TOKENS KV namespace for the grant.
 * @property {string} OAUTH_TOKEN_URL
 * @property {string} OAUTH_CLIENT_ID
 * @property {string} [OAUTH_CLIENT_SECRET] A secret (`wrangler secret put`).
 * @property {string} [OAUTH_REFRESH_TOKEN] A secret; needed until the first refresh has stored a grant.
 * @property {string} UPSTREAM_URL The API to proxy, e.g. `https://api.example.com/v1`.
 */

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
  fetch: (request, env) => proxy(request, env.UPSTREAM_URL, getClient(env)),
}
