/**
 * The share baseline on disk, with the chunk ledger's crash discipline
 * (src/warm/ledger-format.ts): an append-only CRC'd journal plus atomic snapshots, so a
 * `kill -9` at any moment loses at most the last unsynced batch and never corrupts what
 * was written before.
 *
 * JOURNAL (`guard-baseline.journal`), UTF-8 lines `<payload>\t<crc32 hex8>\n`:
 *   G 2 <generation>                                   header
 *   B <key hex16> <size> <mtimeMs> <ino> <dev>         baseline taken or changed
 * Read record by record (src/state/journal-lines.ts): a damaged line is skipped and
 * counted, the records after it still apply; a torn last line is truncated by the writer.
 *
 * SNAPSHOT (`guard-baseline.snapshot`), binary little-endian, temp file + fsync + rename:
 *   header (16 B): magic "CVWGBASE", u32 version 2, u32 generation
 *   entries (40 B): u32 keyHi, u32 keyLo, f64 size, f64 mtimeMs, f64 ino, f64 dev
 *   trailer (12 B): u32 entry count, u32 crc32 of every preceding byte, "END!"
 * The journal whose generation equals the snapshot's holds the changes since it; an
 * older journal is stale (a compaction died between its two renames). Compaction keeps
 * the generation it replaces (`*.prev`): a damaged snapshot is rebuilt from the previous
 * snapshot + previous journal + journal (records only set entries, so that is exact).
 * Keys are path hashes (see baseline-table.ts): paths never need to be held to compare.
 */
import { mkdir, open, readFile, rename, rm, truncate, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { WardenError } from '../errors.js';
import { fsyncDir } from '../durable-fs.js';
import type { StateDamage } from '../state/damage.js';
import { encodeJournalLines, scanJournalLines } from '../state/journal-lines.js';
import type { Logger } from '../log.js';
import { pathKey, type BaselineTable } from './baseline-table.js';
import { readBaseline } from './state.js';

export const BASELINE_JOURNAL = 'guard-baseline.journal';
export const BASELINE_SNAPSHOT = 'guard-baseline.snapshot';
export const PREVIOUS_BASELINE_JOURNAL = 'guard-baseline.journal.prev';
export const PREVIOUS_BASELINE_SNAPSHOT = 'guard-baseline.snapshot.prev';
/** Format 1 (a TSV rewritten after scans), read once for migration. */
export const LEGACY_BASELINE = 'guard-baseline.tsv';
const VERSION = 2;
const MAGIC = 'CVWGBASE';
const END = 'END!';
const HEADER = 16;
const ENTRY = 40;
const TRAILER = 12;
const CHUNK = 1 << 20;

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

export function baselineRecord(hi: number, lo: number, size: number, mtimeMs: number, ino: number, dev: number): string {
  return `B ${hex8(hi)}${hex8(lo)} ${size} ${mtimeMs} ${ino} ${dev}`;
}

const encode = (payloads: readonly string[]): Buffer => encodeJournalLines(payloads);

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new WardenError('STATE_IO', `cannot read ${path.basename(file)}`, { cause: error });
  }
}

/** Decodes a snapshot into `table`; returns its generation, or undefined when corrupt. */
function decodeSnapshot(buf: Buffer, table: BaselineTable): number | undefined {
  if (buf.length < HEADER + TRAILER || buf.toString('latin1', 0, 8) !== MAGIC || buf.toString('latin1', buf.length - 4) !== END) return undefined;
  if (buf.readUInt32LE(8) !== VERSION) return undefined;
  const count = buf.readUInt32LE(buf.length - TRAILER);
  if (HEADER + count * ENTRY + TRAILER !== buf.length) return undefined;
  if (crc32(buf.subarray(0, buf.length - 8)) >>> 0 !== buf.readUInt32LE(buf.length - 8)) return undefined;
  for (let at = HEADER; at < HEADER + count * ENTRY; at += ENTRY) {
    table.set(
      buf.readUInt32LE(at),
      buf.readUInt32LE(at + 4),
      buf.readDoubleLE(at + 8),
      buf.readDoubleLE(at + 16),
      buf.readDoubleLE(at + 24),
      buf.readDoubleLE(at + 32),
    );
  }
  return buf.readUInt32LE(12);
}

interface ParsedJournal {
  generation: number | undefined;
  /** Where the complete lines end (the writer appends there). */
  validBytes: number;
  records: number;
  damagedLines: number;
  damagedBytes: number;
}

const HEADER_LINE = /^G ([0-9]{1,9}) ([0-9]{1,10})$/;

