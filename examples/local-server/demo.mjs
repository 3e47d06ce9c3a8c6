// A tour of oauth-refresh against a real authorization server on 127.0.0.1.
// Run `npm run demo` (it builds first): this imports the built package the way a user would.
import { createRefreshClient, memoryStorage, NoGrantError, OAuthError } from 'oauth-refresh'
import { startLocalServer } from './server.mjs'

const credentials = { clientId: 'demo-client', clientSecret: 'demo-secret', refreshToken: 'demo-refresh-token' }
/** @type {import('./server.mjs').LocalServer[]} */
const servers = []

/**
 * Shows a token's shape, never its value: first and last four characters.
 * @param {string} token
 */
function mask(token) {
  return `${token.slice(0, 4)}…${token.slice(-4)}`
}

/** @param {import('./server.mjs').LocalServerOptions} [options] */
async function serve(options) {
  const server = await startLocalServer(options)
  servers.push(server)
  return server
}

/**
 * @param {number} n
 * @param {string} title
 */
function step(n, title) {
  console.log(`\n${n}. ${title}`)
}

async function main() {
  const server = await serve()
  const storage = memoryStorage()
  const client = createRefreshClient({ tokenUrl: server.tokenUrl, ...credentials, storage, storageKey: 'demo' })
  console.log(`Authorization server and API at ${server.origin}`)

  step(1, 'First refresh: getAccessToken()')
  const accessToken = await client.getAccessToken()
  console.log(`   access token ${mask(accessToken)} from ${server.tokenRequests.length} token request`)

  step(2, 'Rotation: the server issued a new refresh token, storage holds it')
  const stored = await storage.get('demo')
  if (!stored) throw new Error('storage holds no grant after a successful refresh')
  console.log(`   configured ${mask(credentials.refreshToken)}, stored ${mask(stored.refreshToken)}`)
  console.log(`   stored differs from configured: ${stored.refreshToken !== credentials.refreshToken}`)

  step(3, '100 concurrent client.fetch() calls on a fresh client share one refresh')
  const slow = await serve({ latencyMs: 100 })
  const fresh = createRefreshClient({ tokenUrl: slow.tokenUrl, ...credentials })
  const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => fresh.fetch(`${slow.apiUrl}/items/${i}`)))
  const okCount = responses.filter((res) => res.status === 200).length
  console.log(`   ${okCount} of 100 answered 200; token requests: ${slow.tokenRequests.length}`)

  step(4, 'Access tokens revoked: a 401 is recovered transparently')
  server.revokeAccessTokens()
  const before = server.tokenRequests.length
  const res = await client.fetch(`${server.apiUrl}/profile`)
  console.log(`   status ${res.status}; refreshes: ${server.tokenRequests.length - before}`)

  step(5, "Client authentication 'auto': HTTP Basic first, then the request body")
  const bodyOnly = await serve({ acceptClientAuth: 'body' })
  const auto = createRefreshClient({ tokenUrl: bodyOnly.tokenUrl, ...credentials })
  await auto.getAccessToken()
  await auto.getAccessToken({ forceRefresh: true })
  const [first, second, third] = bodyOnly.tokenRequests.map((request) => request.clientAuth)
  console.log(`   first refresh tried: ${first} → ${second}; next refresh used: ${third}`)

  step(6, 'A dead refresh token: invalid_grant is an OAuthError')
  const dead = createRefreshClient({ tokenUrl: server.tokenUrl, ...credentials, refreshToken: 'revoked-refresh-token' })
  try {
    await dead.getAccessToken()
    console.log('   unexpected: the refresh succeeded')
    process.exitCode = 1
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error
    console.log(`   ${error.name} code=${error.code} error=${error.error} status=${error.status}`)
  }

  step(7, 'Events, keep-alive, and a sign-out that revokes the grant at the provider (RFC 7009)')
  const app = await serve({ revokeOnReuse: true })
  const signedIn = createRefreshClient({ tokenUrl: app.tokenUrl, revocationUrl: app.revocationUrl, ...credentials })
  signedIn.on('refresh', ({ reason, rotated }) => console.log(`   event refresh: reason=${reason} rotated=${rotated}`))
  signedIn.on('end', ({ reason }) => console.log(`   event end: reason=${reason}`))
  await signedIn.getAccessToken()
  console.log(`   keepAlive within a day of the last refresh: refreshed=${await signedIn.keepAlive({ maxIdleMs: 86_400_000 })}`)
  const { revoked } = await signedIn.clear({ revoke: true })
  console.log(`   clear({ revoke: true }): revoked=${revoked}; the provider's grant is gone: ${app.revocations.length === 1}`)
  try {
    await signedIn.getAccessToken()
  } catch (error) {
    if (!(error instanceof NoGrantError)) throw error
    console.log(`   then: ${error.name} reason=${error.reason}`)
  }
}

try {
  await main()
} finally {
  await Promise.all(servers.map((server) => server.close()))
}
