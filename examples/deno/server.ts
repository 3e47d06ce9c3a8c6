// The same call behind Deno.serve, for Deno Deploy: its isolates share the grant in the app's KV
// database, and one of them at a time refreshes it. See README.md.
import { apiUrl, client } from './client.ts'

Deno.serve(async () => {
  try {
    const response = await client.fetch(apiUrl)
    return new Response(response.body, { status: response.status, headers: { 'content-type': response.headers.get('content-type') ?? 'text/plain' } })
  } catch (error) {
    console.error(error instanceof Error ? `${error.name}: ${error.message}` : error)
    return new Response('The API could not be called', { status: 502 })
  }
})
