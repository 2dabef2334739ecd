/**
 * The line format both state journals share (the chunk ledger's and the guard
 * baseline's): `<payload>\t<crc32 of the payload as 8 lowercase hex digits>\n`, and the
 * one scanner that reads it record by record.
 *
 * A complete line (it ends in '\n') that fails its CRC, or whose payload the reader
 * refuses, is damage: it is skipped and counted, and the lines after it are still read —
 * each carries its own CRC, so bytes destroyed in the middle cost only the lines they
 * touch. Bytes after the last '\n' are a torn append (a crash mid-write), the normal
 * end of a journal, and are not counted as damage. A CRC covers its line as a whole:
 * nothing is salvaged from inside a damaged line.
 */
import { crc32 } from 'node:zlib';
import { CRC32_TABLE } from './crc32-table.js';

const NEWLINE = 0x0a;
const TAB = 0x09;
/** '\t' + 8 hex digits. */
const SUFFIX_BYTES = 9;
const HEX8 = /^[0-9a-f]{8}$/;

const BYTE_HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/** `n` as 8 lowercase hex digits (a table lookup per byte: journals write millions of keys). */
export function hex8(n: number): string {
  const u = n >>> 0;
  return BYTE_HEX[u >>> 24]! + BYTE_HEX[(u >>> 16) & 255]! + BYTE_HEX[(u >>> 8) & 255]! + BYTE_HEX[u & 255]!;
}

/**
 * The bytes of `payloads[from..to)` as journal lines (CRC suffix and newline appended),
 * written straight into one buffer with the CRC computed over the bytes just written: a
 * zlib call and a string per line cost 1.1 s of a million-file start-up (profiled), this
 * a fraction. The output is byte for byte what `${payload}\t${hex8(crc32(payload))}\n`
 * gives (test/journal-lines.test.ts compares them).
 */
export function encodeJournalLines(payloads: readonly string[], from = 0, to = payloads.length): Buffer {
  let bound = 0;
  for (let i = from; i < to; i++) bound += (payloads[i] as string).length * 3 + 1 + SUFFIX_BYTES;
  const buf = Buffer.allocUnsafe(bound);
  let at = 0;
  for (let i = from; i < to; i++) {
    const start = at;
    at += buf.write(payloads[i] as string, at, 'utf8');
    at = endLine(buf, start, at);
  }
  return buf.subarray(0, at);
}

/**
 * Journal lines whose payloads a codec writes as bytes, with no string per record:
 * `write(i, buf, at)` puts payload `i` (ASCII without tab or newline, at most `maxPayload`
 * bytes) at `at` and returns where it ends. The lines are those `encodeJournalLines` gives
 * for the same payloads.
 */
export function encodeJournalRecords(count: number, maxPayload: number, write: (i: number, buf: Buffer, at: number) => number): Buffer {
  const buf = Buffer.allocUnsafe(count * (maxPayload + 1 + SUFFIX_BYTES));
  let at = 0;
  for (let i = 0; i < count; i++) {
    const start = at;
    at = write(i, buf, at);
    if (at - start > maxPayload) throw new RangeError(`journal record ${i} is ${at - start} bytes, more than ${maxPayload}`);
    at = endLine(buf, start, at);
  }
  return buf.subarray(0, at);
}

/** Appends the CRC suffix and newline of the payload at `buf[start..at)`; returns the end of the line. */
function endLine(buf: Buffer, start: number, at: number): number {
  let c = -1;
  for (let j = start; j < at; j++) c = CRC32_TABLE[(c ^ buf[j]!) & 255]! ^ (c >>> 8);
  c = ~c;
  buf[at++] = TAB;
  for (let shift = 28; shift >= 0; shift -= 4) buf[at++] = HEX_DIGITS[(c >>> shift) & 15]!;
  buf[at++] = NEWLINE;
  return at;
}

