// The extension's service worker: it owns the client and answers the popup's messages. Chrome
// stops an idle service worker at any time; IndexedDB keeps the (rotated) grant for its next start.
import { createRefreshClient } from 'oauth-refresh'
import { indexedDBStorage } from 'oauth-refresh/indexeddb'
import { config } from './config.js'

const options = {
  tokenUrl: config.tokenUrl,
  clientId: config.clientId,
  storage: indexedDBStorage({ dbName: 'oauth-refresh-example' }),
  // The token goes to the API only.
  allowedOrigins: [new URL(config.apiUrl).origin],
}
// Without a refresh token, the client resumes the grant stored by an earlier sign-in.
let client = createRefreshClient(options)

/** Message handlers; each resolves the popup's reply. */
const handlers = {
  /** Starts a grant from a refresh token your sign-in flow obtained; the first refresh stores it. */
  async 'sign-in'({ refreshToken }) {
    client = createRefreshClient({ ...options, refreshToken })
    await client.getAccessToken()
    return { signedIn: true }
  },
  async 'call-api'() {
    const response = await client.fetch(config.apiUrl)
    return { status: response.status, body: await response.text() }
  },
  async 'sign-out'() {
    await client.clear()
    return { signedIn: false }
  },
}

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  const handler = handlers[message?.type]
  if (!handler || sender.id !== chrome.runtime.id) return false
  handler(message).then(sendResponse, (error) => sendResponse({ error: `${error.name} (${error.code ?? 'no code'}): ${error.message}` }))
  return true // the reply comes asynchronously
})
