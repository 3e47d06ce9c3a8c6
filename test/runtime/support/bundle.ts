import { nodeResolve } from '@rollup/plugin-node-resolve'
import { rollup } from 'rollup'

/** Export conditions of the bundlers users build with: wrangler (esbuild) for Workers, and browsers. */
export const CONDITIONS = {
  workerd: ['workerd', 'worker', 'browser', 'import'],
  browser: ['browser', 'import'],
}

/**
 * Bundles `input` into one ES module, resolving bare imports from the nearest node_modules and
 * through package `exports` as a user's bundler would. An import that does not resolve fails.
 */
export async function bundle(input: string, conditions: string[]): Promise<string> {
  const build = await rollup({
    input,
    // Provided by workerd, as wrangler leaves them.
    external: (id) => id.startsWith('cloudflare:'),
    plugins: [nodeResolve({ exportConditions: conditions, browser: conditions.includes('browser') })],
    onwarn(warning, warn) {
      if (warning.code === 'UNRESOLVED_IMPORT') throw new Error(warning.message)
      warn(warning)
    },
  })
  try {
    const { output } = await build.generate({ format: 'es', inlineDynamicImports: true })
    return output[0].code
  } finally {
    await build.close()
  }
}
