/**
 * The share baseline on disk: the guard's codec over src/state/ (the record journal, the
 * snapshot chain, recovery and compaction shared with the chunk ledger), so a `kill -9`
 * at any moment loses at most the last unsynced batch and never corrupts what was written.
 *
 * JOURNAL (`guard-baseline.journal`), UTF-8 lines `<payload>\t<crc32 hex8>\n`:
 *   G 2 <generation>                                   header
 *   b <entry>                                          baseline taken or changed: the
 *                                                      snapshot's 40-byte entry in base64
 *                                                      (54 characters, no padding)
 *   B <key hex16> <size> <mtimeMs> <ino> <dev>         the same, as 0.1.0 wrote it
 *                                                      (read, no longer written)
 * `b` is written byte by byte with no string per record: `B`'s number formatting was
 * ~390 MB of garbage and most of the journal's 0.9 s at a 1,000,000-file start (profiled).
 * A cvat-warden older than `b` reads such lines as damaged (skipped, counted): after a
 * downgrade, those files get a fresh baseline at the next scan.
 *
 * SNAPSHOT (`guard-baseline.snapshot`), binary little-endian, written atomically:
 *   header (16 B): magic "CVWGBASE", u32 version 2, u32 generation
 *   entries (40 B): u32 keyHi, u32 keyLo, f64 size, f64 mtimeMs, f64 ino, f64 dev
 *   trailer (12 B): u32 entry count, u32 crc32 of every preceding byte, "END!"
 * Records only set entries, so previous snapshot + previous journal + journal rebuild a
 * damaged snapshot exactly. `guard-baseline.tsv` is format 1, read while no snapshot
 * exists and removed by the first compaction. Keys are path hashes (baseline-table.ts).
 */
import { crc32 } from 'node:zlib';
import { SnapshotError, type StateCodec } from '../../state/codec.js';
import type { StateDamage } from '../../state/damage.js';
import { hex8 } from '../../state/journal-lines.js';
import { recoverState } from '../../state/recover.js';
import type { Logger } from '../../log.js';
import { BaselineTable, pathKey } from '../core/baseline-table.js';
import { BASELINE_FILE, readBaseline } from './state.js';

export const BASELINE_JOURNAL = 'guard-baseline.journal';
export const BASELINE_SNAPSHOT = 'guard-baseline.snapshot';
export const PREVIOUS_BASELINE_JOURNAL = 'guard-baseline.journal.prev';
export const PREVIOUS_BASELINE_SNAPSHOT = 'guard-baseline.snapshot.prev';
const VERSION = 2;
const MAGIC = 'CVWGBASE';
const END = 'END!';
const HEADER = 16;
const ENTRY = 40;
const TRAILER = 12;
const PIECE = 1 << 20;
const KEY = /^[0-9a-f]{16}$/;

/** One baseline entry: the path key's halves and the four stat fields. */
export type SnapshotEntry = [hi: number, lo: number, size: number, mtimeMs: number, ino: number, dev: number];

export function baselineRecord(hi: number, lo: number, size: number, mtimeMs: number, ino: number, dev: number): string {
  return `B ${hex8(hi)}${hex8(lo)} ${size} ${mtimeMs} ${ino} ${dev}`;
}

const BASE64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1');
/** Bytes of a `b` record's payload: "b ", then 40 bytes as 54 base64 characters. */
export const BASELINE_RECORD_BYTES = 2 + Math.ceil((ENTRY * 4) / 3);
const entryScratch = Buffer.alloc(ENTRY);

/** Writes the `b` record of one entry at `buf[at]`; returns where it ends (`at + BASELINE_RECORD_BYTES`). */
export function writeBaselineRecord(buf: Buffer, at: number, hi: number, lo: number, size: number, mtimeMs: number, ino: number, dev: number): number {
  const e = entryScratch;
  e.writeUInt32LE(hi, 0);
  e.writeUInt32LE(lo, 4);
  e.writeDoubleLE(size, 8);
  e.writeDoubleLE(mtimeMs, 16);
  e.writeDoubleLE(ino, 24);
  e.writeDoubleLE(dev, 32);
  buf[at++] = 0x62; // 'b'
  buf[at++] = 0x20;
  let i = 0;
  for (; i + 3 <= ENTRY; i += 3) {
    const n = (e[i]! << 16) | (e[i + 1]! << 8) | e[i + 2]!;
    buf[at++] = BASE64[n >>> 18]!;
    buf[at++] = BASE64[(n >>> 12) & 63]!;
    buf[at++] = BASE64[(n >>> 6) & 63]!;
    buf[at++] = BASE64[n & 63]!;
  }
  // 40 = 13 × 3 + 1: the last byte is two characters.
  const last = e[i]!;
  buf[at++] = BASE64[last >>> 2]!;
  buf[at++] = BASE64[(last & 3) << 4]!;
  return at;
}

