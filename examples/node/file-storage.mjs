import { createHash } from 'node:crypto'
import { open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * A `TokenStorage` that keeps grants in one JSON file, so a script or CLI resumes its rotated
 * refresh token on the next run instead of sending a dead one, and several processes on one
 * machine (a server and a cron job) can share the file: its `lock` lets one refresh at a time.
 *
 * The file holds secrets: it is written with mode 0600, and atomically (a temporary file, then a
 * rename), so a crash never leaves half a grant. Writes of one process are serialized; writes of
 * several processes to one grant are serialized by the client, which stores a refreshed grant
 * under the lock.
 *
 * The lock is a lease held in lock files next to the grants' file
 * (`<file>.<key hash>.lock.<generation>`, mode 0600). Taking it creates the next generation's
 * file with `open(…, 'wx')`, which exactly one process can do, when the current one is released
 * or its expiry has passed. Its holder renews the expiry every `leaseMs / 3` while the refresh
 * runs and marks it released when done (only if no one has taken it over since). A process that
 * dies holding it (killed, out of memory) blocks the grant for at most `leaseMs` after its last
 * renewal; the others look again about every 50 ms and take over then. The processes' clocks
 * must agree to well within `leaseMs`, as for any lease: use it on one machine, not over a
 * network file system.
 *
 * @param {string} path The JSON file, created on the first write.
 * @param {{ leaseMs?: number }} [options] `leaseMs`: how long the lock outlives its holder's last
 *   renewal, in milliseconds. Default 10,000; at least 100.
 * @returns {import('oauth-refresh').TokenStorage}
 * @example
 * const client = createRefreshClient({ ...credentials, storage: fileStorage('.oauth-refresh.json') })
 */
export function fileStorage(path, { leaseMs = 10_000 } = {}) {
  if (!(Number.isInteger(leaseMs) && leaseMs >= 100)) throw new TypeError('"leaseMs" must be an integer of at least 100')

  /** @returns {Promise<Record<string, import('oauth-refresh').StoredTokenSet>>} */
  const read = async () => {
    try {
      return JSON.parse(await readFile(path, 'utf8'))
    } catch (error) {
      if (error.code === 'ENOENT') return {}
      throw error
    }
  }

  let queue = Promise.resolve()
  /** @param {(grants: Record<string, import('oauth-refresh').StoredTokenSet>) => void} change */
  const update = (change) => {
    const write = queue.then(async () => {
      const grants = await read()
      change(grants)
      await replace(path, JSON.stringify(grants, null, 2))
    })
    // A failed write rejects its own caller only; the next one starts afresh.
    queue = write.catch(() => {})
    return write
  }

  return {
    async get(key) {
      return (await read())[key]
    },
    set: (key, value) =>
      update((grants) => {
        grants[key] = value
      }),
    delete: (key) =>
      update((grants) => {
        delete grants[key]
      }),
    lock: (key, task) => withLease(path, key, leaseMs, task),
  }
}

/** Writes `text` to `file` atomically (a temporary file, then a rename), mode 0600. */
async function replace(file, text) {
  const temporary = `${file}.${process.pid}.tmp`
  await writeFile(temporary, text, { mode: 0o600 })
  await rename(temporary, file)
}

const POLL_MS = 50
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Runs `task` holding the lease on `key` of the grants' file `path`. The lease's generations are
 * files `<prefix><n>`; the highest one is the lease, `{ expiresAt }` in epoch milliseconds
 * (0 when released).
 *
 * @template T
 * @param {string} path
 * @param {string} key
 * @param {number} leaseMs
 * @param {() => Promise<T>} task
 * @returns {Promise<T>}
 */
async function withLease(path, key, leaseMs, task) {
  const directory = dirname(path)
  const prefix = `${basename(path)}.${createHash('sha256').update(key).digest('hex').slice(0, 16)}.lock.`
  const file = (generation) => join(directory, `${prefix}${generation}`)
  const lease = () => JSON.stringify({ expiresAt: Date.now() + leaseMs })

  /** The generations there are. */
  const generations = async () =>
    (await readdir(directory))
      .map((name) => (name.startsWith(prefix) ? Number(name.slice(prefix.length)) : NaN))
      .filter((generation) => Number.isSafeInteger(generation))
  const latest = async () => Math.max(0, ...(await generations()))

  /** When generation `n`'s lease ends; a file still being written counts from its creation. */
  const expiresAt = async (generation) => {
    try {
      const { expiresAt } = JSON.parse(await readFile(file(generation), 'utf8'))
      if (typeof expiresAt === 'number') return expiresAt
    } catch (error) {
      if (error.code === 'ENOENT') return undefined
      if (!(error instanceof SyntaxError)) throw error
    }
    return (await stat(file(generation))).mtimeMs + leaseMs
  }

  const acquire = async () => {
    for (;;) {
      const current = await latest()
      const ends = current === 0 ? 0 : await expiresAt(current)
      if (ends !== undefined && ends <= Date.now()) {
        try {
          // 'wx' fails when the file exists: of all the processes that saw this lease end, one takes the next.
          const handle = await open(file(current + 1), 'wx', 0o600)
          try {
            await handle.writeFile(lease())
          } finally {
            await handle.close()
          }
          // Earlier generations are history: only the highest one counts.
          for (const old of await generations()) if (old <= current) await unlink(file(old)).catch(() => {})
          return current + 1
        } catch (error) {
          if (error.code !== 'EEXIST') throw error
        }
      }
      await sleep(POLL_MS * (0.5 + Math.random()))
    }
  }

  const generation = await acquire()
  // Ours while no later generation exists; rewriting ours once it is taken over changes nothing.
  const ours = async () => (await latest()) === generation
  const write = async (text) => {
    if (await ours()) await replace(file(generation), text)
  }
  let renewing = Promise.resolve()
  // A failed renewal is tried again at the next tick; if they all fail, the lease lapses.
  const timer = setInterval(() => (renewing = renewing.then(() => write(lease())).catch(() => {})), leaseMs / 3)
  try {
    return await task()
  } finally {
    clearInterval(timer)
    await renewing
    // A failed release is harmless: the lease ends by itself.
    await write(JSON.stringify({ expiresAt: 0 })).catch(() => {})
  }
}
