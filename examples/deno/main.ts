// Calls an API with an access token from oauth-refresh. The grant lives in localStorage, so the
// refresh token a provider rotates on each refresh survives to the next run. See README.md.
import { createRefreshClient, OAuthError } from 'oauth-refresh'
import { webStorage } from './web-storage.ts'

function required(name: string): string {
  const value = Deno.env.get(name)
  if (!value) throw new Error(`Set ${name} (see README.md)`)
  return value
}

const client = createRefreshClient({
  tokenUrl: required('OAUTH_TOKEN_URL'),
  clientId: required('OAUTH_CLIENT_ID'),
  clientSecret: Deno.env.get('OAUTH_CLIENT_SECRET'),
  // Needed on the first run only: later runs resume the rotated token from localStorage.
  refreshToken: Deno.env.get('OAUTH_REFRESH_TOKEN'),
  scope: Deno.env.get('OAUTH_SCOPE'),
  storage: webStorage(localStorage, 'example:'),
})

try {
  const response = await client.fetch(required('API_URL'))
  console.log(`${response.status} ${response.statusText}`)
  console.log(await response.text())
  if (!response.ok) Deno.exitCode = 1
} catch (error) {
  if (error instanceof OAuthError && error.error === 'invalid_grant') {
    console.error('The refresh token was refused: sign in again and set a new OAUTH_REFRESH_TOKEN.')
  } else {
    console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  }
  Deno.exitCode = 1
}
