import { basename } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files that take longest on CI (tens of seconds: poll intervals, child processes, real
 * stores), started first so that no worker is left with one of them while the others
 * idle at the end. On a clean clone vitest has no durations of its own and runs large
 * files first; cache-wipe-shallow (one test waiting on 5 s polls) came last, ~10 s alone.
 * An out-of-date list only costs the order, never a test.
 */
const SLOW_FIRST = [
  'cache-wipe-shallow',
  'package-install',
  'hostile-cvat-cli',
  'doctor-deep',
  'check-doctor',
  'doctor',
  'impact',
  'run-process',
  'json-schemas',
  'young-generation',
  'backup',
  'backup-lifecycle',
  'guard-burst',
];

class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification): number => {
      const at = SLOW_FIRST.indexOf(basename(file.moduleId, '.test.ts'));
      return at < 0 ? SLOW_FIRST.length : at;
    };
    return sorted
      .map((file, order) => ({ file, order, rank: rank(file) }))
      .sort((a, b) => a.rank - b.rank || a.order - b.order)
      .map(({ file }) => file);
  }
}

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
    sequence: { sequencer: SlowFirstSequencer },
    // The files of a worker share one module graph instead of importing src/ anew each
    // (that was ~0.8 CPU-s a file, a third of the suite's CPU); the per-file state src/
    // keeps is reset in test/support/setup.ts, and every file closes what it starts.
    isolate: false,
  },
});
