/**
 * State files written before src/state/ existed (issue 17) open unchanged: the fixtures in
 * test/fixtures/state-before-issue-17/ were written by the code of commit fb44dad (the
 * ledger through three opens with compactions, the baseline through two compactions plus
 * journal records, guard-state.json by saveState). The first compaction rewrites them with
 * mode 0600 (the ledger's were 0644): opening makes them 0600, compaction keeps the content.
 */
import { cp, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baselineCodec, loadBaselineFiles } from '../src/guard/shell/baseline-file.js';
import { pathKey } from '../src/guard/core/baseline-table.js';
import { loadState } from '../src/guard/shell/state.js';
import { Journaled } from '../src/state/journaled.js';
import { LEDGER_FILES, Ledger } from '../src/warm/ledger.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('state-compat-');
const FIXTURES = new URL('./fixtures/state-before-issue-17/', import.meta.url).pathname;

async function copyFixtures(): Promise<void> {
  await cp(FIXTURES, tmp.path, { recursive: true });
}

function ledgerContent(ledger: Ledger) {
  return {
    j7: [...ledger.entries('j7/compressed')],
    date: ledger.updatedDate('j7/compressed'),
    t3: [...ledger.entries('t3/context')],
    j9: ledger.get('j9/preview', 0),
    stats: ledger.stats(),
  };
}

describe('state files of the format before issue 17', () => {
  it('the ledger opens with every entry, and makes its files 0600, and keeps them after more records', async () => {
    await copyFixtures();
    const ledger = await Ledger.open(tmp.path, { durable: false, compactAfterRecords: 1 });
    expect(ledger.damage).toEqual([]);
    const before = ledgerContent(ledger);
    expect(before.j7).toHaveLength(41);
    expect(before.j7[0]).toEqual([0, { confirmedAt: 1_763_990_000_000, outcome: 'warm', checksum: 1000 }]);
    expect(before.j7[40]).toEqual([40, { confirmedAt: 1_763_990_000_040, outcome: 'stuck' }]);
    expect(before.date).toBe('2026-11-01T00:00:00Z');
    expect(before.t3).toEqual([]); // forgotten in the journal
    expect(before.j9).toEqual({ confirmedAt: 1_763_990_000_901, outcome: 'warm', checksum: 77 });
    ledger.record('j9/preview', 1, { confirmedAt: 1_763_990_001_000, outcome: 'warm' });
    await ledger.close(); // compacts (threshold 1)
    for (const f of [LEDGER_FILES.snapshot, LEDGER_FILES.journal]) expect((await stat(join(tmp.path, f))).mode & 0o777).toBe(0o600);
    const again = await Ledger.open(tmp.path, { durable: false });
    expect(again.damage).toEqual([]);
    const after = ledgerContent(again);
    expect(after.j7).toEqual(before.j7);
    expect(after.j9).toEqual(before.j9);
    expect(again.get('j9/preview', 1)).toEqual({ confirmedAt: 1_763_990_001_000, outcome: 'warm' });
    await again.close();
  });

  it('the share baseline loads all 35 entries read-only and through the writer, and compacts to the same', async () => {
    await copyFixtures();
    const names = await readdir(tmp.path);
    const readOnly = await loadBaselineFiles(tmp.path);
    expect(readOnly.damage).toEqual([]);
    expect(readOnly.table.count).toBe(35);
    expect(await readdir(tmp.path)).toEqual(names); // read-only: nothing moved or written
    expect(readOnly.table.get({ hi: 34, lo: 35 })).toEqual({ size: 134, mtimeMs: 1_700_000_000_034, ino: 1034, dev: 7 });
    const writer = await Journaled.open(tmp.path, baselineCodec, { durable: false });
    expect(writer.state.count).toBe(35);
    expect(writer.records).toBe(5);
    const t = writer.state;
    await writer.compact(Array.from({ length: t.count }, (_, e) => [t.hi[e]!, t.lo[e]!, t.size[e]!, t.mtime[e]!, t.ino[e]!, t.dev[e]!]));
    await writer.close();
    const after = await loadBaselineFiles(tmp.path);
    expect(after.table.count).toBe(35);
    expect(after.table.get({ hi: 0, lo: 1 })).toEqual({ size: 100, mtimeMs: 1_700_000_000_000, ino: 1000, dev: 7 });
  });

  it('guard-state.json keeps its open problems', async () => {
    await copyFixtures();
    const state = await loadState(tmp.path);
    expect(state?.problems).toEqual([{ path: 'a/b.jpg', kind: 'missing', role: 'frame', since: 1_763_000_000_000, taskIds: [3] }]);
  });

  it('format 1 of the baseline (guard-baseline.tsv) is read until the first compaction, which removes it', async () => {
    const tsv = '# cvat-warden guard baseline\n10\t1700000000000\t5\t7\t"a/b.jpg"\n11\t1700000000001\t6\t7\t"a/c d.jpg"\nnot a line\n';
    await writeFile(join(tmp.path, 'guard-baseline.tsv'), tsv);
    const writer = await Journaled.open(tmp.path, baselineCodec, { durable: false });
    expect(writer.state.count).toBe(2);
    expect(writer.state.get(pathKey('a/c d.jpg'))).toEqual({ size: 11, mtimeMs: 1_700_000_000_001, ino: 6, dev: 7 });
    const t = writer.state;
    await writer.compact(Array.from({ length: t.count }, (_, e) => [t.hi[e]!, t.lo[e]!, t.size[e]!, t.mtime[e]!, t.ino[e]!, t.dev[e]!]));
    await writer.close();
    expect(await readdir(tmp.path)).not.toContain('guard-baseline.tsv');
    expect((await loadBaselineFiles(tmp.path)).table.get(pathKey('a/b.jpg'))).toEqual({ size: 10, mtimeMs: 1_700_000_000_000, ino: 5, dev: 7 });
  });
});
