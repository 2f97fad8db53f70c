import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The single executables have their own run: npm run test:sea.
    exclude: [...configDefaults.exclude, 'test/sea/**'],
    // Builds dist/ first: the e2e tests run the compiled CLI (bin/ctbridge.js).
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // e2e tests start real processes; keep the 2-core machine from thrashing.
    maxWorkers: 2,
  },
});
