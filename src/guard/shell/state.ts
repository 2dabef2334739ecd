/**
 * What the guard keeps across restarts, in `stateDir`:
 *  - guard-state.json: open problems (small; rewritten on change, debounced)
 *  - guard-baseline.journal + .snapshot: the baseline of every expected file (see
 *    baseline-file.ts); `guard-baseline.tsv` is format 1, read here once for migration
 * Both are written through src/state/ (the state file atomically: temp file, fsync, rename,
 * directory fsync; the baseline by its codec, baseline-file.ts).
 */
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { WardenError } from '../../errors.js';
import { readIfExists, writeFileAtomic } from '../../state/files.js';
import type { FileStat, PersistedProblem } from '../types.js';

export const STATE_FILE = 'guard-state.json';
export const BASELINE_FILE = 'guard-baseline.tsv';

export type { PersistedProblem } from '../types.js';

export interface PersistedState {
  version: 1;
  shareDir: string;
  savedAt: string;
  shareAvailable: boolean;
  problems: PersistedProblem[];
}

export async function saveState(stateDir: string, state: PersistedState): Promise<void> {
  const file = path.join(stateDir, STATE_FILE);
  try {
    await mkdir(stateDir, { recursive: true });
    await writeFileAtomic(file, `${JSON.stringify(state, null, 1)}\n`);
  } catch (error) {
    throw new WardenError('STATE_IO', `cannot write ${file}`, { cause: error });
  }
}

/** undefined when absent; throws WardenError('STATE_IO') when unreadable or corrupt. */
export async function loadState(stateDir: string): Promise<PersistedState | undefined> {
  let bytes: Buffer | undefined;
  try {
    bytes = await readIfExists(path.join(stateDir, STATE_FILE));
  } catch (error) {
    throw new WardenError('STATE_IO', `cannot read ${STATE_FILE}`, { cause: error });
  }
  if (bytes === undefined) return undefined;
  const text = bytes.toString('utf8');
  try {
    const parsed = JSON.parse(text) as Partial<PersistedState>;
    if (parsed.version !== 1 || !Array.isArray(parsed.problems)) throw new Error('unexpected shape');
    return parsed as PersistedState;
  } catch (error) {
    throw new WardenError('STATE_IO', `${STATE_FILE} is corrupt`, { cause: error });
  }
}

/** Stream format-1 baseline entries from disk; returns the number read (0 when absent). Bad lines are skipped. */
export async function readBaseline(stateDir: string, onEntry: (rel: string, st: FileStat) => void): Promise<number> {
  const file = path.join(stateDir, BASELINE_FILE);
  const input = createReadStream(file, { encoding: 'utf8' });
  let count = 0;
  try {
    const lines = createInterface({ input, crlfDelay: Infinity });
    for await (const line of lines) {
      if (line.startsWith('#') || line === '') continue;
      const parts = line.split('\t', 5);
      if (parts.length < 5) continue;
      const rest = line.slice(parts.slice(0, 4).join('\t').length + 1);
      let rel: unknown;
      try {
        rel = JSON.parse(rest);
      } catch {
        continue;
      }
      const [size, mtimeMs, ino, dev] = parts.slice(0, 4).map(Number) as [number, number, number, number];
      if (typeof rel !== 'string' || ![size, mtimeMs, ino, dev].every(Number.isFinite)) continue;
      onEntry(rel, { size, mtimeMs, ino, dev });
      count++;
    }
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return 0;
    throw new WardenError('STATE_IO', `cannot read ${BASELINE_FILE}`, { cause: error });
  } finally {
    input.destroy();
  }
  return count;
}