/** The journal's generation, 'damaged' (first line complete but bad), or undefined (nothing complete). */
function journalGeneration(buf: Buffer | undefined): number | 'damaged' | undefined {
  const nl = buf?.indexOf(0x0a) ?? -1;
  if (!buf || nl < 0) return undefined;
  let generation: number | undefined;
  scanJournalLines(buf.subarray(0, nl + 1), (payload) => {
    const m = HEADER_LINE.exec(payload);
    if (m?.[1] === String(VERSION)) generation = Number(m[2]);
    return generation !== undefined;
  });
  return generation ?? 'damaged';
}

/** Replays every intact record into `table`; damaged lines are skipped and counted. */
function replayJournal(buf: Buffer, generation: number | undefined, table: BaselineTable): ParsedJournal {
  const scan = scanJournalLines(buf, (payload, lineNo) => {
    if (lineNo === 0) return HEADER_LINE.test(payload);
    const f = payload.split(' ');
    const key = f[1] ?? '';
    const nums = f.slice(2).map(Number);
    if (f[0] !== 'B' || !/^[0-9a-f]{16}$/.test(key) || nums.length !== 4 || !nums.every(Number.isFinite)) return false;
    table.set(parseInt(key.slice(0, 8), 16), parseInt(key.slice(8), 16), nums[0]!, nums[1]!, nums[2]!, nums[3]!);
    return true;
  });
  const headerOk = journalGeneration(buf) !== 'damaged';
  return {
    generation,
    validBytes: scan.completeBytes,
    records: scan.lines - (headerOk ? 1 : 0),
    damagedLines: scan.damagedLines,
    damagedBytes: scan.damagedBytes,
  };
}

export interface LoadedBaseline {
  /** Entries loaded into the table. */
  entries: number;
  generation: number;
  /** The journal's usable bytes / records (the writer appends after them). */
  journalBytes: number;
  journalRecords: number;
  /** The journal on disk belongs to `generation` (else the writer starts a new one). */
  journalUsable: boolean;
  tornBytes: number;
  /** What was damaged and how it was recovered; the store compacts at once when any. */
  damage: StateDamage[];
}

/**
 * Loads snapshot + journal (or a format-1 TSV) into `table`. Never writes: `check`
 * uses it read-only; the writer truncates a torn tail itself.
 */
