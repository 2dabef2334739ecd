/**
 * The base name of every index slot, as UTF-8 bytes in one growing buffer: a slot costs
 * a 4-byte offset and its name's bytes plus a length byte, where a JS string in an array
 * cost ~32 bytes of old generation for a short name plus an 8-byte element, and one more
 * object for every major GC to mark (1,000,000 of them at a million-file share: 36.6 MB of
 * strings and a 10.4 MB array in a heap snapshot of the guard at ready).
 *
 * Layout of a name: its byte length as a LEB128 varint, then the bytes. A slot's offset is
 * FREE when it holds no name. Bytes of freed or renamed slots stay until the buffer is
 * full; then the live names are copied into a fresh buffer twice their size (compaction),
 * so churn never grows it past twice the most live bytes the index ever held.
 *
 * Names are compared and hashed as their UTF-8 bytes — what the file system sees — so a
 * lookup by a JS string must encode it the same way (`hashName`, `equals`). A lone UTF-16
 * surrogate becomes U+FFFD here, as it does in any path node passes to the kernel.
 */

const FREE = 0xffffffff;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const MIN_BYTES = 1 << 16;
/** Offsets are 32-bit: the arena refuses to grow past this (names of ~100 million files). */
const MAX_BYTES = 0xfffffff0;

/** UTF-8 bytes of `name` when it is not plain ASCII (undefined: the char codes are the bytes). */
function nonAsciiBytes(name: string): Buffer | undefined {
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) > 0x7f) return Buffer.from(name, 'utf8');
  return undefined;
}

function fnvBytes(buf: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, FNV_PRIME);
  return h >>> 0;
}

