/**
 * src/guard/core/dir-files.ts: the directory's name → slot table agrees with a Map under
 * random adds and deletes (collisions, wrap-around probe runs, growth and shrinking).
 */
import { describe, expect, it } from 'vitest';
import { DirFiles } from '../src/guard/core/dir-files.js';
import { NameArena } from '../src/guard/core/name-arena.js';

/** A small deterministic generator (no Math.random: a failure must replay). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe('DirFiles', () => {
  it('behaves as a Map of name → slot under 20,000 random operations', () => {
    const names = new NameArena();
    names.grow(1024);
    const files = new DirFiles(names);
    const model = new Map<string, number>();
    const free: number[] = [];
    let next = 0;
    const rand = lcg(42);
    for (let op = 0; op < 20_000; op++) {
      // Some names are not ASCII: they are hashed and compared as UTF-8 bytes.
      const name = rand() < 0.2 ? `é${Math.floor(rand() * 100)}.jpg` : `f${Math.floor(rand() * 500)}.jpg`;
      if (model.has(name)) {
        if (rand() < 0.6) {
          const f = model.get(name)!;
          expect(files.delete(name)).toBe(true);
          names.clear(f);
          free.push(f);
          model.delete(name);
        }
      } else {
        const f = free.pop() ?? next++;
        names.set(f, name);
        files.add(f, name);
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
    const list = ['a', 'b', 'c'];
    const names = new NameArena();
    names.grow(3);
    list.forEach((name, f) => names.set(f, name));
    const files = new DirFiles(names);
    expect(files.get('a')).toBeUndefined();
    expect(files.values().length).toBe(0);
    list.forEach((name, f) => files.add(f, name));
    expect([...files.values()]).toEqual([0, 1, 2]);
    for (const n of list) expect(files.delete(n)).toBe(true);
    expect(files.size).toBe(0);
    files.add(1, 'b');
    expect(files.get('b')).toBe(1);
  });
});
