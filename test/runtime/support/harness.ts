import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { LocalServer } from '../../../examples/local-server/server.mjs'

/** A file the harness serves. */
export interface StaticFile {
  body: string
  type: string
}

/**
 * The test side of a runtime run, in front of the local server:
 * - `/control/revoke` (POST) and `/control/token-requests` (GET) let code inside a runtime (a child
 *   process, a page, a worker) revoke access tokens and count token requests;
 * - `/token`, `/revoke` and `/api/**` are forwarded to the local server with CORS headers, so a page reaches
 *   the token endpoint and the API across origins, as it would at a real provider;
 * - any other path is one of `files`.
 * It listens twice: the page runs on `pageOrigin` and calls `apiOrigin`, a different origin.
 */
export interface Harness {
  pageOrigin: string
  apiOrigin: string
  /** Adds or replaces a served file, e.g. `/index.html`. */
  serve(path: string, file: StaticFile): void
  close(): Promise<void>
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE',
  'access-control-allow-headers': 'authorization, content-type, dpop',
  'access-control-expose-headers': 'www-authenticate, dpop-nonce',
  'access-control-max-age': '600',
}

/** Starts the harness for `server`. */
export async function startHarness(server: LocalServer): Promise<Harness> {
  const files = new Map<string, StaticFile>()
  const target = new URL(server.origin)

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const upstream = request(new URL(req.url ?? '/', target), { method: req.method, headers: { ...req.headers, host: target.host, 'x-forwarded-host': req.headers.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, { ...answer.headers, ...CORS })
      answer.pipe(res)
    })
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
  }

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost')
    if (req.method === 'OPTIONS') {
      res.writeHead(204, CORS)
      return res.end()
    }
    if (pathname === '/control/revoke' && req.method === 'POST') {
      server.revokeAccessTokens()
      res.writeHead(204, CORS)
      return res.end()
    }
    if (pathname === '/control/token-requests') {
      res.writeHead(200, { ...CORS, 'content-type': 'application/json', 'cache-control': 'no-store' })
      return res.end(JSON.stringify({ count: server.tokenRequests.length }))
    }
    if (pathname === '/token' || pathname === '/revoke' || pathname === '/api' || pathname.startsWith('/api/')) return forward(req, res)
    const file = files.get(pathname === '/' ? '/index.html' : pathname)
    res.writeHead(file ? 200 : 404, { 'content-type': file?.type ?? 'text/plain', 'cache-control': 'no-store' })
    res.end(file?.body ?? 'Not Found')
  }

  const listen = async (): Promise<[Server, string]> => {
    const listener = createServer(handle)
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
    return [listener, `http://127.0.0.1:${(listener.address() as AddressInfo).port}`]
  }
  const [[page, pageOrigin], [api, apiOrigin]] = await Promise.all([listen(), listen()])

  return {
    pageOrigin,
    apiOrigin,
    serve: (path, file) => void files.set(path, file),
    close: async () => {
      await Promise.all(
        [page, api].map(
          (listener) =>
            new Promise<void>((resolve) => {
              listener.close(() => resolve())
              listener.closeAllConnections()
            }),
        ),
      )
    },
  }
}
