/**
 * The share baseline journal's `b` record (src/guard/shell/baseline-file.ts): the snapshot's
 * 40-byte entry in base64, written byte by byte. Every field comes back exactly (fractional
 * mtimes, inodes and devices up to 2^53), the lines are those of the string encoder, a
 * journal that mixes the older `B` records with `b` ones replays in order, and a `b` line
 * that is malformed yet carries a valid CRC is refused as damage, never half applied.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BASELINE_JOURNAL,
  BASELINE_RECORD_BYTES,
  baselineCodec,
  baselineRecord,
  loadBaselineFiles,
  writeBaselineRecord,
  type SnapshotEntry,
} from '../src/guard/shell/baseline-file.js';
import { BaselineTable } from '../src/guard/core/baseline-table.js';
import { encodeJournalLines, encodeJournalRecords, journalHeaderLine } from '../src/state/journal-lines.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('baseline-records-');

const ENTRIES: SnapshotEntry[] = [
  [0, 0, 0, 0, 0, 0],
  [0xffffffff, 0x80000001, 2 ** 40 + 3, 1_733_470_000_123 + 0.4567, 2 ** 53 - 1, 2 ** 53 - 2],
  [12345, 67890, 1_048_576, 1_600_000_000_000 + 1e-4, 98_765_432_101, 66_305],
  [1, 2, 5, -1.5, 3, 4],
];

function payloadOf(entry: SnapshotEntry): string {
  const buf = Buffer.alloc(BASELINE_RECORD_BYTES);
  const end = writeBaselineRecord(buf, 0, ...entry);
  expect(end).toBe(BASELINE_RECORD_BYTES);
  return buf.toString('latin1');
}

describe('baseline journal b records', () => {
  it('round-trips every field exactly', () => {
    for (const entry of ENTRIES) {
      const table = new BaselineTable();
      const payload = payloadOf(entry);
      expect(payload).toMatch(/^b [A-Za-z0-9+/]{54}$/);
      expect(baselineCodec.applyRecord(table, payload)).toBe(true);
      const [hi, lo, size, mtimeMs, ino, dev] = entry;
      expect(table.get({ hi, lo })).toEqual({ size, mtimeMs, ino, dev });
    }
  });

  it('encodes the lines the string encoder gives for the same payloads', () => {
    const written = encodeJournalRecords(ENTRIES.length, BASELINE_RECORD_BYTES, (i, buf, at) => writeBaselineRecord(buf, at, ...ENTRIES[i]!));
    expect(written.equals(encodeJournalLines(ENTRIES.map(payloadOf)))).toBe(true);
    expect(() => encodeJournalRecords(1, 4, (_i, buf, at) => at + buf.write('b too long', at, 'latin1'))).toThrow(RangeError);
  });

  it('refuses malformed b payloads', () => {
    const good = payloadOf(ENTRIES[2]!);
    const nan = Buffer.alloc(BASELINE_RECORD_BYTES);
    writeBaselineRecord(nan, 0, 1, 2, Number.NaN, 0, 0, 0);
    for (const bad of [good.slice(0, -1), `${good}A`, `${good.slice(0, -1)}!`, `b  ${good.slice(3)}`, nan.toString('latin1'), 'b ']) {
      const table = new BaselineTable();
      expect(baselineCodec.applyRecord(table, bad), bad).toBe(false);
      expect(table.count).toBe(0);
    }
  });

  it('replays a journal mixing B and b records in order (the later record wins)', async () => {
    const [hi, lo] = [7, 8];
    const lines = [
      journalHeaderLine(baselineCodec.journalTag, baselineCodec.version, 0),
      baselineRecord(hi, lo, 10, 1000.5, 11, 12),
      payloadOf([hi, lo, 20, 2000.25, 21, 22]),
      baselineRecord(9, 9, 30, 3000, 31, 32),
    ];
    await writeFile(join(tmp.path, BASELINE_JOURNAL), encodeJournalLines(lines));
    const { table, damage } = await loadBaselineFiles(tmp.path);
    expect(damage).toEqual([]);
    expect(table.count).toBe(2);
    expect(table.get({ hi, lo })).toEqual({ size: 20, mtimeMs: 2000.25, ino: 21, dev: 22 });
    expect(table.get({ hi: 9, lo: 9 })).toEqual({ size: 30, mtimeMs: 3000, ino: 31, dev: 32 });
  });
});
