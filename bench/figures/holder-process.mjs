import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

/**
 * @typedef {object} Holder A process holding a grant shared with others (deno-kv-holder.ts, redis-holder.mjs).
 * @property {number} pid
 * @property {() => Promise<any>} next The next JSON message it prints.
 * @property {(at: number) => void} go Tells it the start time (epoch ms).
 * @property {(signal?: NodeJS.Signals) => void} kill
 * @property {Promise<number | null>} exited Its exit code.
 */

/**
 * Starts `command args`, a holder speaking one JSON message a line; resolves once it printed that
 * it is ready. `children` keeps it until it exits, for the caller to kill what is left.
 *
 * @param {string} command
 * @param {string[]} args
 * @param {Record<string, string | undefined>} env
 * @param {Set<import('node:child_process').ChildProcess>} children
 * @returns {Promise<Holder>}
 */
export async function startHolder(command, args, env, children) {
  const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] })
  children.add(child)
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const exited = new Promise((resolve) => child.once('exit', (code) => (children.delete(child), resolve(code))))
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const next = async () => {
    const { value, done } = await lines.next()
    if (done) throw new Error(`The holder ended without a message (exit ${await exited}): ${stderr.slice(-2000)}`)
    return JSON.parse(value)
  }
  const holder = { pid: /** @type {number} */ (child.pid), next, go: (at) => child.stdin.end(`${at}\n`), kill: (signal) => child.kill(signal), exited }
  const ready = await next()
  if (!ready.ready) throw new Error(`The holder said ${JSON.stringify(ready)}`)
  return holder
}
