import { fileURLToPath } from 'node:url'
import { nodeResolve } from '@rollup/plugin-node-resolve'

// An extension cannot resolve bare imports like 'oauth-refresh': bundle the service worker.
export default {
  input: fileURLToPath(new URL('src/background.js', import.meta.url)),
  output: { file: fileURLToPath(new URL('dist/background.js', import.meta.url)), format: 'es' },
  plugins: [nodeResolve({ browser: true })],
}
