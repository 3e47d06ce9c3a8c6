import { createServer } from 'node:http'

/**
 * A lean protected API on loopback. examples/local-server's API logs every request with its
 * headers, garbage that would land in the heap being measured; this one asks that API once per
 * new access token whether it is valid (a resource server caching introspection), then only
 * looks the token up. It listens with a backlog deep enough for a storm of 1,000 connections.
 *
 * @param {string} upstreamApiUrl examples/local-server's `apiUrl`, the judge of new tokens
 * @returns {Promise<{ apiUrl: string, close(): Promise<void> }>}
 */
export async function startLeanApi(upstreamApiUrl) {
  /** @type {Map<string, Promise<boolean>>} Authorization header → verdict */
  const verdicts = new Map()

  async function ask(authorization) {
    const response = await fetch(upstreamApiUrl, { headers: { authorization } })
    await response.arrayBuffer()
    return response.status === 200
  }

  const server = createServer(async (request, response) => {
    request.resume()
    const { authorization } = request.headers
    let verdict = false
    if (typeof authorization === 'string') {
      if (!verdicts.has(authorization)) verdicts.set(authorization, ask(authorization))
      verdict = await verdicts.get(authorization)
    }
    response.writeHead(verdict ? 200 : 401, { 'content-type': 'application/json' })
    response.end(verdict ? '{"ok":true}' : '{"error":"invalid_token"}')
  })
  await new Promise((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 2048 }, resolve))
  return {
    apiUrl: `http://127.0.0.1:${server.address().port}/api`,
    close: () =>
      new Promise((resolve) => {
        server.close(resolve)
        server.closeAllConnections()
      }),
  }
}
