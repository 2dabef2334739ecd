/**
 * src/state/journal-lines.ts: the table-driven encoder writes exactly the bytes the line
 * format defines — `<payload>\t<zlib crc32 of its UTF-8 bytes as 8 hex digits>\n` — for
 * ASCII, multi-byte and astral payloads, and every line it writes scans back intact.
 */
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeJournalLines, hex8, scanJournalLines } from '../src/state/journal-lines.js';

const reference = (payloads: string[]) => Buffer.from(payloads.map((p) => `${p}\t${(crc32(p) >>> 0).toString(16).padStart(8, '0')}\n`).join(''), 'utf8');

describe('journal lines', () => {
  it('encodes byte for byte as the reference formula, and scans back', () => {
    const payloads = ['B 00000000ffffffff 0 0 0 0', 'J 1 2', '', 'é', 'ünïcødé ✓ 𝄞 tab\tinside', 'x'.repeat(5000)];
    for (let i = 0; i < 500; i++) payloads.push(`B ${hex8(Math.imul(i, 2654435761))}${hex8(i)} ${i * 7} ${1733450000123.457 + i} ${1e6 + i} 2049`);
    const encoded = encodeJournalLines(payloads);
    expect(encoded.equals(reference(payloads))).toBe(true);
    const read: string[] = [];
    const scan = scanJournalLines(encoded, (payload) => (read.push(payload), true));
    expect(scan).toMatchObject({ lines: payloads.length, damagedLines: 0, tornBytes: 0 });
    expect(read).toEqual(payloads);
  });

  it('encodes a range of the payloads only', () => {
    const payloads = ['a', 'b', 'c', 'd'];
    expect(encodeJournalLines(payloads, 1, 3).equals(reference(['b', 'c']))).toBe(true);
    expect(encodeJournalLines(payloads, 2, 2).length).toBe(0);
  });

  it('hex8 pads and wraps as (n >>> 0).toString(16)', () => {
    for (const n of [0, 1, 255, 0x1234abcd, 0xffffffff, -1, 4294967301]) expect(hex8(n)).toBe((n >>> 0).toString(16).padStart(8, '0'));
  });
});
