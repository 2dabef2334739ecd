import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/support/setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Watcher and child-process tests are sensitive to CPU starvation on 2 cores.
    pool: 'forks',
    maxWorkers: 2,
    // The files of a worker share one module graph instead of importing src/ anew each
    // (that was ~0.8 CPU-s a file, a third of the suite's CPU); the per-file state src/
    // keeps is reset in test/support/setup.ts, and every file closes what it starts.
    isolate: false,
  },
});
