/**
 * The chunk ledger keeps what is intact: damage in the middle of its journal costs only
 * the lines it touches, a damaged snapshot falls back to the previous generation, and
 * after recovery the files are clean (a second open finds no damage).
 */
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LEDGER_FILES, Ledger, type LedgerOptions } from '../src/warm/ledger.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('ledger-damage-');
const opened: Ledger[] = [];
afterEach(async () => {
  for (const l of opened.splice(0)) await l.close();
});

async function openLedger(options: LedgerOptions = {}): Promise<Ledger> {
  const ledger = await Ledger.open(tmp.path, { durable: false, ...options });
  opened.push(ledger);
  return ledger;
}

async function closeAll(): Promise<void> {
  for (const l of opened.splice(0)) await l.close();
}

function record(ledger: Ledger, from: number, to: number): void {
  for (let slot = from; slot < to; slot++) ledger.record('s', slot, { confirmedAt: 1000 + slot, outcome: 'warm' });
}

/** 200 bytes of garbage, with newlines at the given offsets. */
function garbage(newlines: readonly number[]): Buffer {
  const bytes = Buffer.alloc(200, 0xab);
  for (const at of newlines) bytes[at] = 0x0a;
  return bytes;
}

describe('ledger journal damage', () => {
  // Slots 100..299: every record line is `R s 1xx 11xx 1 -\t<crc>\n`, 26 bytes, after a
  // 15-byte header. Bytes 2100..2299 touch records 80..87 (slots 180..187); record 87's
  // newline (byte 2302) survives, so the damage is one run of lines.
  const HEADER = 15;
  const LINE = 26;
  const AT = 2100;

  for (const [name, newlines, damagedLines] of [
    ['without newlines', [], 1],
    ['with newlines', [50, 120], 3],
  ] as const) {
    it(`keeps every record after 200 garbage bytes ${name}, and counts the ${damagedLines} damaged line(s)`, async () => {
      const a = await openLedger();
      record(a, 100, 300);
      await closeAll();
      const journal = join(tmp.path, LEDGER_FILES.journal);
      const bytes = await readFile(journal);
      expect(bytes.length).toBe(HEADER + 200 * LINE);
      garbage(newlines).copy(bytes, AT);
      await writeFile(journal, bytes);

      const b = await openLedger();
      expect(b.stats().entries).toBe(192);
      for (let slot = 180; slot <= 187; slot++) expect(b.get('s', slot)).toBeUndefined();
      expect(b.get('s', 179)).toEqual({ confirmedAt: 1179, outcome: 'warm' });
      expect(b.get('s', 188)).toEqual({ confirmedAt: 1188, outcome: 'warm' });
      expect(b.get('s', 299)).toEqual({ confirmedAt: 1299, outcome: 'warm' });
      expect(b.damage).toEqual([
        expect.objectContaining({
          store: 'ledger_journal',
          recordsSkipped: damagedLines,
          bytesSkipped: HEADER + 88 * LINE - (HEADER + 80 * LINE),
          entriesLost: 0,
        }),
      ]);
      b.record('s', 300, { confirmedAt: 1300, outcome: 'warm' });
      await closeAll();

      // Recovery compacted at once: the files are clean and hold everything kept.
      const c = await openLedger();
      expect(c.damage).toEqual([]);
      expect(c.stats().entries).toBe(193);
    });
  }

  it('does not count a torn last line as damage', async () => {
    const a = await openLedger();
    record(a, 100, 110);
    await closeAll();
    const journal = join(tmp.path, LEDGER_FILES.journal);
    const size = (await stat(journal)).size;
    await writeFile(journal, Buffer.concat([await readFile(journal), Buffer.from('R s 110 1110 1 -\t1234')]));
    const b = await openLedger();
    expect(b.damage).toEqual([]);
    expect(b.stats().entries).toBe(10);
    expect((await stat(journal)).size).toBe(size);
  });
});

describe('ledger snapshot damage', () => {
  /** Two compactions: snapshot (gen 2, 100 entries), previous snapshot (60) + previous journal (40), journal (10). */
  async function twoGenerations(): Promise<void> {
    const a = await openLedger();
    record(a, 0, 60);
    await closeAll();
    const b = await openLedger({ compactAfterRecords: 1 });
    await b.flush(); // compaction 1: no snapshot before it, so no previous generation
    record(b, 60, 80);
    await b.flush(); // appended: 20 records are not above a quarter of the 80 entries
    record(b, 80, 100);
    await b.flush(); // compaction 2: keeps snapshot 1 and its journal as *.prev
    await closeAll();
    const c = await openLedger();
    record(c, 100, 110);
    await closeAll();
    for (const f of [LEDGER_FILES.previousSnapshot, LEDGER_FILES.previousJournal]) await stat(join(tmp.path, f));
  }

  async function damageSnapshot(): Promise<void> {
    const snapshot = join(tmp.path, LEDGER_FILES.snapshot);
    const bytes = await readFile(snapshot);
    bytes.fill(0x5a, 200, 300);
    await writeFile(snapshot, bytes);
  }

  it('rebuilds a snapshot with 100 damaged bytes from the previous generation, losing nothing', async () => {
    await twoGenerations();
    await damageSnapshot();
    const a = await openLedger();
    expect(a.stats().entries).toBe(110);
    for (const slot of [0, 59, 60, 99, 100, 109]) expect(a.get('s', slot)).toEqual({ confirmedAt: 1000 + slot, outcome: 'warm' });
    expect(a.damage).toEqual([expect.objectContaining({ store: 'ledger_snapshot', recordsSkipped: 100, entriesLost: 0 })]);
    await closeAll();
    const b = await openLedger();
    expect(b.damage).toEqual([]);
    expect(b.stats().entries).toBe(110);
  });

  it('says how many entries were lost when the previous generation cannot bridge the gap', async () => {
    await twoGenerations();
    await damageSnapshot();
    await rm(join(tmp.path, LEDGER_FILES.previousJournal));
    const a = await openLedger();
    expect(a.stats().entries).toBe(10); // the journal alone
    expect(a.damage).toEqual([expect.objectContaining({ store: 'ledger_snapshot', recordsSkipped: 100, entriesLost: 100 })]);
  });
});
