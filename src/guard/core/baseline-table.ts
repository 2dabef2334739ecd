/**
 * The persisted baseline held in memory between loading it and the tasks that claim
 * it: a compact open-addressing table keyed by a 64-bit hash of the share-relative
 * path (crc32 + FNV-1a), with the four stat fields in typed arrays. No path strings:
 * a million entries cost ~45 MB, and the table is dropped once nothing is left to claim.
 * A hash collision (~1e-8 at a million paths) could at worst give a file a wrong
 * baseline, i.e. one false "modified" alert — never a missed deletion.
 */
import { crc32 } from 'node:zlib';
import type { FileStat } from '../types.js';
import { CRC32_TABLE } from '../../state/crc32-table.js';

/** The two 32-bit halves of a path's key. */
export interface PathKey {
  hi: number;
  lo: number;
}

/** 32-bit FNV-1a over a string's UTF-16 code units. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function pathKey(rel: string): PathKey {
  return { hi: crc32(rel) >>> 0, lo: fnv1a(rel) };
}

/**
 * `pathKey(prefix + name)` from `pathKey(prefix)` and the name's bytes `bytes[start, end)`,
 * into `out` (hi, lo), when the name is ASCII: then each byte is the UTF-16 code unit
 * fnv1a reads and the UTF-8 byte crc32 reads, and both hashes run on from the prefix's
 * (zlib's crc32 is continued from a final value, FNV-1a's state is its value). Returns
 * false, writing nothing, for any other name.
 */
export function continuePathKey(prefix: PathKey, bytes: Uint8Array, start: number, end: number, out: Uint32Array): boolean {
  let crc = ~prefix.hi;
  let fnv = prefix.lo;
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (b > 0x7f) return false;
    crc = CRC32_TABLE[(crc ^ b) & 0xff]! ^ (crc >>> 8);
    fnv = Math.imul(fnv ^ b, 0x01000193);
  }
  out[0] = ~crc >>> 0;
  out[1] = fnv >>> 0;
  return true;
}

const EMPTY = -1;

export class BaselineTable {
  #slots = new Int32Array(0).fill(EMPTY);
  #mask = -1;
  hi = new Uint32Array(0);
  lo = new Uint32Array(0);
  size = new Float64Array(0);
  mtime = new Float64Array(0);
  ino = new Float64Array(0);
  dev = new Float64Array(0);
  /** 1 once a task's file took the entry (it then lives in the index). */
  claimed = new Uint8Array(0);
  #count = 0;
  #unclaimed = 0;

  /** Entries stored (claimed or not). */
  get count(): number {
    return this.#count;
  }

  /** Entries no indexed file has taken yet. */
  get unclaimed(): number {
    return this.#unclaimed;
  }

  #find(hi: number, lo: number): number {
    if (this.#mask < 0) return EMPTY;
    let s = (hi ^ Math.imul(lo, 0x9e3779b1)) & this.#mask;
    for (;;) {
      const e = this.#slots[s]!;
      if (e === EMPTY || (this.hi[e] === hi && this.lo[e] === lo)) return s;
      s = (s + 1) & this.#mask;
    }
  }

  #growEntries(): void {
    const capacity = Math.max(1024, this.hi.length * 2);
    const grow = <T extends Uint32Array | Float64Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    this.hi = grow(this.hi, (n) => new Uint32Array(n));
    this.lo = grow(this.lo, (n) => new Uint32Array(n));
    this.size = grow(this.size, (n) => new Float64Array(n));
    this.mtime = grow(this.mtime, (n) => new Float64Array(n));
    this.ino = grow(this.ino, (n) => new Float64Array(n));
    this.dev = grow(this.dev, (n) => new Float64Array(n));
    this.claimed = grow(this.claimed, (n) => new Uint8Array(n));
  }

  #rehash(): void {
    const size = Math.max(2048, this.#slots.length * 2);
    this.#slots = new Int32Array(size).fill(EMPTY);
    this.#mask = size - 1;
    for (let e = 0; e < this.#count; e++) this.#slots[this.#find(this.hi[e]!, this.lo[e]!)] = e;
  }

  /** Insert or overwrite (a later journal line wins). */
  set(hi: number, lo: number, size: number, mtimeMs: number, ino: number, dev: number): void {
    if ((this.#count + 1) * 2 > this.#slots.length) this.#rehash();
    const s = this.#find(hi, lo);
    let e = this.#slots[s]!;
    if (e === EMPTY) {
      if (this.#count === this.hi.length) this.#growEntries();
      e = this.#count++;
      this.#slots[s] = e;
      this.hi[e] = hi;
      this.lo[e] = lo;
      this.#unclaimed++;
    } else if (this.claimed[e]) {
      this.claimed[e] = 0;
      this.#unclaimed++;
    }
    this.size[e] = size;
    this.mtime[e] = mtimeMs;
    this.ino[e] = ino;
    this.dev[e] = dev;
  }

  /** The baseline of `key` if stored (claimed or not), without claiming it. */
  get(key: PathKey): FileStat | undefined {
    const e = this.#slots[this.#find(key.hi, key.lo)];
    if (e === undefined || e === EMPTY) return undefined;
    return { size: this.size[e]!, mtimeMs: this.mtime[e]!, ino: this.ino[e]!, dev: this.dev[e]! };
  }

  /** The baseline of `key` if stored and not claimed yet; marks it claimed. */
  take(key: PathKey): FileStat | undefined {
    const e = this.#slots[this.#find(key.hi, key.lo)];
    if (e === undefined || e === EMPTY || this.claimed[e]) return undefined;
    this.claimed[e] = 1;
    this.#unclaimed--;
    return { size: this.size[e]!, mtimeMs: this.mtime[e]!, ino: this.ino[e]!, dev: this.dev[e]! };
  }
}

/** A set of path keys (16 bytes a key at half load): which files a streaming pass has counted. */
export class KeySet {
  #hi = new Uint32Array(0);
  #lo = new Uint32Array(0);
  #used = new Uint8Array(0);
  #mask = -1;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  #slot(hi: number, lo: number): number {
    let s = (hi ^ Math.imul(lo, 0x9e3779b1)) & this.#mask;
    while (this.#used[s] && (this.#hi[s] !== hi || this.#lo[s] !== lo)) s = (s + 1) & this.#mask;
    return s;
  }

  /** true when the key was not there yet. */
  add(hi: number, lo: number): boolean {
    if ((this.#size + 1) * 2 > this.#used.length) {
      const [oldHi, oldLo, oldUsed] = [this.#hi, this.#lo, this.#used];
      const size = Math.max(2048, oldUsed.length * 2);
      this.#hi = new Uint32Array(size);
      this.#lo = new Uint32Array(size);
      this.#used = new Uint8Array(size);
      this.#mask = size - 1;
      for (let i = 0; i < oldUsed.length; i++) {
        if (!oldUsed[i]) continue;
        const s = this.#slot(oldHi[i]!, oldLo[i]!);
        this.#hi[s] = oldHi[i]!;
        this.#lo[s] = oldLo[i]!;
        this.#used[s] = 1;
      }
    }
    const s = this.#slot(hi, lo);
    if (this.#used[s]) return false;
    this.#hi[s] = hi;
    this.#lo[s] = lo;
    this.#used[s] = 1;
    this.#size++;
    return true;
  }
}
