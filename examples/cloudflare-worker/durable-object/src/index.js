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

export default {
  /**
   * @param {Request} request
   * @param {Env} env
   */
  fetch(request, env) {
    // Kept at module scope: the isolate reuses the token and asks the object once per token.
    client ??= createGrantClient(env.GRANTS, 'upstream', { allowedOrigins: [new URL(env.UPSTREAM_URL).origin] })
    return proxy(request, env.UPSTREAM_URL, client)
  },
}
