// The same proxy with the grant kept in a Durable Object: the object performs every refresh, so
// all isolates of the Worker, in every location, make one token request per expiry between them.
import { createGrantClient, RefreshGrantObject } from 'oauth-refresh/durable-object'
import { proxy } from '../../src/proxy.js'

/**
 * @typedef {object} Env
 * @property {import('oauth-refresh/durable-object').GrantNamespaceLike} GRANTS The `Grants` binding.
 * @property {string} OAUTH_TOKEN_URL
 * @property {string} OAUTH_CLIENT_ID
 * @property {string} [OAUTH_CLIENT_SECRET] A secret (`wrangler secret put`).
 * @property {string} [OAUTH_REFRESH_TOKEN] A secret; needed until the object's first refresh has stored the grant.
 * @property {string} UPSTREAM_URL The API to proxy, e.g. `https://api.example.com/v1`.
 * @property {string} GRANT_MAX_IDLE_DAYS Refresh a grant left unused this many days, well before your provider ends idle grants.
 */

/**
 * The Durable Object that owns the grant: it keeps the rotated refresh token in its own storage.
 *
 * @extends {RefreshGrantObject<Env>}
 */
export class Grants extends RefreshGrantObject {
  /** @param {Env} env */
  options(env) {
    return {
      tokenUrl: env.OAUTH_TOKEN_URL,
      clientId: env.OAUTH_CLIENT_ID,
      clientSecret: env.OAUTH_CLIENT_SECRET,
      refreshToken: env.OAUTH_REFRESH_TOKEN,
    }
  }
}

/** @type {import('oauth-refresh').RefreshClient | undefined} */
let client

/**
 * Kept at module scope: the isolate reuses the token and asks the object once per token.
 *
 * @param {Env} env
 */
function getClient(env) {
  client ??= createGrantClient(env.GRANTS, 'upstream', { allowedOrigins: [new URL(env.UPSTREAM_URL).origin] })
  return client
}

const DAY_MS = 24 * 3600 * 1000

export default {
  /**
   * @param {Request} request
   * @param {Env} env
   */
  fetch: (request, env) => proxy(request, env.UPSTREAM_URL, getClient(env)),

  /**
   * The Cron Trigger of wrangler.toml. Many providers end a grant left unused for a while
   * (Microsoft after 90 days): the object refreshes it when its last refresh is older than
   * GRANT_MAX_IDLE_DAYS, and makes no token request otherwise.
   *
   * @param {unknown} controller
   * @param {Env} env
   */
  async scheduled(controller, env) {
    const refreshed = await getClient(env).keepAlive({ maxIdleMs: Number(env.GRANT_MAX_IDLE_DAYS) * DAY_MS })
    console.log('oauth-refresh keep-alive:', refreshed ? 'refreshed' : 'fresh')
  },
}
