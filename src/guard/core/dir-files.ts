/**
 * The expected files of one share directory: base name → index slot, what a directory
 * watch event needs. A Map did this in ~36 bytes a file (its hash table and chain per
 * entry; 36 MB of a 1,000,000-file guard's 211 MB live heap, from a heap snapshot); this
 * is an open-addressing table of slots, ≤ half full, ~8–16 bytes a file. The names are not
 * copied: they are the index's own (name-arena.ts), so a slot's name must be set before it
 * is added and cleared only after it is deleted.
 */
import { hashName, type NameArena } from './name-arena.js';

const EMPTY = -1;
const MIN_CAPACITY = 8;

export class DirFiles {
  readonly #names: NameArena;
  #table = new Int32Array(0);
  #mask = -1;
  #size = 0;

  constructor(names: NameArena) {
    this.#names = names;
  }

  get size(): number {
    return this.#size;
  }

  /** Table position of `name`, or of the empty cell where it would go. */
  #find(name: string): number {
    let s = hashName(name) & this.#mask;
    for (;;) {
      const f = this.#table[s]!;
      if (f === EMPTY || this.#names.equals(f, name)) return s;
      s = (s + 1) & this.#mask;
    }
  }

  /** The first empty cell of slot `f`'s probe run (`f` is known not to be in the table). */
  #findEmpty(f: number): number {
    let s = this.#names.hash(f) & this.#mask;
    while (this.#table[s] !== EMPTY) s = (s + 1) & this.#mask;
    return s;
  }

  get(name: string): number | undefined {
    if (this.#size === 0) return undefined;
    const f = this.#table[this.#find(name)]!;
    return f === EMPTY ? undefined : f;
  }

  /** Adds slot `f` under its name `name` (already stored in the arena for `f`). */
  add(f: number, name: string): void {
    if ((this.#size + 1) * 2 > this.#table.length) this.#resize(Math.max(MIN_CAPACITY, this.#table.length * 2));
    const s = this.#find(name);
    if (this.#table[s] === EMPTY) this.#size++;
    this.#table[s] = f;
  }

  /** Removes `name` (while the arena still holds it for its slot); true when it was there. */
  delete(name: string): boolean {
    if (this.#size === 0) return false;
    let hole = this.#find(name);
    if (this.#table[hole] === EMPTY) return false;
    this.#table[hole] = EMPTY;
    this.#size--;
    // Backward-shift deletion: move up every entry of the probe run that the hole would cut off.
    for (let s = (hole + 1) & this.#mask; this.#table[s] !== EMPTY; s = (s + 1) & this.#mask) {
      const f = this.#table[s]!;
      const home = this.#names.hash(f) & this.#mask;
      // Stays when its home lies cyclically in (hole, s].
      const stays = hole <= s ? home > hole && home <= s : home > hole || home <= s;
      if (stays) continue;
      this.#table[hole] = f;
      this.#table[s] = EMPTY;
      hole = s;
    }
    if (this.#size * 8 < this.#table.length && this.#table.length > MIN_CAPACITY) this.#resize(Math.max(MIN_CAPACITY, this.#table.length / 2));
    return true;
  }

  /** The slots, ascending (for a fresh index: the order files were added). */
  values(): Int32Array {
    const out = new Int32Array(this.#size);
    let n = 0;
    for (const f of this.#table) if (f !== EMPTY) out[n++] = f;
    return out.sort();
  }

  #resize(capacity: number): void {
    const old = this.#table;
    this.#table = new Int32Array(capacity).fill(EMPTY);
    this.#mask = capacity - 1;
    for (const f of old) if (f !== EMPTY) this.#table[this.#findEmpty(f)] = f;
  }
}
