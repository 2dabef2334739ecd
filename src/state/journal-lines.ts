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

const NEWLINE = 0x0a;
const TAB = 0x09;
/** '\t' + 8 hex digits. */
const SUFFIX_BYTES = 9;
const HEX8 = /^[0-9a-f]{8}$/;

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

/** The bytes of `payloads[from..to)` as journal lines (CRC suffix and newline appended). */
export function encodeJournalLines(payloads: readonly string[], from = 0, to = payloads.length): Buffer {
  let text = '';
  for (let i = from; i < to; i++) {
    const payload = payloads[i] as string;
    text += `${payload}\t${hex8(crc32(payload))}\n`;
  }
  return Buffer.from(text, 'utf8');
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
