import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/support/setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Three files at a time on 2 cores: the suite waits on child processes, servers and
    // timers a third of the time (1.7 cores busy with two workers). Measured on a 2-vCPU
    // VM: 215 s with two workers, 173 s with three, every test passing in both.
    pool: 'forks',
    maxWorkers: 3,
    // The files of a worker share one module graph instead of importing src/ anew each
    // (that was ~0.8 CPU-s a file, a third of the suite's CPU); the per-file state src/
    // keeps is reset in test/support/setup.ts, and every file closes what it starts.
    isolate: false,
  },
});
