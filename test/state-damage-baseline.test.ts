/**
 * The guard baseline keeps what is intact: damaged journal lines cost only themselves,
 * and a damaged snapshot is rebuilt from the previous generation (no entry lost).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BASELINE_JOURNAL, BASELINE_SNAPSHOT, BaselineWriter, baselineRecord, loadBaselineFiles, type SnapshotEntry } from '../src/guard/baseline-file.js';
import { BaselineTable } from '../src/guard/baseline-table.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('baseline-damage-');

const entry = (i: number): SnapshotEntry => [i, i + 1, 100 + i, 1_700_000_000_000 + i, 1000 + i, 7];
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => entry(from + k));

async function load() {
  const table = new BaselineTable();
  const loaded = await loadBaselineFiles(tmp.path, table);
  return { table, loaded };
}

describe('guard baseline damage', () => {
  it('keeps the journal records after 200 garbage bytes and counts the damaged lines', async () => {
    const writer = new BaselineWriter(tmp.path, (await load()).loaded, false);
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
    const writer = new BaselineWriter(tmp.path, (await load()).loaded, false);
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
    const repair = new BaselineWriter(tmp.path, loaded, false);
    const all: SnapshotEntry[] = [];
    for (let e = 0; e < table.count; e++) all.push([table.hi[e]!, table.lo[e]!, table.size[e]!, table.mtime[e]!, table.ino[e]!, table.dev[e]!]);
    await repair.compact(all);
    await repair.close();
    const again = await load();
    expect(again.loaded.damage).toEqual([]);
    expect(again.table.count).toBe(90);
  });
});
