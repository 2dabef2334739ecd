/**
 * src/guard/core/name-arena.ts: the index's base names as UTF-8 bytes. Every name comes back
 * as it went in (ASCII, accents, emoji, names past 127 bytes whose length takes two prefix
 * bytes), hashes and comparisons agree with the JS strings, and churn — names freed and
 * replaced — keeps the buffer within a bound of the live bytes (compaction) without
 * losing a name.
 */
import { describe, expect, it } from 'vitest';
import { hashName, NameArena } from '../src/guard/core/name-arena.js';

function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

const SAMPLES = [
  'f0.jpg',
  'frame_000123.png',
  'Crème brûlée.jpg',
  '猫の写真.jpeg',
  '📷 shot.jpg',
  'x'.repeat(127),
  'y'.repeat(128),
  'z'.repeat(300),
  'a\\b.jpg',
];

describe('NameArena', () => {
  it('returns each name as stored, compares and hashes it as its UTF-8 bytes', () => {
    const arena = new NameArena();
    arena.grow(SAMPLES.length);
    SAMPLES.forEach((name, f) => arena.set(f, name));
    SAMPLES.forEach((name, f) => {
      expect(arena.name(f)).toBe(name);
      expect(arena.byteLength(f)).toBe(Buffer.byteLength(name));
      expect(arena.equals(f, name)).toBe(true);
      expect(arena.equals(f, `${name}.`)).toBe(false);
      expect(arena.equals(f, name.slice(1))).toBe(false);
      expect(arena.hash(f)).toBe(hashName(name));
      const out = Buffer.alloc(400);
      const end = arena.copyTo(f, out, 3);
      expect(out.toString('utf8', 3, end)).toBe(name);
    });
    // An ASCII name never equals a non-ASCII one of the same length in UTF-16 units.
    expect(arena.equals(2, 'Creme brulee.jpg')).toBe(false);
  });

  it('treats a freed slot as holding nothing and refuses to read it', () => {
    const arena = new NameArena();
    arena.grow(2);
    arena.set(0, 'a.jpg');
    expect(arena.has(0)).toBe(true);
    expect(arena.has(1)).toBe(false);
    expect(arena.has(5)).toBe(false);
    arena.clear(0);
    arena.clear(0);
    expect(arena.has(0)).toBe(false);
    expect(arena.equals(0, 'a.jpg')).toBe(false);
    expect(() => arena.name(0)).toThrow(RangeError);
    expect(() => arena.set(2, 'out.jpg')).toThrow(RangeError);
  });

  it('survives 200,000 random sets and clears; churn keeps the buffer within twice the most live bytes', () => {
    const arena = new NameArena();
    const slots = 5000;
    arena.grow(slots);
    const model = new Array<string | undefined>(slots);
    const rand = lcg(7);
    let live = 0;
    let peakLive = 0;
    let peakBuffer = 0;
    for (let op = 0; op < 200_000; op++) {
      const f = Math.floor(rand() * slots);
      const old = model[f];
      if (old !== undefined) live -= Buffer.byteLength(old) + 1;
      if (rand() < 0.3) {
        arena.clear(f);
        model[f] = undefined;
      } else {
        const name = `${rand() < 0.1 ? 'é' : ''}n${Math.floor(rand() * 1e9)}${'.jpg'.repeat(1 + Math.floor(rand() * 8))}`;
        arena.set(f, name);
        model[f] = name;
        live += Buffer.byteLength(name) + 1;
      }
      peakLive = Math.max(peakLive, live);
      peakBuffer = Math.max(peakBuffer, arena.bufferBytes);
      if (op % 10_007 === 0) {
        for (let g = 0; g < slots; g++) {
          const name = model[g];
          expect(arena.has(g)).toBe(name !== undefined);
          if (name !== undefined) expect(arena.name(g)).toBe(name);
        }
      }
    }
    // 200,000 sets of ~20 bytes would be ~4 MB without compaction.
    expect(peakBuffer).toBeLessThanOrEqual(Math.max(2 * peakLive + 64, 65_536));
  });
});
