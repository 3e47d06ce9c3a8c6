import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The repository root. (A string, not a URL: under happy-dom, `URL` is the DOM's.) */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

/**
 * What a consumer installs beside the package: its optional peers and the bundler the examples
 * use (the package has no dependencies). Linked from the repository's node_modules (no registry
 * access).
 */
const LINKED = ['idb-keyval', 'ofetch', 'rollup', '@rollup']

/** A throwaway project with the packed package installed in its node_modules. */
export interface Consumer {
  /** The project directory. */
  dir: string
  /** The installed package, `<dir>/node_modules/oauth-refresh`. */
  packageDir: string
  /** The file URL an ESM `import` of `oauth-refresh<subpath>` (or of another installed package) loads, per its `exports`. */
  entry(subpath?: string, packageName?: string): Promise<string>
  /** Copies files or directories (absolute paths, or relative to the repository root) into `<dir>/<to>`. */
  add(to: string, ...sources: string[]): Promise<string>
  /** Deletes the project. */
  remove(): Promise<void>
}

/**
 * Packs the built package with `npm pack` (dist/ must exist) and unpacks the tarball into a new
 * project's node_modules, as `npm install oauth-refresh-x.y.z.tgz` would: the tests then load
 * exactly the published files, through the package's `exports`, never src/.
 */
export async function installPackedPackage(): Promise<Consumer> {
  const dir = await mkdtemp(join(tmpdir(), 'oauth-refresh-consumer-'))
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT })
  const [{ filename }] = JSON.parse(stdout) as Array<{ filename: string }>
  const packageDir = join(dir, 'node_modules', 'oauth-refresh')
  await mkdir(packageDir, { recursive: true })
  await run('tar', ['-xzf', join(dir, basename(filename)), '-C', packageDir, '--strip-components=1'])
  await Promise.all(LINKED.map((name) => symlink(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name), 'dir')))
  const manifest = { name: 'consumer', private: true, type: 'module', dependencies: { 'oauth-refresh': `file:./${basename(filename)}` } }
  await writeFile(join(dir, 'package.json'), JSON.stringify(manifest, null, 2))

  return {
    dir,
    packageDir,
    async add(to, ...sources) {
      const target = join(dir, to)
      await mkdir(target, { recursive: true })
      for (const source of sources) {
        const from = source.startsWith('/') ? source : join(ROOT, source)
        // Not a node_modules an example's own `npm install` left: its links point into the checkout.
        await cp(from, join(target, basename(from)), { recursive: true, filter: (path) => basename(path) !== 'node_modules' })
      }
      return target
    },
    async entry(subpath = '.', packageName = 'oauth-refresh') {
      const root = join(dir, 'node_modules', packageName)
      const { exports } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))
      const target = exports[subpath].import
      return pathToFileURL(join(root, typeof target === 'string' ? target : target.default)).href
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  }
}