export async function loadBaselineFiles(stateDir: string, table: BaselineTable, logger?: Logger): Promise<LoadedBaseline> {
  const file = (name: string) => path.join(stateDir, name);
  const damage: StateDamage[] = [];
  const journalBuf = await readIfExists(file(BASELINE_JOURNAL));
  const header = journalGeneration(journalBuf);
  const snapshotBuf = await readIfExists(file(BASELINE_SNAPSHOT));
  let snapshotGeneration = snapshotBuf ? decodeSnapshot(snapshotBuf, table) : undefined;
  let currentGeneration = typeof header === 'number' ? header : undefined;
  const prevHeader = journalGeneration(await readIfExists(file(PREVIOUS_BASELINE_JOURNAL)));

  if (snapshotBuf && snapshotGeneration === undefined) {
    // Damaged: previous snapshot (P) + previous journal (P) + journal (P+1) rebuild it.
    const claimed = snapshotBuf.length >= HEADER + TRAILER ? snapshotBuf.readUInt32LE(snapshotBuf.length - TRAILER) : undefined;
    const plausible = claimed !== undefined && HEADER + claimed * ENTRY + TRAILER === snapshotBuf.length ? claimed : undefined;
    const prevBuf = await readIfExists(file(PREVIOUS_BASELINE_SNAPSHOT));
    // Only the generation is read first: the table is filled once the chain is known to hold.
    const prevGeneration = prevBuf && prevBuf.length >= HEADER ? prevBuf.readUInt32LE(12) : undefined;
    const bridged =
      prevGeneration !== undefined &&
      prevHeader === prevGeneration &&
      (header === 'damaged' || currentGeneration === prevGeneration + 1) &&
      decodeSnapshot(prevBuf!, table) === prevGeneration;
    if (bridged) {
      const prevParsed = replayJournal((await readIfExists(file(PREVIOUS_BASELINE_JOURNAL)))!, prevGeneration, table);
      snapshotGeneration = prevGeneration + 1;
      currentGeneration = snapshotGeneration; // proven by the previous journal even when the header is damaged
      if (prevParsed.damagedLines > 0) damage.push(journalDamage(file(PREVIOUS_BASELINE_JOURNAL), prevParsed));
    }
    damage.push({
      store: 'baseline_snapshot',
      file: file(BASELINE_SNAPSHOT),
      recordsSkipped: Math.max(1, plausible ?? 1),
      bytesSkipped: snapshotBuf.length,
      entriesLost: bridged ? 0 : (plausible ?? null),
      fallback: bridged ? 'previous snapshot + previous journal + journal' : 'journal alone; lost files get a fresh baseline at the next scan',
    });
  }
  if (!snapshotBuf) {
    // format 1 (until its first compaction): its entries come first, the journal's override them
    await readBaseline(stateDir, (rel, st) => {
      const key = pathKey(rel);
      table.set(key.hi, key.lo, st.size, st.mtimeMs, st.ino, st.dev);
    });
  }
  if (header === 'damaged' && currentGeneration === undefined) {
    // A compaction retires the journal of G-1 only after the snapshot of G is in place, so a
    // previous journal of G-1 proves the damaged one is G. Without proof, and with a
    // snapshot to contradict, skip it: stale baselines over newer ones would raise false
    // "modified" alerts; skipped ones only cost a fresh baseline for those files.
    if (snapshotGeneration === undefined || prevHeader === snapshotGeneration - 1) currentGeneration = snapshotGeneration ?? 0;
  }
  let parsed: ParsedJournal = { generation: undefined, validBytes: 0, records: 0, damagedLines: 0, damagedBytes: 0 };
  let usable = false;
  if (journalBuf && header === 'damaged' && currentGeneration === undefined) {
    damage.push({
      store: 'baseline_journal',
      file: file(BASELINE_JOURNAL),
      recordsSkipped: scanJournalLines(journalBuf, () => true).lines,
      bytesSkipped: journalBuf.length,
      entriesLost: 0,
      fallback: 'journal ignored: its generation is unknown',
    });
  } else if (journalBuf && currentGeneration !== undefined && (snapshotGeneration === undefined || currentGeneration >= snapshotGeneration)) {
    // A journal older than the snapshot is already inside it; a newer one is true on its own.
    parsed = replayJournal(journalBuf, currentGeneration, table);
    usable = true;
    if (parsed.damagedLines > 0) damage.push(journalDamage(file(BASELINE_JOURNAL), parsed));
  }
  const tornBytes = usable && journalBuf ? journalBuf.length - parsed.validBytes : 0;
  if (tornBytes > 0) logger?.debug({ stateDir, tornBytes }, 'share baseline journal ended in a torn append; ignored it');
  for (const note of damage) logger?.warn({ stateDir, ...note }, 'share baseline state damaged; kept what was intact');
  return {
    entries: table.count,
    generation: Math.max(snapshotGeneration ?? 0, parsed.generation ?? 0),
    journalBytes: usable ? parsed.validBytes : 0,
    journalRecords: parsed.records,
    journalUsable: usable && damage.length === 0,
    tornBytes,
    damage,
  };
}

function journalDamage(file: string, parsed: ParsedJournal): StateDamage {
  return {
    store: 'baseline_journal',
    file,
    recordsSkipped: parsed.damagedLines,
    bytesSkipped: parsed.damagedBytes,
    entriesLost: 0,
    fallback: 'records after the damage kept',
  };
}

/** One baseline entry for a snapshot. */
export type SnapshotEntry = [hi: number, lo: number, size: number, mtimeMs: number, ino: number, dev: number];

/** Appends journal batches (fdatasync'd) and compacts into snapshots. One writer per state dir. */
export class BaselineWriter {
  readonly #dir: string;
  readonly #durable: boolean;
  #generation: number;
  #handle: FileHandle | undefined;
  #bytes: number;
  #usable: boolean;
  #tornBytes: number;
  /** The journal holds every change since the snapshot (no append failed, no damage). */
  #complete: boolean;
  records: number;

  constructor(stateDir: string, loaded: LoadedBaseline, durable = true) {
    this.#dir = stateDir;
    this.#durable = durable;
    this.#generation = loaded.generation;
    this.#bytes = loaded.journalBytes;
    this.#usable = loaded.journalUsable;
    this.#tornBytes = loaded.tornBytes;
    this.#complete = loaded.damage.length === 0;
    this.records = loaded.journalRecords;
  }

  get #journalPath(): string {
    return path.join(this.#dir, BASELINE_JOURNAL);
  }

