import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { serve } from './support/loopback.js'

const root = new URL('../', import.meta.url)

/** Whether the process `pid` is stopped (state `T` in /proc). */
const stopped = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] === 'T'

// A real process, paused by the kernel: fake timers cannot show which of a due timer and an
// already-received answer the runtime handles first.
describe.runIf(process.platform === 'linux')('a process paused while its token answer arrives', () => {
  it('takes the answer that reached its socket, though its timeout expired meanwhile: the refresh token is sent once', async () => {
    const server = await serve({ revokeOnReuse: true })
    // Runs the built package, as users do.
    const script = `import { createRefreshClient } from 'oauth-refresh'
const client = createRefreshClient({ tokenUrl: '${server.tokenUrl}', clientId: 'demo-client', clientSecret: 'demo-secret', refreshToken: 'demo-refresh-token', timeoutMs: 1000, retry: { baseDelayMs: 1, maxDelayMs: 50 } })
console.log(JSON.stringify(await client.getAccessToken().then((token) => ({ token }), (error) => ({ code: error.code, message: error.message }))))`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk))
    const exited = new Promise((resolve) => child.on('exit', resolve))
    const pid = child.pid!
    let resumed: Promise<void> | undefined
    server.fault({
      beforeAnswer: async () => {
        child.kill('SIGSTOP')
        while (!stopped(pid)) await sleep(1)
        // 2.5 s from now, well past the child's 1 s timeout, the child resumes; the answer is
        // written at once, into the socket of the stopped child.
        resumed = sleep(2500).then(() => void child.kill('SIGCONT'))
      },
    })
    await exited
    await resumed
    const result = JSON.parse(out)
    expect(result).toEqual({ token: expect.any(String) })
    expect(server.issuedTokens).toContain(result.token)
    expect(server.tokenRequests.map((request) => request.form.refresh_token)).toEqual(['demo-refresh-token'])
    expect(server.grantRevoked).toBe(false)
  })
})
