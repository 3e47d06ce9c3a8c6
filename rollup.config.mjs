import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { nodeResolve } from '@rollup/plugin-node-resolve'
import typescript from '@rollup/plugin-typescript'

/** Package entry points: each is its own file, so no runtime ships another's code. */
export const entries = {
  index: 'src/index.ts',
  indexeddb: 'src/storage/indexeddb.ts',
  'cloudflare-kv': 'src/storage/cloudflare-kv.ts',
  'deno-kv': 'src/storage/deno-kv.ts',
  webextension: 'src/storage/webextension.ts',
  redis: 'src/storage/redis.ts',
  ofetch: 'src/ofetch.ts',
  'durable-object': 'src/durable-object.ts',
  dpop: 'src/dpop.ts',
  'private-key-jwt': 'src/private-key-jwt.ts',
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

/** Empties dist/ first: chunk names carry hashes, and a stale chunk would be packed and published. */
const clean = { name: 'clean', buildStart: () => rm('dist', { recursive: true, force: true }) }

// valibot exports neither file: they are found from its main module, in its dist/ folder.
const valibotDir = join(dirname(createRequire(import.meta.url).resolve('valibot')), '..')
const valibot = JSON.parse(await readFile(join(valibotDir, 'package.json'), 'utf8'))
const valibotLicense = await readFile(join(valibotDir, 'LICENSE.md'), 'utf8')

/**
 * valibot is built into the files that use it, so Node and Deno parse the few functions the
 * core calls, not all of valibot. Such a file opens with valibot's license: a short legal
 * comment that minifiers keep, then the full text.
 */
function valibotNotice(chunk) {
  if (!chunk.moduleIds.some((id) => id.includes('/node_modules/valibot/'))) return ''
  const text = valibotLicense.trim().split('\n').map((line) => ` * ${line}`.trimEnd())
  return `/*! valibot ${valibot.version} | ${valibot.license} License | Copyright (c) ${valibot.author} */\n/*\n${text.join('\n')}\n */`
}

export default {
  input: entries,
  external: ['ofetch', 'idb-keyval', 'cloudflare:workers'],
  plugins: [clean, typescript({ tsconfig: './tsconfig.json' }), nodeResolve({ resolveOnly: ['valibot'] }), cjsDeclarations()],
  output: [
    { dir: 'dist', format: 'es', entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js', banner: valibotNotice },
    { dir: 'dist', format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: 'chunks/[name]-[hash].cjs', banner: valibotNotice },
  ],
}