  async #writeAtomic(file: string, write: (handle: FileHandle) => Promise<void>, beforeRename?: () => Promise<void>): Promise<void> {
    const tmp = `${file}.tmp`;
    try {
      const handle = await open(tmp, 'w', 0o600);
      try {
        await write(handle);
        if (this.#durable) await handle.sync();
      } finally {
        await handle.close();
      }
      await beforeRename?.();
      await rename(tmp, file);
      if (this.#durable) await fsyncDir(this.#dir);
    } catch (error) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw new WardenError('STATE_IO', `cannot write ${path.basename(file)}`, { cause: error });
    }
  }

  async #freshJournal(): Promise<void> {
    await this.#handle?.close().catch(() => undefined);
    this.#handle = undefined;
    const header = encode([`G ${VERSION} ${this.#generation}`]);
    await this.#writeAtomic(this.#journalPath, (h) => h.writeFile(header).then(() => undefined));
    this.#bytes = header.length;
    this.records = 0;
    this.#usable = true;
    this.#tornBytes = 0;
  }

  async #open(): Promise<FileHandle> {
    if (this.#handle) return this.#handle;
    await mkdir(this.#dir, { recursive: true });
    if (!this.#usable) await this.#freshJournal();
    else if (this.#tornBytes > 0) {
      await truncate(this.#journalPath, this.#bytes);
      this.#tornBytes = 0;
    }
    this.#handle = await open(this.#journalPath, 'r+');
    return this.#handle;
  }

  /** Append records and make them durable. Throws STATE_IO. */
  async append(payloads: readonly string[]): Promise<void> {
    if (payloads.length === 0) return;
    try {
      const handle = await this.#open();
      const buf = encode(payloads);
      let done = 0;
      while (done < buf.length) done += (await handle.write(buf, done, buf.length - done, this.#bytes + done)).bytesWritten;
      if (this.#durable) await handle.datasync();
      this.#bytes += buf.length;
      this.records += payloads.length;
    } catch (error) {
      this.#complete = false;
      throw error instanceof WardenError ? error : new WardenError('STATE_IO', `cannot append to ${BASELINE_JOURNAL}`, { cause: error });
    }
  }

  /**
   * Write every entry into a new snapshot, then start an empty journal of its generation.
   * The replaced snapshot and journal are kept (`*.prev`) as the fallback of a damaged
   * snapshot, unless an append failed or damage was found (they cannot vouch for memory).
   */
  async compact(entries: Iterable<SnapshotEntry>): Promise<number> {
    await mkdir(this.#dir, { recursive: true });
    const keepPrevious = this.#complete;
    const file = (name: string) => path.join(this.#dir, name);
    const generation = this.#generation + 1;
    let count = 0;
    await this.#writeAtomic(
      path.join(this.#dir, BASELINE_SNAPSHOT),
      async (handle) => {
        const buf = Buffer.allocUnsafe(CHUNK);
        let crc = 0;
        let used = 0;
        let position = 0;
        const flush = async () => {
          crc = crc32(buf.subarray(0, used), crc);
          await handle.write(buf, 0, used, position);
          position += used;
          used = 0;
        };
        used = buf.write(MAGIC, 0, 'latin1');
        used = buf.writeUInt32LE(VERSION, used);
        used = buf.writeUInt32LE(generation, used);
        for (const [hi, lo, size, mtimeMs, ino, dev] of entries) {
          if (used + ENTRY > CHUNK) await flush();
          used = buf.writeUInt32LE(hi, used);
          used = buf.writeUInt32LE(lo, used);
          used = buf.writeDoubleLE(size, used);
          used = buf.writeDoubleLE(mtimeMs, used);
          used = buf.writeDoubleLE(ino, used);
          used = buf.writeDoubleLE(dev, used);
          count++;
        }
        used = buf.writeUInt32LE(count, used);
        crc = crc32(buf.subarray(0, used), crc);
        used = buf.writeUInt32LE(crc >>> 0, used);
        used += buf.write(END, used, 'latin1');
        await handle.write(buf, 0, used, position);
      },
      async () => {
        const kept =
          keepPrevious &&
          (await rename(file(BASELINE_SNAPSHOT), file(PREVIOUS_BASELINE_SNAPSHOT)).then(
            () => true,
            () => false,
          ));
        if (!kept) await rm(file(PREVIOUS_BASELINE_SNAPSHOT), { force: true });
      },
    );
    this.#generation = generation;
    await this.#handle?.close().catch(() => undefined);
    this.#handle = undefined;
    await rename(this.#journalPath, file(PREVIOUS_BASELINE_JOURNAL)).catch(() => undefined);
    await this.#freshJournal();
    this.#complete = true;
    await rm(path.join(this.#dir, LEGACY_BASELINE), { force: true }).catch(() => undefined);
    return count;
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
  }
}
