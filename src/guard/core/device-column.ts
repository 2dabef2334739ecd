/**
 * The device number of each index slot's baseline. A share sits on one file system (a few
 * with bind mounts), so a Float64 per file — 8 MB of a 1,000,000-file guard — held the same
 * number a million times. This keeps one byte per slot, a code into a table of the distinct
 * devices seen, and widens itself to a Float64 per slot if a 257th device ever shows up.
 */
const MAX_CODES = 256;

export class DeviceColumn {
  #codes = new Uint8Array(0);
  #wide: Float64Array | undefined;
  readonly #devices: number[] = [];
  readonly #codeOf = new Map<number, number>();

  /** Room for `capacity` slots, keeping what is there. */
  grow(capacity: number): void {
    if (this.#wide) {
      if (capacity <= this.#wide.length) return;
      const wide = new Float64Array(capacity);
      wide.set(this.#wide);
      this.#wide = wide;
      return;
    }
    if (capacity <= this.#codes.length) return;
    const codes = new Uint8Array(capacity);
    codes.set(this.#codes);
    this.#codes = codes;
  }

  /** The device last set for slot `f` (meaningless for a slot never set: read it only with a baseline). */
  get(f: number): number {
    if (this.#wide) return this.#wide[f]!;
    return this.#devices[this.#codes[f]!] ?? 0;
  }

  set(f: number, dev: number): void {
    if (this.#wide) {
      this.#wide[f] = dev;
      return;
    }
    let code = this.#codeOf.get(dev);
    if (code === undefined) {
      if (this.#devices.length === MAX_CODES) {
        this.#widen();
        this.#wide![f] = dev;
        return;
      }
      code = this.#devices.length;
      this.#devices.push(dev);
      this.#codeOf.set(dev, code);
    }
    this.#codes[f] = code;
  }

  /** True once it keeps a Float64 per slot (more distinct devices than codes). */
  get wide(): boolean {
    return this.#wide !== undefined;
  }

  #widen(): void {
    const wide = new Float64Array(this.#codes.length);
    for (let f = 0; f < wide.length; f++) wide[f] = this.#devices[this.#codes[f]!] ?? 0;
    this.#wide = wide;
    this.#codes = new Uint8Array(0);
  }
}
