// The client of main.ts and server.ts: one grant, kept in Deno KV. Every process or isolate that
// opens the same KV database shares it, and the adapter's lease keeps one refresh at a time
// among them, so a provider that rotates refresh tokens never sees a spent one. See README.md.
import { createRefreshClient } from 'oauth-refresh'
import { denoKVStorage } from 'oauth-refresh/deno-kv'

function required(name: string): string {
  const value = Deno.env.get(name)
  if (!value) throw new Error(`Set ${name} (see README.md)`)
  return value
}

export const apiUrl = required('API_URL')

// Locally a SQLite file in Deno's directory, one per main module; on Deno Deploy the app's KV.
export const kv = await Deno.openKv()

export const client = createRefreshClient({
  tokenUrl: required('OAUTH_TOKEN_URL'),
  clientId: required('OAUTH_CLIENT_ID'),
  clientSecret: Deno.env.get('OAUTH_CLIENT_SECRET'),
  // Needed on the first run only: later runs resume the rotated token from Deno KV.
  refreshToken: Deno.env.get('OAUTH_REFRESH_TOKEN'),
  scope: Deno.env.get('OAUTH_SCOPE'),
  storage: denoKVStorage(kv),
})
