/**
 * The guard baseline keeps what is intact: damaged journal lines cost only themselves,
 * and a damaged snapshot is rebuilt from the previous generation (no entry lost).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BASELINE_JOURNAL, BASELINE_SNAPSHOT, baselineCodec, baselineRecord, loadBaselineFiles, type SnapshotEntry } from '../src/guard/shell/baseline-file.js';
import { Journaled } from '../src/state/journaled.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('baseline-damage-');

const entry = (i: number): SnapshotEntry => [i, i + 1, 100 + i, 1_700_000_000_000 + i, 1000 + i, 7];
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => entry(from + k));

/** Read-only, as `check` loads it. */
async function load() {
  const { table, damage } = await loadBaselineFiles(tmp.path);
  return { table, loaded: { damage } };
}

/** The guard's writer (src/state/journaled.ts with the baseline codec). */
const openWriter = () => Journaled.open(tmp.path, baselineCodec, { durable: false });

describe('guard baseline damage', () => {
  it('keeps the journal records after 200 garbage bytes and counts the damaged lines', async () => {
    const writer = await openWriter();
    await writer.append(range(0, 100).map((e) => baselineRecord(...e)));
    await writer.close();
    const journal = join(tmp.path, BASELINE_JOURNAL);
    const bytes = await readFile(journal);
    // Records are lines after the header; overwrite 200 bytes from the start of record 40.
    const ends: number[] = []; // offset of each newline
    for (let at = bytes.indexOf(0x0a); at >= 0; at = bytes.indexOf(0x0a, at + 1)) ends.push(at);
    const start = ends[40]! + 1;
    bytes.fill(0xab, start, start + 200); // no newline in the garbage: one damaged line
    const destroyed = ends.filter((nl, line) => line > 40 && nl >= start && ends[line - 1]! + 1 < start + 200).length;
    await writeFile(journal, bytes);

    const { table, loaded } = await load();
    expect(loaded.damage).toEqual([expect.objectContaining({ store: 'baseline_journal', recordsSkipped: 1 })]);
    expect(destroyed).toBe(4); // each record line is about 50 bytes
    expect(table.count).toBe(100 - destroyed);
    expect(table.take({ hi: 99, lo: 100 })).toEqual(expect.objectContaining({ size: 199 }));
  });

  it('rebuilds a snapshot with 100 damaged bytes from the previous generation', async () => {
    const writer = await openWriter();
    await writer.append(range(0, 50).map((e) => baselineRecord(...e)));
    await writer.compact(range(0, 50)); // generation 1 (no previous to keep)
    await writer.append(range(50, 80).map((e) => baselineRecord(...e)));
    await writer.compact(range(0, 80)); // generation 2: keeps snapshot 1 + its journal
    await writer.append(range(80, 90).map((e) => baselineRecord(...e)));
    await writer.close();
    const snapshot = join(tmp.path, BASELINE_SNAPSHOT);
    const bytes = await readFile(snapshot);
    bytes.fill(0x5a, 400, 500);
    await writeFile(snapshot, bytes);

    const { table, loaded } = await load();
    expect(table.count).toBe(90);
    expect(loaded.damage).toEqual([expect.objectContaining({ store: 'baseline_snapshot', recordsSkipped: 80, entriesLost: 0 })]);

    // Compacting what was recovered leaves clean files.
    const repair = await openWriter();
    expect(repair.damage).toEqual(loaded.damage);
    expect(repair.needsCompaction).toBe(true);
    const all: SnapshotEntry[] = [];
    const t = repair.state;
    for (let e = 0; e < t.count; e++) all.push([t.hi[e]!, t.lo[e]!, t.size[e]!, t.mtime[e]!, t.ino[e]!, t.dev[e]!]);
    expect(all).toHaveLength(90);
    await repair.compact(all);
    await repair.close();
    const again = await load();
    expect(again.loaded.damage).toEqual([]);
    expect(again.table.count).toBe(90);
  });
});
