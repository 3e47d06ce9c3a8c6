import { fileURLToPath } from 'node:url'
import { relative, resolve } from 'node:path'
import { gzipSync } from 'node:zlib'
import { rollup } from 'rollup'
import { nodeResolve } from '@rollup/plugin-node-resolve'
import terser from '@rollup/plugin-terser'

const root = fileURLToPath(new URL('..', import.meta.url))

/** The package's entry points, as built into dist/. */
export const entryPoints = ['index', 'indexeddb', 'cloudflare-kv', 'deno-kv', 'webextension', 'ofetch', 'durable-object']

/** The libraries whose minimal browser program is compared; each has a module in bench/clients/. */
export const programs = ['raw', 'oauth-refresh', 'badgateway', 'oauth4webapi']

const PROGRAM = '\0program'

/** The same minimal browser program for every library: refresh, then one authorized request. */
function programSource(library) {
  const client = fileURLToPath(new URL(`./clients/${library}.mjs`, import.meta.url))
  return `import { createAuthorizedFetch } from ${JSON.stringify(client)}
const authorizedFetch = await createAuthorizedFetch({
  tokenUrl: 'https://auth.example.com/token',
  clientId: 'client',
  clientSecret: 'secret',
  refreshToken: 'refresh-token',
})
const response = await authorizedFetch('https://api.example.com/me')
console.log(await response.json())
`
}

function virtualProgram(library) {
  return {
    name: 'program',
    resolveId: (id) => (id === PROGRAM ? id : null),
    load: (id) => (id === PROGRAM ? programSource(library) : null),
  }
}

/**
 * @typedef {object} BundleSize
 * @property {number} minified bytes of the minified bundle
 * @property {number} gzip bytes of the minified bundle after gzip level 9
 * @property {string[]} modules files that put code into the bundle, relative to the repo root
 * @property {string} code the minified bundle
 */

async function build(input, plugins = []) {
  const bundle = await rollup({
    input,
    // Modules of the Workers runtime (the durable-object entry's base class) are not bundled.
    external: (id) => id.startsWith('cloudflare:'),
    plugins: [...plugins, nodeResolve({ browser: true })],
    onwarn(warning, warn) {
      if (warning.code === 'UNRESOLVED_IMPORT') throw new Error(warning.message)
      warn(warning)
    },
  })
  try {
    const { output: [chunk, ...rest] } = await bundle.generate({ format: 'es', plugins: [terser()], inlineDynamicImports: true })
    if (rest.some((file) => file.type === 'chunk')) throw new Error(`${input} did not build into one file`)
    const modules = Object.entries(chunk.modules)
      .filter(([, module]) => module.renderedLength > 0)
      .map(([id]) => (id === PROGRAM ? 'program' : relative(root, id)))
    return { minified: Buffer.byteLength(chunk.code), gzip: gzipSync(chunk.code, { level: 9 }).length, modules, code: chunk.code }
  } finally {
    await bundle.close()
  }
}

/**
 * Bundles a file with its dependencies for browsers (rollup, node-resolve with `browser: true`,
 * terser) and measures it.
 *
 * @param {string} file a path to an ES module, e.g. 'dist/cloudflare-kv.js'
 * @returns {Promise<BundleSize>}
 */
export function measureBundle(file) {
  return build(resolve(root, file))
}

/**
 * Bundles and measures the minimal browser program (one refresh, one authorized request) written
 * with one library, through the same settings as `measureBundle`.
 *
 * @param {string} library one of `programs`
 * @returns {Promise<BundleSize>}
 */
export function measureProgram(library) {
  return build(PROGRAM, [virtualProgram(library)])
}

/**
 * Every program's and every entry point's size, without the code.
 *
 * @returns {Promise<{ programs: Record<string, Omit<BundleSize, 'code'>>, entries: Record<string, Omit<BundleSize, 'code'>> }>}
 */
export async function measureSizes() {
  const strip = ({ code, ...size }) => size
  const result = { programs: {}, entries: {} }
  for (const library of programs) result.programs[library] = strip(await measureProgram(library))
  for (const entry of entryPoints) result.entries[entry] = strip(await measureBundle(`dist/${entry}.js`))
  return result
}
