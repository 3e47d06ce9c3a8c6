// The extension's service worker: it owns the client and answers the popup's messages. Chrome
// stops an idle service worker at any time; chrome.storage.local keeps the (rotated) grant, and
// the settings saved in the popup, for its next start.
import { createRefreshClient } from 'oauth-refresh'
import { webExtensionStorage } from 'oauth-refresh/webextension'

const storage = webExtensionStorage(chrome.storage.local)
const DAY = 24 * 60 * 60 * 1000
/**
 * Refresh a grant that no context has refreshed for this long. Providers end idle refresh tokens
 * (Microsoft after 90 days of inactivity, QuickBooks 100 days, Xero 60 days): a rarely opened
 * extension would otherwise wake up to invalid_grant. Well below the shortest of them.
 */
const MAX_IDLE_MS = 30 * DAY
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
      // Sign-out revokes the refresh token here (RFC 7009), so it dies at the provider too.
      revocationUrl: settings.revocationUrl || undefined,
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
  /** Forgets the grant here and, with a revocation URL, revokes it at the provider. */
  async 'sign-out'() {
    const { client, settings } = await clientFor()
    const { revoked, error } = await client.clear({ revoke: Boolean(settings.revocationUrl) })
    return { signedIn: false, revoked, ...(error && { error: `${error.name} (${error.code}): ${error.message}` }) }
  },
  /** Refreshes the grant when it has been idle for MAX_IDLE_MS; the daily alarm sends it. */
  async 'keep-alive'() {
    const { client } = await clientFor()
    return { refreshed: await client.keepAlive({ maxIdleMs: MAX_IDLE_MS }) }
  },
}

// MV3 service workers lose their timers when Chrome stops them; alarms wake them up. Alarms may
// be lost with a browser restart, so the alarm is created again whenever it is missing.
chrome.alarms.get('keep-alive').then((alarm) => {
  if (!alarm) chrome.alarms.create('keep-alive', { periodInMinutes: 24 * 60 })
})
chrome.alarms.onAlarm.addListener((alarm) => {
  // Before sign-in (no settings, no grant) there is nothing to keep alive.
  if (alarm.name === 'keep-alive') handlers['keep-alive']().catch(() => {})
})

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  const handler = handlers[message?.type]
  if (!handler || sender.id !== chrome.runtime.id) return false
  handler(message).then(sendResponse, (error) => sendResponse({ error: `${error.name} (${error.code ?? 'no code'}): ${error.message}` }))
  return true // the reply comes asynchronously
})
