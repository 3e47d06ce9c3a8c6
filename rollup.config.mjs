import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import typescript from '@rollup/plugin-typescript'

/** Package entry points: each is its own file, so no runtime ships another's code. */
export const entries = {
  index: 'src/index.ts',
  indexeddb: 'src/storage/indexeddb.ts',
  'cloudflare-kv': 'src/storage/cloudflare-kv.ts',
  ofetch: 'src/ofetch.ts',
  'durable-object': 'src/durable-object.ts',
}

/**
 * TypeScript emits ESM declarations (.d.ts). CommonJS consumers resolving with node16 need
 * .d.cts files whose relative imports name .cjs, so each declaration gets a CJS twin.
 */
function cjsDeclarations(dir = 'dist/types') {
  async function walk(folder) {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name)
      if (entry.isDirectory()) await walk(path)
      else if (entry.name.endsWith('.d.ts')) {
        const text = await readFile(path, 'utf8')
        await writeFile(path.replace(/\.d\.ts$/, '.d.cts'), text.replace(/(from\s+'\.{1,2}\/[^']*)\.js'/g, "$1.cjs'"))
      }
    }
  }
  return { name: 'cjs-declarations', writeBundle: { sequential: true, handler: () => walk(dir) } }
}

export default {
  input: entries,
  external: ['valibot', 'ofetch', 'idb-keyval', 'cloudflare:workers'],
  plugins: [typescript({ tsconfig: './tsconfig.json' }), cjsDeclarations()],
  output: [
    { dir: 'dist', format: 'es', entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
    { dir: 'dist', format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: 'chunks/[name]-[hash].cjs' },
  ],
}
