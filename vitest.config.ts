import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/runtime/support/browser-notice.ts', 'test/support/redis-notice.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
  },
})
