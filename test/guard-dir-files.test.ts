/**
 * src/guard/core/dir-files.ts: the directory's name → slot table agrees with a Map under
 * random adds and deletes (collisions, wrap-around probe runs, growth and shrinking).
 */
import { describe, expect, it } from 'vitest';
import { DirFiles } from '../src/guard/core/dir-files.js';

/** A small deterministic generator (no Math.random: a failure must replay). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe('DirFiles', () => {
  it('behaves as a Map of name → slot under 20,000 random operations', () => {
    const names: Array<string | undefined> = [];
    const files = new DirFiles(names);
    const model = new Map<string, number>();
    const free: number[] = [];
    const rand = lcg(42);
    for (let op = 0; op < 20_000; op++) {
      const name = `f${Math.floor(rand() * 600)}.jpg`;
      if (model.has(name)) {
        if (rand() < 0.6) {
          const f = model.get(name)!;
          expect(files.delete(name)).toBe(true);
          names[f] = undefined;
          free.push(f);
          model.delete(name);
        }
      } else {
        const f = free.pop() ?? names.length;
        names[f] = name;
        files.add(f);
        model.set(name, f);
      }
      if (op % 997 === 0) {
        expect(files.size).toBe(model.size);
        for (const [n, f] of model) expect(files.get(n)).toBe(f);
        expect([...files.values()]).toEqual([...model.values()].sort((a, b) => a - b));
      }
    }
    expect(files.get('never.jpg')).toBeUndefined();
    expect(files.delete('never.jpg')).toBe(false);
    for (const [n, f] of model) expect(files.get(n)).toBe(f);
  });

  it('empties and refills, and an empty table answers every question', () => {
    const names = ['a', 'b', 'c'];
    const files = new DirFiles(names);
    expect(files.get('a')).toBeUndefined();
    expect(files.values().length).toBe(0);
    files.add(0);
    files.add(1);
    files.add(2);
    expect([...files.values()]).toEqual([0, 1, 2]);
    for (const n of names) expect(files.delete(n)).toBe(true);
    expect(files.size).toBe(0);
    files.add(1);
    expect(files.get('b')).toBe(1);
  });
});