/** 32-bit FNV-1a over the UTF-8 bytes of `name` (equal to `NameArena.hash` of a slot holding it). */
export function hashName(name: string): number {
  const bytes = nonAsciiBytes(name);
  if (bytes) return fnvBytes(bytes, 0, bytes.length);
  let h = FNV_OFFSET;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

export class NameArena {
  #buf = Buffer.alloc(0);
  /** Bytes used at the front of #buf (live and dead). */
  #used = 0;
  /** Bytes of the live names (length prefixes included). */
  #live = 0;
  #offsets = new Uint32Array(0);
  /** Where the bytes of the name `#end` last decoded start (a field, not an object per call). */
  #start = 0;
  /** Where the name of the last `view` starts and ends in its buffer. */
  viewStart = 0;
  viewEnd = 0;

  /** Slots this arena can hold without growing. */
  get capacity(): number {
    return this.#offsets.length;
  }

  /** Bytes held in the buffer (for tests and sizing). */
  get bufferBytes(): number {
    return this.#buf.length;
  }

  /** Makes room for slots 0..capacity-1 (new slots hold no name). */
  grow(capacity: number): void {
    if (capacity <= this.#offsets.length) return;
    const next = new Uint32Array(capacity).fill(FREE);
    next.set(this.#offsets);
    this.#offsets = next;
  }

  has(f: number): boolean {
    return f >= 0 && f < this.#offsets.length && this.#offsets[f] !== FREE;
  }

  /** Stores `name` for slot `f` (replacing what it held). */
  set(f: number, name: string): void {
    if (f < 0 || f >= this.#offsets.length) throw new RangeError(`slot ${f} is outside the arena (${this.#offsets.length})`);
    this.clear(f);
    const bytes = nonAsciiBytes(name);
    const length = bytes ? bytes.length : name.length;
    const need = varintSize(length) + length;
    this.#reserve(need);
    const at = this.#used;
    let p = writeVarint(this.#buf, at, length);
    if (bytes) {
      bytes.copy(this.#buf, p);
    } else {
      const buf = this.#buf;
      for (let i = 0; i < length; i++) buf[p++] = name.charCodeAt(i);
    }
    this.#offsets[f] = at;
    this.#used += need;
    this.#live += need;
  }

  /** Forgets slot `f`'s name (its bytes are reclaimed by a later compaction). */
  clear(f: number): void {
    const at = this.#offsets[f];
    if (at === undefined || at === FREE) return;
    this.#live -= this.#end(at) - at;
    this.#offsets[f] = FREE;
  }

  /** The name of slot `f` (throws when it holds none: a caller's bug). */
  name(f: number): string {
    const end = this.#end(this.#at(f));
    return this.#buf.toString('utf8', this.#start, end);
  }

  /** Byte length of slot `f`'s name. */
  byteLength(f: number): number {
    return this.#end(this.#at(f)) - this.#start;
  }

  /** Copies slot `f`'s name bytes into `target` at `offset`; returns the offset after them. */
  copyTo(f: number, target: Uint8Array, offset: number): number {
    const end = this.#end(this.#at(f));
    this.#buf.copy(target, offset, this.#start, end);
    return offset + end - this.#start;
  }

  /**
   * The buffer holding slot `f`'s name, whose bytes are [`viewStart`, `viewEnd`) as this
   * call sets them (fields, not an object per call). Read it at once: the next `set` may
   * move the names to a new buffer.
   */
  view(f: number): Uint8Array {
    this.viewEnd = this.#end(this.#at(f));
    this.viewStart = this.#start;
    return this.#buf;
  }

  /** FNV-1a of slot `f`'s bytes (what `hashName` gives for its name). */
  hash(f: number): number {
    const end = this.#end(this.#at(f));
    return fnvBytes(this.#buf, this.#start, end);
  }

  /** Whether slot `f` holds exactly `name` (byte for byte, as the file system compares). */
  equals(f: number, name: string): boolean {
    const at = this.#offsets[f];
    if (at === undefined || at === FREE) return false;
    const end = this.#end(at);
    const start = this.#start;
    const buf = this.#buf;
    const bytes = nonAsciiBytes(name);
    if (bytes) return end - start === bytes.length && buf.compare(bytes, 0, bytes.length, start, end) === 0;
    if (end - start !== name.length) return false;
    for (let i = 0; i < name.length; i++) if (buf[start + i] !== name.charCodeAt(i)) return false;
    return true;
  }

  #at(f: number): number {
    const at = this.#offsets[f];
    if (at === undefined || at === FREE) throw new RangeError(`slot ${f} holds no name`);
    return at;
  }

  /** Decodes the length prefix at `at`: sets `#start` to the first byte, returns the end. */
  #end(at: number): number {
    const buf = this.#buf;
    const first = buf[at]!;
    if (first < 0x80) {
      this.#start = at + 1;
      return at + 1 + first;
    }
    let length = 0;
    let shift = 0;
    let p = at;
    for (;;) {
      const b = buf[p++]!;
      length += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
      shift += 7;
    }
    this.#start = p;
    return p + length;
  }

  /**
   * Room for `need` more bytes. A full buffer is replaced by one twice the live bytes
   * holding only them: dead bytes are dropped and the buffer grows in one move, and the
   * next repack is at least as many appended bytes away as this one copied (amortised O(1)).
   */
  #reserve(need: number): void {
    if (this.#used + need <= this.#buf.length) return;
    const wanted = this.#live + need;
    if (wanted > MAX_BYTES) throw new RangeError('the name arena is full (4 GiB of file names)');
    this.#repack(Math.min(Math.max(MIN_BYTES, wanted * 2), MAX_BYTES));
  }

  /** Copies the live names, in slot order, into a fresh buffer of `size` bytes. */
  #repack(size: number): void {
    const old = this.#buf;
    const buf = Buffer.allocUnsafe(size);
    let used = 0;
    for (let f = 0; f < this.#offsets.length; f++) {
      const at = this.#offsets[f]!;
      if (at === FREE) continue;
      const end = this.#end(at);
      old.copy(buf, used, at, end);
      this.#offsets[f] = used;
      used += end - at;
    }
    this.#buf = buf;
    this.#used = used;
    this.#live = used;
  }
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[at++] = n;
  return at;
}
