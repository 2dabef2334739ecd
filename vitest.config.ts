import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Watcher and child-process tests are sensitive to CPU starvation on 2 cores.
    pool: 'forks',
    maxWorkers: 2,
  },
});
