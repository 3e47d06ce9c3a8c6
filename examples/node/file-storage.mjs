import { readFile, rename, writeFile } from 'node:fs/promises'

/**
 * A `TokenStorage` that keeps grants in one JSON file, so a script or CLI resumes its rotated
 * refresh token on the next run instead of sending a dead one.
 *
 * The file holds secrets: it is written with mode 0600, and atomically (a temporary file, then a
 * rename), so a crash never leaves half a grant. Writes of one process are serialized; two
 * processes sharing the file may both refresh, so give each its own file.
 *
 * @param {string} path The JSON file, created on the first write.
 * @returns {import('oauth-refresh').TokenStorage}
 * @example
 * const client = createRefreshClient({ ...credentials, storage: fileStorage('.oauth-refresh.json') })
 */
export function fileStorage(path) {
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
      const temporary = `${path}.${process.pid}.tmp`
      await writeFile(temporary, JSON.stringify(grants, null, 2), { mode: 0o600 })
      await rename(temporary, path)
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
  }
}
