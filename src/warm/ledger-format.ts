/**
 * On-disk formats of the chunk ledger (format version 1).
 *
 * JOURNAL (`ledger.journal`): UTF-8 text, one record per line,
 *   `<payload>\t<crc32 of payload as 8 lowercase hex digits>\n`
 * Payload fields are separated by single spaces; strings (series names, dates) are
 * escaped so they hold no whitespace, control characters or '%' (see `escapeField`).
 *   J <version> <generation>                         first line (header)
 *   R <series> <slot> <confirmedAt> <outcome> <checksum|->   entry recorded
 *   D <series> <updatedDate>                          series date set (drops entries if it changed)
 *   F <series>                                        series forgotten
 * This is the ledger's codec over src/state/ (ledger-codec.ts): the journal's lines,
 * recovery record by record, compaction and the previous generation are shared with the
 * guard's baseline there.
 *
 * SNAPSHOT (`ledger.snapshot`): binary, little-endian, written to a temp file,
 * fsync'd and renamed into place, so it is always complete or absent.
 *   header  (32 B): magic "CVWLSNAP", u32 version, u32 generation, f64 writtenAt (ms),
 *                   u32 seriesCount, u32 entryCount
 *   per series:     u16 nameLength, name (UTF-8), u16 dateLength (0xFFFF = none), date,
 *                   u32 count, then count × { u32 slot, f64 confirmedAt, u8 flags, u32 checksum }
 *                   (17 B each, ascending slots; flags = outcome code | 0x80 when a checksum is set)
 *   trailer  (8 B): u32 crc32 of every preceding byte, magic "END!"
 * The journal whose header generation equals the snapshot's generation holds the
 * changes made after that snapshot; a journal with a lower generation is stale.
 */
import { crc32 } from 'node:zlib';
import { SnapshotError } from '../state/codec.js';
import { encodeJournalLines, journalHeaderLine } from '../state/journal-lines.js';
import { CODE_MASK, HAS_CHECKSUM, MAX_SLOT, MAX_SPAN, type SlotStore } from './ledger-store.js';

export const FORMAT_VERSION = 1;
export const SNAPSHOT_MAGIC = 'CVWLSNAP';
const SNAPSHOT_END = 'END!';
const HEADER_BYTES = 32;
const TRAILER_BYTES = 8;
const ENTRY_BYTES = 17;
const NO_DATE = 0xffff;
const MAX_STRING_BYTES = 0xfffe;

// ---------------------------------------------------------------- escaping

// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[\u0000-\u0020%\u007f]/;
// eslint-disable-next-line no-control-regex
const ESCAPE_ALL = /[\u0000-\u0020%\u007f]/g;

