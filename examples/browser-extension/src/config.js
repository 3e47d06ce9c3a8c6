/** Your provider and API: set these, and list both origins in manifest.json's host_permissions. */
export const config = {
  tokenUrl: 'https://auth.example.com/oauth/token',
  // An extension cannot keep a secret: register it as a public client (no client secret).
  clientId: 'your-client-id',
  apiUrl: 'https://api.example.com/me',
}
