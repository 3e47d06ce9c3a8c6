// Calls an API with an access token from oauth-refresh. The grant lives in a file, so the refresh
// token a provider rotates on each refresh survives to the next run. Configuration: README.md.
import { createRefreshClient, OAuthError } from 'oauth-refresh'
import { fileStorage } from './file-storage.mjs'

/** @param {string} name */
function required(name) {
  const value = process.env[name]
  if (!value) throw new Error(`Set ${name} (see README.md)`)
  return value
}

const client = createRefreshClient({
  tokenUrl: required('OAUTH_TOKEN_URL'),
  clientId: required('OAUTH_CLIENT_ID'),
  clientSecret: process.env.OAUTH_CLIENT_SECRET,
  // Needed on the first run only: later runs resume the rotated token from the file.
  refreshToken: process.env.OAUTH_REFRESH_TOKEN,
  scope: process.env.OAUTH_SCOPE,
  storage: fileStorage(process.env.TOKEN_FILE ?? '.oauth-refresh.json'),
})

try {
  const response = await client.fetch(required('API_URL'))
  console.log(`${response.status} ${response.statusText}`)
  console.log(await response.text())
  if (!response.ok) process.exitCode = 1
} catch (error) {
  if (error instanceof OAuthError && error.error === 'invalid_grant') {
    console.error('The refresh token was refused: sign in again and set a new OAUTH_REFRESH_TOKEN.')
  } else {
    console.error(`${error.name} (${error.code ?? 'no code'}): ${error.message}`)
  }
  process.exitCode = 1
}
