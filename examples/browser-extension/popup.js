// The popup only sends messages: the service worker holds the client and the tokens.
const output = document.getElementById('output')

/** @param {object} message */
async function send(message) {
  output.textContent = '…'
  const reply = await chrome.runtime.sendMessage(message)
  output.textContent = JSON.stringify(reply, null, 2)
}

document.getElementById('sign-in').addEventListener('click', () => {
  send({ type: 'sign-in', refreshToken: document.getElementById('refresh-token').value.trim() })
})
document.getElementById('call-api').addEventListener('click', () => send({ type: 'call-api' }))
document.getElementById('sign-out').addEventListener('click', () => send({ type: 'sign-out' }))
