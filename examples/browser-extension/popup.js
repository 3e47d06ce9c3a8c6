// The popup keeps the settings in chrome.storage.local and sends messages: the service worker
// holds the client and the tokens.
const output = document.getElementById('output')
const form = document.getElementById('settings')

/** @param {object} message */
async function send(message) {
  output.textContent = '…'
  const reply = await chrome.runtime.sendMessage(message)
  output.textContent = JSON.stringify(reply, null, 2)
}

/**
 * Saves the settings after asking for access to their origins: the service worker's requests to
 * them then need no CORS headers. The manifest grants loopback hosts already; any other host is an
 * optional host permission, which Chrome asks the user for (the click on Save allows the prompt).
 */
async function save() {
  const settings = Object.fromEntries(new FormData(form))
  const urls = [settings.tokenUrl, settings.revocationUrl, settings.apiUrl].filter(Boolean)
  const origins = [...new Set(urls.map((url) => `${new URL(url).origin}/*`))]
  const granted = await chrome.permissions.request({ origins })
  if (!granted) return { saved: false, error: `access to ${origins.join(' and ')} was not granted` }
  await chrome.storage.local.set({ settings })
  return { saved: true }
}

form.addEventListener('submit', (event) => {
  event.preventDefault()
  save().then(
    (reply) => (output.textContent = JSON.stringify(reply, null, 2)),
    (error) => (output.textContent = JSON.stringify({ saved: false, error: error.message }, null, 2)),
  )
})
document.getElementById('sign-in').addEventListener('click', () => {
  send({ type: 'sign-in', refreshToken: document.getElementById('refresh-token').value.trim() })
})
document.getElementById('call-api').addEventListener('click', () => send({ type: 'call-api' }))
document.getElementById('sign-out').addEventListener('click', () => send({ type: 'sign-out' }))

const { settings } = await chrome.storage.local.get('settings')
if (settings) for (const [name, value] of Object.entries(settings)) form.elements.namedItem(name).value = value
else document.getElementById('settings-panel').open = true