const RECORD_B64 = /^b [A-Za-z0-9+/]{54}$/;

function applyRecord(table: BaselineTable, payload: string): boolean {
  if (payload.startsWith('b ')) {
    if (!RECORD_B64.test(payload)) return false;
    const e = Buffer.from(payload.slice(2), 'base64');
    if (e.length !== ENTRY) return false;
    const nums = [e.readDoubleLE(8), e.readDoubleLE(16), e.readDoubleLE(24), e.readDoubleLE(32)];
    if (!nums.every(Number.isFinite)) return false;
    table.set(e.readUInt32LE(0), e.readUInt32LE(4), nums[0]!, nums[1]!, nums[2]!, nums[3]!);
    return true;
  }
  const f = payload.split(' ');
  const key = f[1] ?? '';
  const nums = f.slice(2).map(Number);
  if (f[0] !== 'B' || !KEY.test(key) || nums.length !== 4 || !nums.every(Number.isFinite)) return false;
  table.set(parseInt(key.slice(0, 8), 16), parseInt(key.slice(8), 16), nums[0]!, nums[1]!, nums[2]!, nums[3]!);
  return true;
}

/** The entry count a snapshot's trailer claims, when it matches the file's size. */
function claimedEntries(buf: Buffer): number | undefined {
  if (buf.length < HEADER + TRAILER) return undefined;
  const claimed = buf.readUInt32LE(buf.length - TRAILER);
  return HEADER + claimed * ENTRY + TRAILER === buf.length ? claimed : undefined;
}

function decodeSnapshot(buf: Buffer, table: BaselineTable): number {
  if (buf.length < HEADER + TRAILER || buf.toString('latin1', 0, 8) !== MAGIC || buf.toString('latin1', buf.length - 4) !== END) {
    throw new SnapshotError('not a share baseline snapshot (bad magic, trailer or size)');
  }
  if (buf.readUInt32LE(8) !== VERSION) throw new SnapshotError(`share baseline snapshot version ${buf.readUInt32LE(8)} is not ${VERSION}`);
  const count = claimedEntries(buf);
  if (count === undefined) throw new SnapshotError('share baseline snapshot size does not match its count');
  if (crc32(buf.subarray(0, buf.length - 8)) >>> 0 !== buf.readUInt32LE(buf.length - 8)) throw new SnapshotError('share baseline snapshot checksum mismatch');
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

/** Encodes every entry piece by piece (one reused 1 MiB buffer); returns the entries written. */
function writeSnapshot(entries: Iterable<SnapshotEntry>, generation: number, write: (piece: Buffer) => void): number {
  const buf = Buffer.allocUnsafe(PIECE);
  let crc = 0;
  let used = 0;
  let count = 0;
  const flush = () => {
    crc = crc32(buf.subarray(0, used), crc);
    write(buf.subarray(0, used));
    used = 0;
  };
  used = buf.write(MAGIC, 0, 'latin1');
  used = buf.writeUInt32LE(VERSION, used);
  used = buf.writeUInt32LE(generation, used);
  for (const [hi, lo, size, mtimeMs, ino, dev] of entries) {
    if (used + ENTRY + TRAILER > PIECE) flush();
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
  write(buf.subarray(0, used));
  return count;
}

export const baselineCodec: StateCodec<BaselineTable, Iterable<SnapshotEntry>> = {
  label: 'share baseline',
  files: {
    journal: BASELINE_JOURNAL,
    snapshot: BASELINE_SNAPSHOT,
    previousJournal: PREVIOUS_BASELINE_JOURNAL,
    previousSnapshot: PREVIOUS_BASELINE_SNAPSHOT,
    legacy: [BASELINE_FILE],
  },
  damage: { journal: 'baseline_journal', snapshot: 'baseline_snapshot' },
  journalTag: 'G',
  version: VERSION,
  refuseNewer: false,
  empty: () => new BaselineTable(),
  decodeSnapshot,
  claimedEntries,
  applyRecord,
  writeSnapshot,
  async loadLegacy(dir, table) {
    // format 1 (until its first compaction): its entries come first, the journal's override them
    await readBaseline(dir, (rel, st) => {
      const key = pathKey(rel);
      table.set(key.hi, key.lo, st.size, st.mtimeMs, st.ino, st.dev);
    });
  },
  lossNote: 'journal alone; lost files get a fresh baseline at the next scan',
};

/** Loads the baseline read-only (`check`): nothing is moved, truncated or rewritten. */
export async function loadBaselineFiles(stateDir: string, logger?: Logger): Promise<{ table: BaselineTable; damage: StateDamage[] }> {
  const recovered = await recoverState(stateDir, baselineCodec, { logger });
  return { table: recovered.state, damage: recovered.damage };
}
