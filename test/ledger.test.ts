import { spawnSync } from 'node:child_process';
import { appendFile, chmod, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { WardenError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { parseOptions } from '../src/config/parse.js';
import { LEDGER_FILES, Ledger, type LedgerOptions } from '../src/warm/ledger.js';
import { encodeLines } from '../src/warm/ledger-format.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2025, 0, 1);

const tmp = useTempDir('ledger-test-');
const open: Ledger[] = [];

afterEach(async () => {
  for (const ledger of open.splice(0)) await ledger.close().catch(() => undefined);
  await chmod(tmp.path, 0o755).catch(() => undefined); // a test locks it down; the fixture removes it next
});

async function openLedger(options: LedgerOptions = {}, stateDir = tmp.path): Promise<Ledger> {
  const ledger = await Ledger.open(stateDir, { durable: false, ...options });
  open.push(ledger);
  return ledger;
}

function fakeClock(start = T0) {
  return {
    t: start,
    now() {
      return this.t;
    },
  };
}

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

describe('Ledger basics', () => {
  it('resumes after close: entries, dates, outcomes and checksums survive', async () => {
    const a = await openLedger();
    a.record('j1/compressed', 0, { confirmedAt: T0, outcome: 'warm', checksum: 123 }, '2025-01-01T00:00:00.000000Z');
    a.record('j1/compressed', 1, { confirmedAt: T0 + 1, outcome: 'failed' });
    a.record('t9/context', 5000, { confirmedAt: T0 + 2, outcome: 'stuck', checksum: 0xffff_ffff });
    a.setUpdatedDate('t9/dates', 'D');
    await a.close();

    const b = await openLedger();
    expect(b.get('j1/compressed', 0)).toEqual({ confirmedAt: T0, outcome: 'warm', checksum: 123 });
    expect(b.get('j1/compressed', 1)).toEqual({ confirmedAt: T0 + 1, outcome: 'failed' });
    expect(b.get('j1/compressed', 2)).toBeUndefined();
    expect(b.get('t9/context', 5000)).toEqual({ confirmedAt: T0 + 2, outcome: 'stuck', checksum: 0xffff_ffff });
    expect(b.get('nope', 0)).toBeUndefined();
    expect(b.updatedDate('j1/compressed')).toBe('2025-01-01T00:00:00.000000Z');
    expect(b.updatedDate('t9/dates')).toBe('D');
    expect(b.updatedDate('t9/context')).toBeUndefined();
    expect(new Set(b.seriesNames())).toEqual(new Set(['j1/compressed', 't9/context', 't9/dates']));
    expect(b.stats()).toEqual({ series: 3, entries: 3, warm: 1, failed: 1, stuck: 1, oldestWarm: T0 });
    expect([...b.entries('j1/compressed')]).toEqual([
      [0, { confirmedAt: T0, outcome: 'warm', checksum: 123 }],
      [1, { confirmedAt: T0 + 1, outcome: 'failed' }],
    ]);
  });

  it('overwrites an entry in place and keeps counts right', async () => {
    const a = await openLedger();
    a.record('s', 3, { confirmedAt: 1, outcome: 'failed' });
    a.record('s', 3, { confirmedAt: 2, outcome: 'warm' });
    expect(a.stats()).toMatchObject({ entries: 1, warm: 1, failed: 0 });
    await a.close();
    const b = await openLedger();
    expect(b.get('s', 3)).toEqual({ confirmedAt: 2, outcome: 'warm' });
  });

  it('round-trips awkward series names and dates', async () => {
    const names = ['with space', 'tab\tand\nnewline', '100%/done', 'ünïcödé/säule', 'a'.repeat(500)];
    const a = await openLedger();
    for (const [i, name] of names.entries()) a.record(name, i, { confirmedAt: i, outcome: 'warm' }, `date ${name}`);
    await a.flush();
    const viaJournal = await openLedger({}, tmp.path).catch((e: unknown) => e);
    expect(viaJournal).toBeInstanceOf(WardenError); // still open in this process
    await a.close();
    const b = await openLedger();
    for (const [i, name] of names.entries()) {
      expect(b.get(name, i)).toEqual({ confirmedAt: i, outcome: 'warm' });
      expect(b.updatedDate(name)).toBe(`date ${name}`);
    }
  });

  it('normalises checksums: negative int32 to unsigned, non-integers to none', async () => {
    const a = await openLedger();
    a.record('s', 0, { confirmedAt: 1, outcome: 'warm', checksum: -1 });
    a.record('s', 1, { confirmedAt: 1, outcome: 'warm', checksum: Number.NaN });
    a.record('s', 2, { confirmedAt: 1, outcome: 'warm', checksum: 2 ** 40 });
    a.record('s', 3, { confirmedAt: 1, outcome: 'warm', checksum: 0 });
    expect(a.get('s', 0)?.checksum).toBe(0xffff_ffff);
    expect(a.get('s', 1)).toEqual({ confirmedAt: 1, outcome: 'warm' });
    expect(a.get('s', 2)).toEqual({ confirmedAt: 1, outcome: 'warm' });
    expect(a.get('s', 3)?.checksum).toBe(0);
  });

  it('rejects invalid input', async () => {
    const a = await openLedger();
    expect(() => a.record('', 0, { confirmedAt: 1, outcome: 'warm' })).toThrow(TypeError);
    expect(() => a.record('s', -1, { confirmedAt: 1, outcome: 'warm' })).toThrow(RangeError);
    expect(() => a.record('s', 1.5, { confirmedAt: 1, outcome: 'warm' })).toThrow(RangeError);
    expect(() => a.record('s', 2 ** 31, { confirmedAt: 1, outcome: 'warm' })).toThrow(RangeError);
    expect(() => a.record('s', 0, { confirmedAt: Number.NaN, outcome: 'warm' })).toThrow(TypeError);
    expect(() => a.record('s', 0, { confirmedAt: 1, outcome: 'toString' as 'warm' })).toThrow(TypeError);
    expect(() => a.setUpdatedDate('s', '')).toThrow(TypeError);
    a.record('far', 0, { confirmedAt: 1, outcome: 'warm' });
    expect(() => a.record('far', 2 ** 30, { confirmedAt: 1, outcome: 'warm' })).toThrow(/within/);
    expect(a.stats().entries).toBe(1);
  });

  it('handles sparse, descending and re-grown slots', async () => {
    const a = await openLedger();
    for (let slot = 10_000; slot >= 9000; slot -= 3) a.record('t1/context', slot, { confirmedAt: slot, outcome: 'warm' });
    for (let slot = 0; slot < 3000; slot += 1) a.record(`j${slot % 50}/compressed`, slot, { confirmedAt: slot, outcome: 'warm' });
    a.record('t1/context', 0, { confirmedAt: 0, outcome: 'warm' });
    await a.close();
    const b = await openLedger();
    for (let slot = 10_000; slot >= 9000; slot -= 3) expect(b.get('t1/context', slot)?.confirmedAt).toBe(slot);
    expect(b.get('t1/context', 9999)).toBeUndefined();
    expect(b.get('t1/context', 0)?.confirmedAt).toBe(0);
    for (let slot = 0; slot < 3000; slot += 1) expect(b.get(`j${slot % 50}/compressed`, slot)?.confirmedAt).toBe(slot);
    expect(b.stats().entries).toBe(334 + 3000 + 1);
  });
});

describe('freshness', () => {
  it('is fresh strictly below maxAge, by the injected clock', async () => {
    const clock = fakeClock();
    const a = await openLedger({ clock });
    a.record('j1/compressed', 0, { confirmedAt: T0, outcome: 'warm' });
    a.record('j1/compressed', 1, { confirmedAt: T0, outcome: 'failed' });
    a.record('j1/compressed', 2, { confirmedAt: T0, outcome: 'stuck' });
    const maxAge = 20 * HOUR;
    expect(a.isFresh('j1/compressed', 0, maxAge)).toBe(true);
    clock.t = T0 + maxAge - 1;
    expect(a.isFresh('j1/compressed', 0, maxAge)).toBe(true);
    clock.t = T0 + maxAge;
    expect(a.isFresh('j1/compressed', 0, maxAge)).toBe(false);
    clock.t = T0 + HOUR;
    expect(a.isFresh('j1/compressed', 1, maxAge)).toBe(false);
    expect(a.isFresh('j1/compressed', 2, maxAge)).toBe(false);
    expect(a.isFresh('j1/compressed', 3, maxAge)).toBe(false);
    expect(a.isFresh('unknown', 0, maxAge)).toBe(false);
    // The default --max-age (options table) is 20 h.
    const defaultMaxAge = parseOptions('warm', [], {}).values['max-age'];
    expect(defaultMaxAge).toBe(20 * HOUR);
    clock.t = T0 + 20 * HOUR - 1;
    expect(a.isFresh('j1/compressed', 0, defaultMaxAge)).toBe(true);
    clock.t = T0 + 20 * HOUR;
    expect(a.isFresh('j1/compressed', 0, defaultMaxAge)).toBe(false);
    // A clock that went back far: not trusted.
    clock.t = T0 - 6 * 60_000;
    expect(a.isFresh('j1/compressed', 0, maxAge)).toBe(false);
    clock.t = T0 - 60_000;
    expect(a.isFresh('j1/compressed', 0, maxAge)).toBe(true);
  });

  it('checks the series date when one is given', async () => {
    const clock = fakeClock();
    const a = await openLedger({ clock });
    a.record('j1/compressed', 0, { confirmedAt: T0, outcome: 'warm' }, 'D1');
    a.record('j2/compressed', 0, { confirmedAt: T0, outcome: 'warm' });
    expect(a.isFresh('j1/compressed', 0, HOUR, 'D1')).toBe(true);
    expect(a.isFresh('j1/compressed', 0, HOUR, 'D2')).toBe(false);
    expect(a.isFresh('j1/compressed', 0, HOUR)).toBe(true);
    expect(a.isFresh('j2/compressed', 0, HOUR, 'D1')).toBe(false); // no known date: cannot match
    expect(a.get('j1/compressed', 0)).toBeDefined(); // isFresh is pure
  });
});

describe('updated date invalidation', () => {
  it('drops the series entries when its date moves, and persists that', async () => {
    const clock = fakeClock();
    const a = await openLedger({ clock });
    for (let i = 0; i < 10; i++) a.record('j1/compressed', i, { confirmedAt: T0, outcome: 'warm' }, 'D1');
    a.record('j2/compressed', 0, { confirmedAt: T0, outcome: 'warm' }, 'D1');
    a.setUpdatedDate('j1/compressed', 'D1'); // same date: no-op
    expect(a.stats().entries).toBe(11);
    a.setUpdatedDate('j1/compressed', 'D2');
    expect(a.updatedDate('j1/compressed')).toBe('D2');
    expect([...a.entries('j1/compressed')]).toEqual([]);
    expect(a.isFresh('j1/compressed', 0, HOUR)).toBe(false);
    expect(a.isFresh('j2/compressed', 0, HOUR, 'D1')).toBe(true);
    // Recording with a new date re-dates and drops the rest.
    a.record('j2/compressed', 1, { confirmedAt: T0, outcome: 'warm' }, 'D3');
    expect([...a.entries('j2/compressed')].map(([slot]) => slot)).toEqual([1]);
    expect(a.stats()).toMatchObject({ entries: 1, warm: 1 });
    await a.close();

    const b = await openLedger({ clock });
    expect(b.updatedDate('j1/compressed')).toBe('D2');
    expect(b.get('j1/compressed', 0)).toBeUndefined();
    expect(b.updatedDate('j2/compressed')).toBe('D3');
    expect(b.get('j2/compressed', 0)).toBeUndefined();
    expect(b.isFresh('j2/compressed', 1, HOUR, 'D3')).toBe(true);
  });

  it('a first date voids warm entries recorded without one but keeps failed/stuck ones', async () => {
    const a = await openLedger();
    a.record('s', 0, { confirmedAt: 1, outcome: 'warm' });
    a.record('s', 1, { confirmedAt: 1, outcome: 'failed' });
    a.record('s', 2, { confirmedAt: 1, outcome: 'stuck' });
    a.setUpdatedDate('s', 'D');
    expect([...a.entries('s')].map(([slot]) => slot)).toEqual([1, 2]);
    await a.close();
    const b = await openLedger();
    expect([...b.entries('s')].map(([slot]) => slot)).toEqual([1, 2]);
    expect(b.stats()).toMatchObject({ entries: 2, warm: 0, failed: 1, stuck: 1 });
  });

  it('forgets a series (job deleted), also across compaction', async () => {
    const a = await openLedger({ compactAfterRecords: 5 });
    a.record('j1/compressed', 0, { confirmedAt: 1, outcome: 'warm' }, 'D');
    a.record('j2/compressed', 0, { confirmedAt: 1, outcome: 'warm' }, 'D');
    a.forgetSeries('j1/compressed');
    a.forgetSeries('never-existed');
    expect(a.updatedDate('j1/compressed')).toBeUndefined();
    expect([...a.seriesNames()]).toEqual(['j2/compressed']);
    await a.flush();
    for (let i = 0; i < 20; i++) a.record('j3/compressed', i, { confirmedAt: 1, outcome: 'warm' });
    a.forgetSeries('j3/compressed');
    await a.close();
    const b = await openLedger();
    expect([...b.seriesNames()]).toEqual(['j2/compressed']);
    expect(b.stats().entries).toBe(1);
  });
});

describe('journal damage', () => {
  it('truncates a torn last line without calling it damage; skips a damaged line and keeps what follows', async () => {
    const a = await openLedger();
    for (let i = 0; i < 100; i++) a.record('s', i, { confirmedAt: i, outcome: 'warm', checksum: i });
    await a.close();
    const journal = join(tmp.path, LEDGER_FILES.journal);
    const clean = (await stat(journal)).size;

    for (const [tail, damagedLines] of [
      ['R s 100 100 1 100', 0], // torn: no CRC, no newline
      ['R s 100 100 1 100\t0000', 0], // torn inside the CRC
      ['\0\0\0\0\0\0\0\0\0\0\0\0', 0], // zero-filled blocks after a power cut, no newline: torn
      ['R s 100 100 1 100\tdeadbeef\n', 1], // complete but wrong CRC: damage
      ['\xff\xfe garbage \n more garbage', 1], // one damaged line, then a torn one
    ] as const) {
      await appendFile(journal, Buffer.from(tail, 'latin1'));
      const { logger, lines } = capturingLogger();
      const b = await openLedger({ logger });
      expect(b.stats().entries).toBe(100);
      expect(b.get('s', 99)).toEqual({ confirmedAt: 99, outcome: 'warm', checksum: 99 });
      expect(b.get('s', 100)).toBeUndefined();
      expect(b.damage.reduce((n, d) => n + d.recordsSkipped, 0)).toBe(damagedLines);
      expect(lines.some((l) => String(l['msg']).includes('ledger state damaged'))).toBe(damagedLines > 0);
      if (damagedLines === 0) expect((await stat(journal)).size).toBe(clean);
      await b.close();
      open.pop();
    }

    // A valid record after garbage is kept (it carries its own CRC), and appends go on.
    await appendFile(journal, Buffer.concat([Buffer.from('junk\n'), encodeLines(['R s 500 500 1 -'])]));
    const c = await openLedger();
    expect(c.damage.map((d) => [d.store, d.recordsSkipped])).toEqual([['ledger_journal', 1]]);
    expect(c.get('s', 500)).toEqual({ confirmedAt: 500, outcome: 'warm' });
    c.record('s', 101, { confirmedAt: 101, outcome: 'warm' });
    await c.close();
    open.pop();
    const d = await openLedger();
    expect(d.damage).toEqual([]);
    expect(d.get('s', 101)).toEqual({ confirmedAt: 101, outcome: 'warm' });
    expect(d.stats().entries).toBe(102);
  });

  it('ignores a journal made stale by a newer snapshot (crash inside compaction)', async () => {
    const a = await openLedger();
    a.record('s', 0, { confirmedAt: 1, outcome: 'warm' }, 'D1');
    await a.close();
    const journal = join(tmp.path, LEDGER_FILES.journal);
    const stale = await readFile(journal); // generation 0, holds "D s D1" + "R s 0"

    const b = await openLedger({ compactAfterRecords: 1 });
    b.record('s', 1, { confirmedAt: 2, outcome: 'warm' }, 'D2');
    b.record('s', 2, { confirmedAt: 3, outcome: 'warm' });
    await b.close();
    expect((await readdir(tmp.path)).filter((f) => !f.endsWith('.prev')).sort()).toEqual([LEDGER_FILES.journal, LEDGER_FILES.snapshot]);

    // Put the old journal back, as if the process died after renaming the new
    // snapshot but before replacing the journal. Replaying it would re-date the
    // series to D1 and resurrect slot 0.
    await writeFile(journal, stale);
    const c = await openLedger();
    expect(c.updatedDate('s')).toBe('D2');
    expect([...c.entries('s')].map(([slot]) => slot)).toEqual([1, 2]);
    c.record('s', 3, { confirmedAt: 4, outcome: 'warm' });
    await c.close();
    const d = await openLedger();
    expect([...d.entries('s')].map(([slot]) => slot)).toEqual([1, 2, 3]);
  });

  it('moves an unreadable snapshot aside and keeps going with the journal', async () => {
    const a = await openLedger({ compactAfterRecords: 1 });
    for (let i = 0; i < 5; i++) a.record('s', i, { confirmedAt: i, outcome: 'warm' });
    await a.flush(); // compacts
    a.record('s', 10, { confirmedAt: 10, outcome: 'warm' });
    await a.close();
    const snapshot = join(tmp.path, LEDGER_FILES.snapshot);
    const bytes = await readFile(snapshot);
    bytes[40] = (bytes[40] ?? 0) ^ 0xff;
    await writeFile(snapshot, bytes);

    const { logger, lines } = capturingLogger();
    const b = await openLedger({ logger });
    expect(lines.some((l) => String(l['msg']).includes('snapshot unreadable'))).toBe(true);
    expect((await readdir(tmp.path)).some((f) => f.startsWith(`${LEDGER_FILES.snapshot}.corrupt-`))).toBe(true);
    // Records after the lost snapshot survive; the rest will simply be re-warmed.
    expect(b.get('s', 10)).toEqual({ confirmedAt: 10, outcome: 'warm' });
    await b.close();
    const c = await openLedger();
    expect(c.get('s', 10)).toEqual({ confirmedAt: 10, outcome: 'warm' });
  });

  it('refuses files of a newer format instead of overwriting them', async () => {
    const a = await openLedger();
    a.record('s', 0, { confirmedAt: 1, outcome: 'warm' });
    await a.close();
    await writeFile(join(tmp.path, LEDGER_FILES.journal), encodeLines(['J 2 0', 'X something new']));
    const error = await Ledger.open(tmp.path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe('STATE_IO');
    expect((error as WardenError).message).toMatch(/newer cvat-warden/);
    // The lock was released: a fixed directory opens again.
    await writeFile(join(tmp.path, LEDGER_FILES.journal), encodeLines(['J 1 0']));
    await (await openLedger()).close();
  });
});

describe('compaction', () => {
  it('keeps every entry through compaction and reload (200,000 entries)', async () => {
    const clock = fakeClock();
    const a = await openLedger({ clock, compactAfterRecords: 50_000, maxPendingRecords: 20_000 });
    const N = 200_000;
    for (let i = 0; i < N; i++) {
      const job = i >> 4;
      if ((i & 15) === 0) a.setUpdatedDate(`j${job}/compressed`, `2025-01-01T00:00:${job % 60}.${job}Z`);
      a.record(`j${job}/compressed`, i & 15, { confirmedAt: T0 + i, outcome: i % 97 === 0 ? 'failed' : 'warm', checksum: (i * 2654435761) >>> 0 });
    }
    await a.close();
    const files = await readdir(tmp.path);
    expect(files.filter((f) => !f.endsWith('.prev')).sort()).toEqual([LEDGER_FILES.journal, LEDGER_FILES.snapshot]);
    // The journal was rotated: it holds only what came after the last snapshot.
    expect((await stat(join(tmp.path, LEDGER_FILES.journal))).size).toBeLessThan(60_000 * 80);

    const b = await openLedger({ clock });
    expect(b.stats()).toMatchObject({ entries: N, series: N / 16, failed: Math.ceil(N / 97), oldestWarm: T0 + 1 });
    for (let i = 0; i < N; i++) {
      const job = i >> 4;
      const e = b.get(`j${job}/compressed`, i & 15);
      if (!e || e.confirmedAt !== T0 + i || e.checksum !== (i * 2654435761) >>> 0) throw new Error(`entry ${i} wrong: ${JSON.stringify(e)}`);
    }
    expect(b.updatedDate('j12499/compressed')).toBe('2025-01-01T00:00:19.12499Z');
    // How fast this is belongs to the benchmarks (bench/plan-memory.mjs reads a large ledger), not here.
  }, 60_000);

  it('answers 300,000 freshness lookups over 50,000 entries (their rate is for benchmarks)', async () => {
    const clock = fakeClock();
    const a = await openLedger({ clock });
    for (let i = 0; i < 50_000; i++) a.record(`j${i >> 4}/compressed`, i & 15, { confirmedAt: T0, outcome: 'warm' }, 'D');
    let fresh = 0;
    const n = 300_000;
    for (let i = 0; i < n; i++) if (a.isFresh(`j${(i % 50_000) >> 4}/compressed`, i & 15, HOUR, 'D')) fresh++;
    expect(fresh).toBe(n);
    expect(a.isFresh('j0/compressed', 0, HOUR, 'another date')).toBe(false);
  });
});

describe('lifecycle and errors', () => {
  it('close is idempotent, flushes, and makes writes throw', async () => {
    const a = await openLedger({ flushIntervalMs: 60_000 });
    a.record('s', 0, { confirmedAt: 1, outcome: 'warm' });
    const first = a.close();
    expect(a.close()).toBe(first);
    await first;
    await a.close();
    await a[Symbol.asyncDispose]();
    expect(() => a.record('s', 1, { confirmedAt: 1, outcome: 'warm' })).toThrow(/closed/);
    expect(a.get('s', 0)).toEqual({ confirmedAt: 1, outcome: 'warm' }); // reads still work
    expect(await readdir(tmp.path)).not.toContain(LEDGER_FILES.lock);
    const b = await openLedger();
    expect(b.get('s', 0)).toEqual({ confirmedAt: 1, outcome: 'warm' });
  });

  it('flushes on its own after flushIntervalMs', async () => {
    const a = await openLedger({ flushIntervalMs: 10 });
    a.record('s', 0, { confirmedAt: 1, outcome: 'warm' });
    const journal = join(tmp.path, LEDGER_FILES.journal);
    const before = (await stat(journal)).size;
    // no flush() call: only the timer can grow the journal
    await waitFor('the journal flushed by the timer', async () => (await stat(journal)).size > before, { timeoutMs: 2_000, intervalMs: 5 });
  });

  it('refuses a second open of the same directory in this process, even concurrently', async () => {
    const results = await Promise.allSettled([Ledger.open(tmp.path, { durable: false }), Ledger.open(tmp.path, { durable: false })]);
    const opened = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    open.push(...opened);
    expect(opened).toHaveLength(1);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((failed.reason as WardenError).code).toBe('STATE_IO');
    expect((failed.reason as WardenError).message).toMatch(/already open/);
  });

  it('survives failed writes: flush rejects, memory is kept, and the next write compacts', async () => {
    const a = await openLedger({ flushIntervalMs: 60_000 });
    a.record('s', 0, { confirmedAt: 1, outcome: 'warm' });
    await a.flush();
    // The journal's file handle inside src/state/journaled.ts, to inject a failed write.
    const internals = (a as unknown as { files: { journal: { write: (...args: unknown[]) => Promise<unknown> } } }).files;
    const realWrite = internals.journal.write.bind(internals.journal);
    let failNext = true;
    internals.journal.write = async (...args: unknown[]) => {
      if (failNext) {
        failNext = false;
        await realWrite(Buffer.from('R s 9 9 1 -\tdead'), 0, 14, args[3] ?? 0); // a torn batch
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }
      return realWrite(...args);
    };
    a.record('s', 1, { confirmedAt: 2, outcome: 'warm' });
    const error = await a.flush().catch((e: unknown) => e);
    expect((error as WardenError).code).toBe('STATE_IO');
    expect((error as WardenError).message).toMatch(/ENOSPC/);
    expect(a.get('s', 1)).toEqual({ confirmedAt: 2, outcome: 'warm' });
    a.record('s', 2, { confirmedAt: 3, outcome: 'warm' });
    await a.flush(); // compacts: snapshot + fresh journal
    expect(await readdir(tmp.path)).toContain(LEDGER_FILES.snapshot);
    await a.close();
    const b = await openLedger();
    expect([...b.entries('s')].map(([slot]) => slot)).toEqual([0, 1, 2]);
  });

  it('reports a state directory that cannot be created, naming it', async () => {
    const file = join(tmp.path, 'a-file');
    await writeFile(file, 'x');
    const stateDir = join(file, 'state');
    const error = await Ledger.open(stateDir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe('STATE_IO');
    expect((error as WardenError).message).toContain(stateDir);
    const error2 = await Ledger.open(file).catch((e: unknown) => e);
    expect((error2 as WardenError).code).toBe('STATE_IO');
    expect((error2 as WardenError).message).toContain(file);
  });

  it.skipIf(process.getuid?.() === 0)('reports a state directory that is not writable, naming it', async () => {
    const stateDir = join(tmp.path, 'ro');
    await (await openLedger({}, stateDir)).close();
    await chmod(stateDir, 0o500);
    const error = await Ledger.open(stateDir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe('STATE_IO');
    expect((error as WardenError).message).toMatch(/not writable/);
    expect((error as WardenError).message).toContain(stateDir);
    await chmod(stateDir, 0o755);
  });

  it('refuses a directory locked by another live process and takes over a dead one', async () => {
    const lock = join(tmp.path, LEDGER_FILES.lock);
    // A live owner: our parent process (certainly alive, not us).
    await writeFile(lock, JSON.stringify({ pid: process.ppid }));
    const error = await Ledger.open(tmp.path).catch((e: unknown) => e);
    expect((error as WardenError).code).toBe('STATE_IO');
    expect((error as WardenError).message).toContain(String(process.ppid));
    // A dead owner (a child that has exited) and a torn lock file are taken over.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    await writeFile(lock, JSON.stringify({ pid: Number(dead.stdout) }));
    await (await openLedger()).close();
    await writeFile(lock, '');
    await (await openLedger()).close();
  });
});
