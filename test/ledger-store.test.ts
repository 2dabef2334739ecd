import { describe, expect, it } from 'vitest';
import { CODE_MASK, HAS_CHECKSUM, SlotStore } from '../src/warm/ledger-store.js';
import { decodeSnapshotInto, encodeSnapshot, writeSnapshot } from '../src/warm/ledger-format.js';

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Model = Map<string, Map<number, [number, number, number]>>;

function dump(store: SlotStore): Model {
  const out: Model = new Map();
  for (const id of store.seriesIds()) {
    const m = new Map<number, [number, number, number]>();
    store.forEachEntry(id, (slot, at, flags, sum) => m.set(slot, [at, flags, sum]));
    out.set(store.nameOf(id), m);
  }
  return out;
}

describe('SlotStore against a Map model', () => {
  it('agrees after random sets, growth in both directions, clears, deletes, pool rebuilds and trims', () => {
    const random = rng(42);
    const store = new SlotStore();
    const model: Model = new Map();
    for (let step = 0; step < 60_000; step++) {
      const name = `s${Math.floor(random() * 40)}`;
      const r = random();
      if (r < 0.9) {
        // Mostly dense slots near a per-series origin, sometimes far below/above.
        const origin = (Number(name.slice(1)) * 1000) % 7000;
        const slot = Math.max(0, origin + Math.floor((random() - 0.3) * (r < 0.05 ? 20_000 : 300)));
        const flags = (1 + Math.floor(random() * 3)) | (random() < 0.5 ? HAS_CHECKSUM : 0);
        const at = Math.floor(random() * 1e12);
        const sum = flags & HAS_CHECKSUM ? Math.floor(random() * 2 ** 32) : 0;
        store.set(store.ensureSeries(name), slot, at, flags, sum);
        if (!model.has(name)) model.set(name, new Map());
        model.get(name)!.set(slot, [at, flags, sum]);
      } else if (r < 0.93) {
        const id = store.idOf(name);
        if (id !== undefined) store.clearEntries(id);
        model.get(name)?.clear();
      } else if (r < 0.95) {
        const id = store.idOf(name);
        if (id !== undefined) store.deleteSeries(id);
        model.delete(name);
      } else if (r < 0.97) {
        const id = store.idOf(name);
        const code = 1 + Math.floor(random() * 3);
        if (id !== undefined) store.dropOutcome(id, code);
        const m = model.get(name);
        if (m) for (const [slot, [, flags]] of m) if ((flags & CODE_MASK) === code) m.delete(slot);
      } else if (r < 0.975) {
        store.trim();
      }
      if (step % 5000 === 0) expect(dump(store)).toEqual(model);
    }
    expect(dump(store)).toEqual(model);
    let entries = 0;
    const byOutcome = [0, 0, 0, 0];
    for (const m of model.values())
      for (const [, [, flags]] of m) {
        entries++;
        byOutcome[flags & CODE_MASK]!++;
      }
    expect(store.entries).toBe(entries);
    expect([...store.byOutcome].slice(1)).toEqual(byOutcome.slice(1));
    for (const [name, m] of model) expect(store.countOf(store.idOf(name)!)).toBe(m.size);

    // Snapshot round trip reproduces the same contents.
    const copy = new SlotStore();
    decodeSnapshotInto(encodeSnapshot(store, 7, 0), copy);
    expect(dump(copy)).toEqual(model);
    expect(copy.entries).toBe(entries);
  });

  it('writes a snapshot piece by piece, no piece larger than asked, and the pieces decode to the same store', () => {
    const store = new SlotStore();
    for (let s = 0; s < 400; s++) {
      const id = store.ensureSeries(`j${s}/compressed`);
      if (s % 3 === 0) store.setDate(id, `2026-11-${String(1 + (s % 28)).padStart(2, '0')}T00:00:00.000000Z`);
      for (let slot = 0; slot < 100; slot++) store.set(id, slot, 1_700_000_000_000 + s * 1000 + slot, 1 | (slot % 2 ? 0x80 : 0), slot * 7);
    }
    const pieces: Buffer[] = [];
    const pieceBytes = 200_000; // 40,000 entries × 17 B: several pieces
    const bytes = writeSnapshot(store, 3, 42, (piece) => pieces.push(Buffer.from(piece)), pieceBytes);
    expect(pieces.length).toBeGreaterThan(3);
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThanOrEqual(pieceBytes);
    const whole = Buffer.concat(pieces);
    expect(whole.length).toBe(bytes);
    expect(whole.equals(encodeSnapshot(store, 3, 42))).toBe(true);
    const copy = new SlotStore();
    expect(decodeSnapshotInto(whole, copy)).toMatchObject({ generation: 3, writtenAt: 42, series: 400, entries: 40_000 });
    for (let s = 0; s < 400; s += 37) {
      const a: unknown[] = [];
      const b: unknown[] = [];
      store.forEachEntry(store.idOf(`j${s}/compressed`)!, (...e) => a.push(e));
      copy.forEachEntry(copy.idOf(`j${s}/compressed`)!, (...e) => b.push(e));
      expect(b).toEqual(a);
      expect(copy.dateOf(copy.idOf(`j${s}/compressed`)!)).toBe(store.dateOf(store.idOf(`j${s}/compressed`)!));
    }
    // A flipped byte anywhere fails the running CRC.
    const middle = whole.length >> 1;
    whole.writeUInt8(whole.readUInt8(middle) ^ 0xff, middle);
    expect(() => decodeSnapshotInto(whole, new SlotStore())).toThrow(/checksum/);
  });
});
