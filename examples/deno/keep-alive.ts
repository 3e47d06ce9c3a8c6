// Keeps the grant alive while nothing uses it: providers end a refresh token that is not used for a
// while (Microsoft after 90 days of inactivity, Xero 60 days, QuickBooks 100 days). Deno.cron runs
// it once a day, on Deno Deploy or under `deno task keep-alive`. See README.md.
import { client } from './client.ts'

const MAX_IDLE_MS = 30 * 24 * 60 * 60 * 1000

/** Refreshes the grant when its last refresh, by any run or isolate, is over 30 days old. */
export async function keepAlive(): Promise<void> {
  const refreshed = await client.keepAlive({ maxIdleMs: MAX_IDLE_MS })
  console.log(refreshed ? 'grant refreshed' : 'grant used within 30 days: nothing to do')
}

if (import.meta.main) Deno.cron('keep the OAuth grant alive', '0 4 * * *', keepAlive)
