/**
 * Temp-dir fixture: `const tmp = useTempDir('name-')` creates a fresh directory before each
 * test (`tmp.path`) and removes it after, so no test file writes its own mkdtemp/rm pair.
 * `{ scope: 'suite' }` makes one directory for the enclosing describe (or file) instead.
 *
 * Call it before the file's own hooks: vitest runs after-hooks in reverse order
 * (sequence.hooks 'stack'), so the directory is removed only after the file's
 * afterEach has closed whatever still writes into it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

export interface TempDir {
  /** The current directory (valid inside a test or a later hook). */
  readonly path: string;
}

export interface TempDirOptions {
  /** `test` (default): a new directory for every test; `suite`: one for the enclosing describe or file. */
  scope?: 'test' | 'suite';
}

/** A temp directory made anew for every test of the calling file (or once per suite). */
export function useTempDir(prefix: string, { scope = 'test' }: TempDirOptions = {}): TempDir {
  let current: string | undefined;
  const [before, after] = scope === 'suite' ? [beforeAll, afterAll] : [beforeEach, afterEach];
  before(() => {
    current = mkdtempSync(join(tmpdir(), prefix));
  });
  after(() => {
    if (current) rmSync(current, { recursive: true, force: true });
    current = undefined;
  });
  return {
    get path(): string {
      if (!current) throw new Error('useTempDir: path read outside a test');
      return current;
    },
  };
}

/** A temp directory for code that needs one outside the per-test hooks; remove it with the returned function. */
export function makeTempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Runs `use` with a fresh temp directory and removes it afterwards, whatever `use` did. */
export async function withTempDir<T>(prefix: string, use: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = makeTempDir(prefix);
  try {
    return await use(dir.path);
  } finally {
    dir.remove();
  }
}
