// Calls the API once with an access token from oauth-refresh, as a script run by cron would: each
// run resumes the grant (the refresh token rotated by the last run) from Deno KV. See README.md.
import { NoGrantError, OAuthError } from 'oauth-refresh'
import { apiUrl, client, kv } from './client.ts'

try {
  const response = await client.fetch(apiUrl)
  console.log(`${response.status} ${response.statusText}`)
  console.log(await response.text())
  if (!response.ok) Deno.exitCode = 1
} catch (error) {
  if (error instanceof NoGrantError || (error instanceof OAuthError && error.error === 'invalid_grant')) {
    console.error('The grant has ended: sign in again and set a new OAUTH_REFRESH_TOKEN.')
  } else {
    console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
  }
  Deno.exitCode = 1
} finally {
  kv.close()
}
