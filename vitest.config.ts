import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // The CI machine has 2 cores; learning checks and worker tests need room.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
