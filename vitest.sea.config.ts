import { defineConfig } from 'vitest/config';

// `npm run test:sea`: the single executables, after `npm run build:sea`.
export default defineConfig({
  test: {
    include: ['test/sea/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