/** Escapes a string for a journal field: whitespace, controls and '%' become %XX. */
export function escapeField(value: string): string {
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(ESCAPE_ALL, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`);
}

function unescapeField(value: string): string {
  return value.includes('%') ? decodeURIComponent(value) : value;
}

// ---------------------------------------------------------------- journal

export type JournalOp =
  | { op: 'R'; series: string; slot: number; confirmedAt: number; flags: number; checksum: number }
  | { op: 'D'; series: string; date: string }
  | { op: 'F'; series: string };

/** The journal header's tag: `J <version> <generation>`. */
export const JOURNAL_TAG = 'J';

export function journalHeader(generation: number): string {
  return journalHeaderLine(JOURNAL_TAG, FORMAT_VERSION, generation);
}

export function recordLine(series: string, slot: number, confirmedAt: number, flags: number, checksum: number): string {
  const sum = flags & HAS_CHECKSUM ? String(checksum) : '-';
  return `R ${escapeField(series)} ${slot} ${confirmedAt} ${flags & CODE_MASK} ${sum}`;
}

export function dateLine(series: string, date: string): string {
  return `D ${escapeField(series)} ${escapeField(date)}`;
}

export function forgetLine(series: string): string {
  return `F ${escapeField(series)}`;
}

/** Appends the CRC suffix and newline to each payload; returns the bytes to write. */
export const encodeLines = encodeJournalLines;

const UINT = /^(0|[1-9][0-9]*)$/;

function parseUint(text: string | undefined, max: number): number | undefined {
  if (text === undefined || text.length > 10 || !UINT.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

/** Parses one record payload (header excluded); undefined when malformed. */
export function parseOp(payload: string): JournalOp | undefined {
  const f = payload.split(' ');
  const series = f[1];
  if (series === undefined || series.length === 0) return undefined;
  try {
    switch (f[0]) {
      case 'R': {
        if (f.length !== 6) return undefined;
        const slot = parseUint(f[2], MAX_SLOT);
        const at = f[3] === undefined || f[3] === '' ? NaN : Number(f[3]);
        const code = parseUint(f[4], 3);
        if (slot === undefined || !Number.isFinite(at) || code === undefined || code === 0) return undefined;
        let flags = code;
        let checksum = 0;
        if (f[5] !== '-') {
          const sum = parseUint(f[5], 0xffff_ffff);
          if (sum === undefined) return undefined;
          checksum = sum;
          flags |= HAS_CHECKSUM;
        }
        return { op: 'R', series: unescapeField(series), slot, confirmedAt: at, flags, checksum };
      }
      case 'D':
        if (f.length !== 3 || !f[2]) return undefined;
        return { op: 'D', series: unescapeField(series), date: unescapeField(f[2]) };
      case 'F':
        if (f.length !== 2) return undefined;
        return { op: 'F', series: unescapeField(series) };
      default:
        return undefined;
    }
  } catch {
    return undefined; // malformed escape
  }
}

// ---------------------------------------------------------------- snapshot

function clipUtf8(value: string): Buffer {
  const b = Buffer.from(value, 'utf8');
  if (b.length > MAX_STRING_BYTES) throw new RangeError(`ledger: string too long for snapshot (${b.length} bytes)`);
  return b;
}

/** Bytes `writeSnapshot` hands to its sink at a time: the snapshot never exists whole in memory. */
export const SNAPSHOT_PIECE_BYTES = 1 << 20;

/**
 * Serialises the whole store to `sink` in pieces of at most `pieceBytes` (one reused
 * buffer: the sink must consume each piece before returning, e.g. `writeSync`).
 * Synchronous, so it captures one consistent state; returns the bytes written. At a
 * million chunks a snapshot is 17 MB, which a single buffer would add to the peak RSS.
 */
export function writeSnapshot(
  store: SlotStore,
  generation: number,
  writtenAt: number,
  sink: (piece: Buffer) => void,
  pieceBytes = SNAPSHOT_PIECE_BYTES,
): number {
  const buf = Buffer.allocUnsafe(Math.max(pieceBytes, HEADER_BYTES + 2 * (2 + MAX_STRING_BYTES) + 4));
  let pos = 0;
  let crc = 0;
  let written = 0;
  const flush = () => {
    if (pos === 0) return;
    const piece = buf.subarray(0, pos);
    crc = crc32(piece, crc);
    sink(piece);
    written += pos;
    pos = 0;
  };
  const room = (n: number) => {
    if (pos + n > buf.length) flush();
  };
  let entries = 0;
  for (const id of store.seriesIds()) entries += store.countOf(id);
  buf.write(SNAPSHOT_MAGIC, 0, 'latin1');
  buf.writeUInt32LE(FORMAT_VERSION, 8);
  buf.writeUInt32LE(generation, 12);
  buf.writeDoubleLE(writtenAt, 16);
  buf.writeUInt32LE(store.seriesCount, 24);
  buf.writeUInt32LE(entries, 28);
  pos = HEADER_BYTES;
  for (const id of store.seriesIds()) {
    const name = clipUtf8(store.nameOf(id));
    const d = store.dateOf(id);
    const date = d === undefined ? undefined : clipUtf8(d);
    room(2 + name.length + 2 + (date?.length ?? 0) + 4);
    buf.writeUInt16LE(name.length, pos);
    pos += 2;
    pos += name.copy(buf, pos);
    if (date === undefined) {
      buf.writeUInt16LE(NO_DATE, pos);
      pos += 2;
    } else {
      buf.writeUInt16LE(date.length, pos);
      pos += 2;
      pos += date.copy(buf, pos);
    }
    buf.writeUInt32LE(store.countOf(id), pos);
    pos += 4;
    store.forEachEntry(id, (slot, at, flags, checksum) => {
      room(ENTRY_BYTES);
      buf.writeUInt32LE(slot, pos);
      buf.writeDoubleLE(at, pos + 4);
      buf[pos + 12] = flags;
      buf.writeUInt32LE(checksum, pos + 13);
      pos += ENTRY_BYTES;
    });
  }
  flush();
  buf.writeUInt32LE(crc >>> 0, 0);
  buf.write(SNAPSHOT_END, 4, 'latin1');
  sink(buf.subarray(0, TRAILER_BYTES));
  return written + TRAILER_BYTES;
}

/** The whole snapshot as one buffer (tests, small stores). */
export function encodeSnapshot(store: SlotStore, generation: number, writtenAt: number): Buffer {
  const pieces: Buffer[] = [];
  writeSnapshot(store, generation, writtenAt, (piece) => pieces.push(Buffer.from(piece)));
  return Buffer.concat(pieces);
}

export interface SnapshotInfo {
  version: number;
  generation: number;
  writtenAt: number;
  series: number;
  entries: number;
}

/** The entry count a snapshot's header claims, when its header is readable (for damage reports). */
export function snapshotClaimedEntries(buf: Buffer): number | undefined {
  if (buf.length < HEADER_BYTES || buf.toString('latin1', 0, 8) !== SNAPSHOT_MAGIC) return undefined;
  return buf.readUInt32LE(28);
}

/**
 * Validates a snapshot and loads it into an empty store. Throws SnapshotError
 * (before touching the store) when the file is not a complete, valid snapshot.
 */
export function decodeSnapshotInto(buf: Buffer, store: SlotStore): SnapshotInfo {
  if (buf.length < HEADER_BYTES + TRAILER_BYTES || buf.toString('latin1', 0, 8) !== SNAPSHOT_MAGIC) {
    throw new SnapshotError('not a ledger snapshot (bad magic or too short)');
  }
  const version = buf.readUInt32LE(8);
  if (version !== FORMAT_VERSION) {
    throw new SnapshotError(
      `snapshot format version ${version} is not supported (this build reads ${FORMAT_VERSION})`,
      version > FORMAT_VERSION ? version : undefined,
    );
  }
  const end = buf.length - TRAILER_BYTES;
  if (buf.toString('latin1', end + 4, end + 8) !== SNAPSHOT_END) throw new SnapshotError('snapshot is truncated (no trailer)');
  if (crc32(buf.subarray(0, end)) >>> 0 !== buf.readUInt32LE(end)) throw new SnapshotError('snapshot checksum mismatch');
  const info: SnapshotInfo = {
    version,
    generation: buf.readUInt32LE(12),
    writtenAt: buf.readDoubleLE(16),
    series: buf.readUInt32LE(24),
    entries: buf.readUInt32LE(28),
  };

  // First pass: validate the structure completely, so a bad file never half-loads.
  let pos = HEADER_BYTES;
  let total = 0;
  const names = new Set<string>();
  for (let s = 0; s < info.series; s++) {
    if (pos + 2 > end) throw new SnapshotError('snapshot series table overruns the file');
    const nl = buf.readUInt16LE(pos);
    if (nl === 0 || pos + 2 + nl > end) throw new SnapshotError('snapshot holds a malformed series name');
    const name = buf.toString('utf8', pos + 2, pos + 2 + nl);
    if (names.has(name)) throw new SnapshotError('snapshot holds a series twice');
    names.add(name);
    pos += 2 + nl;
    if (pos + 2 > end) throw new SnapshotError('snapshot series table overruns the file');
    const dl = buf.readUInt16LE(pos);
    pos += 2 + (dl === NO_DATE ? 0 : dl);
    if (pos + 4 > end) throw new SnapshotError('snapshot series table overruns the file');
    const count = buf.readUInt32LE(pos);
    pos += 4 + count * ENTRY_BYTES;
    if (pos > end) throw new SnapshotError('snapshot entries overrun the file');
    let prev = -1;
    for (let p = pos - count * ENTRY_BYTES; p < pos; p += ENTRY_BYTES) {
      const slot = buf.readUInt32LE(p);
      const flags = buf[p + 12] as number;
      if (slot > MAX_SLOT || slot <= prev || (flags & CODE_MASK) === 0 || (flags & ~(CODE_MASK | HAS_CHECKSUM)) !== 0) {
        throw new SnapshotError('snapshot holds a malformed entry');
      }
      prev = slot;
    }
    if (count > 0 && prev - buf.readUInt32LE(pos - count * ENTRY_BYTES) >= MAX_SPAN) throw new SnapshotError('snapshot series spans too many slots');
    total += count;
  }
  if (pos !== end || total !== info.entries) throw new SnapshotError('snapshot size does not match its header');

  // Second pass: load.
  pos = HEADER_BYTES;
  for (let s = 0; s < info.series; s++) {
    const nl = buf.readUInt16LE(pos);
    const name = buf.toString('utf8', pos + 2, pos + 2 + nl);
    pos += 2 + nl;
    const dl = buf.readUInt16LE(pos);
    const date = dl === NO_DATE ? undefined : buf.toString('utf8', pos + 2, pos + 2 + dl);
    pos += 2 + (dl === NO_DATE ? 0 : dl);
    const count = buf.readUInt32LE(pos);
    pos += 4;
    const id = store.ensureSeries(name);
    store.setDate(id, date);
    if (count > 0) {
      store.reserve(id, buf.readUInt32LE(pos), buf.readUInt32LE(pos + (count - 1) * ENTRY_BYTES));
      for (let i = 0; i < count; i++, pos += ENTRY_BYTES) {
        store.set(id, buf.readUInt32LE(pos), buf.readDoubleLE(pos + 4), buf[pos + 12] as number, buf.readUInt32LE(pos + 13));
      }
    }
  }
  return info;
}
export { SnapshotError };
