/**
 * The real CVAT reference data (`../shared/cvat`, see its SOURCE.md) is read-only and lives
 * next to the repository, not in it. Tests that need it skip with a clear message when it
 * is absent — except on CI (CI=true), where its absence is a failure, because those tests
 * must run there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'vitest';

export const SHARED_CVAT = path.resolve(process.cwd(), '../shared/cvat');

/** Absolute path of `../shared/cvat` (resolved from the working directory, the repo root), or null. */
export function sharedCvatDir(): string | null {
  return fs.existsSync(path.join(SHARED_CVAT, 'v2.73.0')) ? SHARED_CVAT : null;
}

/**
 * `describe(name, fn)` with the shared CVAT directory passed in; `describe.skip` with the reason
 * when it is missing, or a failing test when CI=true.
 */
export function describeWithSharedCvat(name: string, fn: (dir: string) => void): void {
  const dir = sharedCvatDir();
  if (dir) {
    describe(name, () => fn(dir));
    return;
  }
  const expected = path.resolve(process.cwd(), '../shared/cvat');
  if (process.env['CI'] === 'true') {
    describe(name, () => {
      it('needs the shared CVAT reference data', () => {
        throw new Error(`CI=true but the shared CVAT reference data is missing (expected ${expected})`);
      });
    });
    return;
  }
  describe.skip(`${name} — skipped: shared CVAT reference data not found at ${expected}`, () => {
    it('needs ../shared/cvat', () => undefined);
  });
}

/** For `describe.runIf(...)`: true when present; throws on CI when missing. */
export function sharedCvatAvailable(): boolean {
  if (sharedCvatDir()) return true;
  if (process.env['CI']) throw new Error(`../shared/cvat is missing at ${SHARED_CVAT}; CI must run the tests that read CVAT's real artifacts`);
  console.warn(`skipping tests that read CVAT's real artifacts: ${SHARED_CVAT} is absent`);
  return false;
}

export function readSharedJson(relative: string): unknown {
  return JSON.parse(fs.readFileSync(path.resolve(SHARED_CVAT, relative), 'utf8'));
}
