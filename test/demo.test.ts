import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'

it('npm run demo walks through every step against the built package and exits 0', async () => {
  const demo = fileURLToPath(new URL('../examples/local-server/demo.mjs', import.meta.url))
  const { stdout } = await promisify(execFile)(process.execPath, [demo], { timeout: 60_000, killSignal: 'SIGKILL' })
  expect(stdout).toContain('100 of 100 answered 200; token requests: 1')
  expect(stdout).toContain('status 200; refreshes: 1')
  expect(stdout).toContain('basic → body; next refresh used: body')
  expect(stdout).toContain('OAuthError code=OAUTH_ERROR error=invalid_grant status=400')
  expect(stdout).toContain('stored differs from configured: true')
  expect(stdout).toContain('event refresh: reason=expired rotated=true')
  expect(stdout).toContain('keepAlive within a day of the last refresh: refreshed=false')
  expect(stdout).toContain('event end: reason=revoked')
  expect(stdout).toContain("clear({ revoke: true }): revoked=true; the provider's grant is gone: true")
  expect(stdout).toContain('then: NoGrantError reason=cleared')
  expect(stdout).not.toMatch(/demo-secret|demo-refresh-token/)
})