export interface JournalScan {
  /** Complete lines read whose CRC matched and whose payload the reader took. */
  lines: number;
  /** Complete lines skipped: bad CRC, garbage, or a payload the reader refused. */
  damagedLines: number;
  /** Bytes of those lines (newlines included). */
  damagedBytes: number;
  /** Bytes after the last newline: a torn last append, not damage. */
  tornBytes: number;
  /** Where the complete lines end: an append may continue here when nothing was damaged. */
  completeBytes: number;
}

/**
 * Reads every complete line of `buf` in order. `take(payload, lineNo)` gets the payload
 * of each line whose CRC matches (`lineNo` counts complete lines from 0, damaged ones
 * included, so line 0 is the header position) and returns false to refuse it as
 * malformed. One pass; every step advances past a newline, so the loop is bounded by
 * the buffer's length.
 */
export function scanJournalLines(buf: Buffer, take: (payload: string, lineNo: number) => boolean): JournalScan {
  const scan: JournalScan = { lines: 0, damagedLines: 0, damagedBytes: 0, tornBytes: 0, completeBytes: 0 };
  let pos = 0;
  let lineNo = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(NEWLINE, pos);
    if (nl < 0) break;
    if (lineIsIntact(buf, pos, nl) && take(buf.toString('utf8', pos, nl - SUFFIX_BYTES), lineNo)) scan.lines++;
    else {
      scan.damagedLines++;
      scan.damagedBytes += nl + 1 - pos;
    }
    lineNo++;
    pos = nl + 1;
  }
  scan.completeBytes = pos;
  scan.tornBytes = buf.length - pos;
  return scan;
}

/** Whether `buf[start..nl)` is `<payload>\t<hex8>` with a matching CRC. */
function lineIsIntact(buf: Buffer, start: number, nl: number): boolean {
  const tab = nl - SUFFIX_BYTES;
  if (tab < start || buf[tab] !== TAB) return false;
  const hex = buf.toString('latin1', tab + 1, nl);
  return HEX8.test(hex) && crc32(buf.subarray(start, tab)) >>> 0 === parseInt(hex, 16);
}

/** A journal's first line: `<tag> <format version> <generation>`. */
export interface JournalHeader {
  version: number;
  generation: number;
}

const HEADER_FIELDS = / ([0-9]{1,9}) ([0-9]{1,10})$/;

/** The header payload of a journal of `tag` (one letter per format, e.g. 'J' for the ledger). */
export function journalHeaderLine(tag: string, version: number, generation: number): string {
  return `${tag} ${version} ${generation}`;
}

function parseHeader(tag: string, payload: string): JournalHeader | undefined {
  if (!payload.startsWith(`${tag} `)) return undefined;
  const m = HEADER_FIELDS.exec(payload);
  return m && m.index === tag.length ? { version: Number(m[1]), generation: Number(m[2]) } : undefined;
}

/**
 * The journal's header (its first line), 'damaged' when that line is complete but fails
 * its CRC or is no header of `tag`, undefined when the journal holds no complete line yet.
 */
export function readJournalHeader(buf: Buffer, tag: string): JournalHeader | 'damaged' | undefined {
  const nl = buf.indexOf(NEWLINE);
  if (nl < 0) return undefined;
  let header: JournalHeader | undefined;
  scanJournalLines(buf.subarray(0, nl + 1), (payload) => (header = parseHeader(tag, payload)) !== undefined);
  return header ?? 'damaged';
}

/**
 * Replays the records of a journal of `tag` in order: `take` gets each intact record's
 * payload and returns false to refuse it as malformed. A damaged line is skipped and
 * counted, the records after it still apply. The header line is not a record (`lines`
 * counts records); a damaged one counts as a damaged line.
 */
export function replayJournalRecords(buf: Buffer, tag: string, take: (payload: string) => boolean): JournalScan {
  const seen = { header: false };
  const scan = scanJournalLines(buf, (payload, lineNo) => (lineNo === 0 ? (seen.header = parseHeader(tag, payload) !== undefined) : take(payload)));
  if (seen.header) scan.lines--;
  return scan;
}
