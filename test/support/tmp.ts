/**
 * Temp-dir fixture: `const tmp = useTempDir('name-')` creates a fresh directory before each
 * test (`tmp.path`) and removes it after, so no test file writes its own mkdtemp/rm pair.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';

export interface TempDir {
  /** The current test's directory (valid inside a test or a later hook). */
  readonly path: string;
}

/** A temp directory made anew for every test of the calling file. */
export function useTempDir(prefix: string): TempDir {
  let current: string | undefined;
  beforeEach(() => {
    current = mkdtempSync(join(tmpdir(), prefix));
  });
  afterEach(() => {
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
