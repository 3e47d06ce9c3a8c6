// The extension's service worker: it owns the client and answers the popup's messages. Chrome
// stops an idle service worker at any time; chrome.storage.local keeps the (rotated) grant, and
// the settings saved in the popup, for its next start.
import { createRefreshClient } from 'oauth-refresh'
import { webExtensionStorage } from 'oauth-refresh/webextension'

const storage = webExtensionStorage(chrome.storage.local)
/** The client of the saved settings, and those settings as JSON. */
let current = { settings: '', client: undefined }

/**
 * The client for the settings the popup saved. With `refreshToken`, it starts a new grant;
 * without, it resumes the grant stored by an earlier sign-in.
 */
async function clientFor(refreshToken) {
  const { settings } = await chrome.storage.local.get('settings')
  if (!settings) throw new Error('No settings yet: fill them in and save them in the popup')
  const json = JSON.stringify(settings)
  if (refreshToken || json !== current.settings) {
    const client = createRefreshClient({
      tokenUrl: settings.tokenUrl,
      clientId: settings.clientId,
      refreshToken,
      storage,
      // The token goes to the API only.
      allowedOrigins: [new URL(settings.apiUrl).origin],
    })
    current = { settings: json, client }
  }
  return { client: current.client, settings }
}

/** Message handlers; each resolves the popup's reply. */
const handlers = {
  /** Starts a grant from a refresh token your sign-in flow obtained; the first refresh stores it. */
  async 'sign-in'({ refreshToken }) {
    const { client } = await clientFor(refreshToken)
    await client.getAccessToken()
    return { signedIn: true }
  },
  async 'call-api'() {
    const { client, settings } = await clientFor()
    const response = await client.fetch(settings.apiUrl)
    return { status: response.status, body: await response.text() }
  },
  async 'sign-out'() {
    const { client } = await clientFor()
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
