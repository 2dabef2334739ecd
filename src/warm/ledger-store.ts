/**
 * In-memory store behind the chunk ledger: a compact, allocation-free map from
 * (series, slot) to (confirmedAt, outcome, checksum).
 *
 * Layout (struct of arrays, no per-entry or per-series JS objects):
 * - one shared *pool* of three parallel typed arrays: `at` (Float64, confirmedAt in
 *   ms), `sum` (Uint32, X-Checksum) and `flags` (Uint8: outcome code in the low
 *   bits, HAS_CHECKSUM bit; 0 means "no entry") — 13 bytes per slot;
 * - each series owns one contiguous *segment* of the pool covering slots
 *   [base, base + cap); its metadata lives in Int32Arrays indexed by series id;
 * - segments grow geometrically and are bump-allocated; the old segment becomes
 *   garbage that is reclaimed when the pool is rebuilt (only when full, so the
 *   cost is amortised O(1) per slot).
 *
 * Slots inside one series are expected to be dense-ish (chunk indices, frame
 * numbers of one job); a series may span at most MAX_SPAN slots.
 */

export const OUTCOME = { warm: 1, failed: 2, stuck: 3 } as const;
export type Outcome = keyof typeof OUTCOME;
export type OutcomeCode = (typeof OUTCOME)[Outcome];

/** Outcome names by code; index 0 is "no entry". */
export const OUTCOME_NAMES: readonly [undefined, 'warm', 'failed', 'stuck'] = [undefined, 'warm', 'failed', 'stuck'];

export const CODE_MASK = 0x03;
export const HAS_CHECKSUM = 0x80;

/** Largest slot number (slots are stored as int32). */
export const MAX_SLOT = 0x7fff_ffff;
/** Largest distance between the lowest and highest slot of one series (2^24). */
export const MAX_SPAN = 1 << 24;

const MIN_SEGMENT = 8;
const MIN_POOL = 1024;

/**
 * A copy of `s` that does not pin a larger string: names parsed out of a journal
 * line are V8 "sliced strings" that would keep the whole line alive.
 */
function detach(s: string): string {
  return s.length > 12 ? Buffer.from(s, 'utf8').toString('utf8') : s;
}

function nextPow2(n: number): number {
  let p = MIN_SEGMENT;
  while (p < n) p *= 2;
  return p;
}

export class SlotStore {
  // ---- pool ----
  private at = new Float64Array(MIN_POOL);
  private sum = new Uint32Array(MIN_POOL);
  private flags = new Uint8Array(MIN_POOL);
  private poolUsed = 0;
  private garbage = 0;

  // ---- series (indexed by id) ----
  private readonly ids = new Map<string, number>();
  private names: (string | undefined)[] = [];
  private dates: (string | undefined)[] = [];
  private sBase = new Int32Array(64);
  private sStart = new Int32Array(64);
  private sCap = new Int32Array(64);
  private sCount = new Int32Array(64);
  private readonly freeIds: number[] = [];

  // ---- totals ----
  entries = 0;
  /** Entry counts by outcome code (index 0 unused). */
  readonly byOutcome = new Float64Array(4);

  get seriesCount(): number {
    return this.ids.size;
  }

  idOf(name: string): number | undefined {
    return this.ids.get(name);
  }

  nameOf(id: number): string {
    return this.names[id] as string;
  }

  dateOf(id: number): string | undefined {
    return this.dates[id];
  }

  countOf(id: number): number {
    return this.sCount[id] as number;
  }

  seriesIds(): IterableIterator<number> {
    return this.ids.values();
  }

  seriesNames(): IterableIterator<string> {
    return this.ids.keys();
  }

  /** Id of `name`, creating an empty series if needed. */
  ensureSeries(name: string): number {
    const existing = this.ids.get(name);
    if (existing !== undefined) return existing;
    name = detach(name);
    let id = this.freeIds.pop();
    if (id === undefined) {
      id = this.names.length;
      if (id >= this.sBase.length) this.growSeriesArrays(id * 2);
      this.names.push(name);
      this.dates.push(undefined);
    } else {
      this.names[id] = name;
      this.dates[id] = undefined;
    }
    this.sBase[id] = 0;
    this.sStart[id] = 0;
    this.sCap[id] = 0;
    this.sCount[id] = 0;
    this.ids.set(name, id);
    return id;
  }

  setDate(id: number, date: string | undefined): void {
    this.dates[id] = date === undefined ? undefined : detach(date);
  }

  /** Pool index of (id, slot), or -1 when there is no entry. */
  indexOf(id: number, slot: number): number {
    const i = slot - (this.sBase[id] as number);
    if (i < 0 || i >= (this.sCap[id] as number)) return -1;
    const p = (this.sStart[id] as number) + i;
    return this.flags[p] === 0 ? -1 : p;
  }

  flagsAt(p: number): number {
    return this.flags[p] as number;
  }

  confirmedAtAt(p: number): number {
    return this.at[p] as number;
  }

  checksumAt(p: number): number {
    return this.sum[p] as number;
  }

  /** Sets an entry; `flags` is an outcome code, optionally | HAS_CHECKSUM. */
  set(id: number, slot: number, confirmedAt: number, flags: number, checksum: number): void {
    let i = slot - (this.sBase[id] as number);
    if (i < 0 || i >= (this.sCap[id] as number)) {
      this.growSegment(id, slot);
      i = slot - (this.sBase[id] as number);
    }
    const p = (this.sStart[id] as number) + i;
    const old = this.flags[p] as number;
    if (old === 0) {
      this.entries++;
      this.sCount[id] = (this.sCount[id] as number) + 1;
    } else {
      this.byOutcome[old & CODE_MASK]!--;
    }
    this.byOutcome[flags & CODE_MASK]!++;
    this.at[p] = confirmedAt;
    this.sum[p] = checksum;
    this.flags[p] = flags;
  }

  /** Drops every entry of a series but keeps the series (and its date). */
  clearEntries(id: number): void {
    const cap = this.sCap[id] as number;
    if (cap === 0) return;
    const start = this.sStart[id] as number;
    if ((this.sCount[id] as number) > 0) {
      for (let p = start; p < start + cap; p++) {
        const f = this.flags[p] as number;
        if (f !== 0) this.byOutcome[f & CODE_MASK]!--;
      }
      this.entries -= this.sCount[id] as number;
    }
    this.flags.fill(0, start, start + cap);
    this.garbage += cap;
    this.sCap[id] = 0;
    this.sStart[id] = 0;
    this.sBase[id] = 0;
    this.sCount[id] = 0;
  }

  /** Drops the entries of a series that have the given outcome code. */
  dropOutcome(id: number, code: number): void {
    const cap = this.sCap[id] as number;
    const start = this.sStart[id] as number;
    let dropped = 0;
    for (let p = start; p < start + cap; p++) {
      const f = this.flags[p] as number;
      if (f !== 0 && (f & CODE_MASK) === code) {
        this.flags[p] = 0;
        dropped++;
      }
    }
    if (dropped === 0) return;
    this.byOutcome[code]! -= dropped;
    this.entries -= dropped;
    this.sCount[id] = (this.sCount[id] as number) - dropped;
    if (this.sCount[id] === 0) this.clearEntries(id);
  }

  /** Removes a series entirely. */
  deleteSeries(id: number): void {
    this.clearEntries(id);
    const name = this.names[id];
    if (name !== undefined) this.ids.delete(name);
    this.names[id] = undefined;
    this.dates[id] = undefined;
    this.freeIds.push(id);
  }

  /** Calls `fn` for every entry of a series, in slot order. */
  forEachEntry(id: number, fn: (slot: number, confirmedAt: number, flags: number, checksum: number) => void): void {
    const cap = this.sCap[id] as number;
    const start = this.sStart[id] as number;
    const base = this.sBase[id] as number;
    const { at, sum, flags } = this;
    for (let i = 0; i < cap; i++) {
      const f = flags[start + i] as number;
      if (f !== 0) fn(base + i, at[start + i] as number, f, sum[start + i] as number);
    }
  }

  /** Smallest confirmedAt among entries with the given outcome code, or undefined. */
  oldest(code: number): number | undefined {
    let min = Infinity;
    const { at, flags } = this;
    for (const id of this.ids.values()) {
      if ((this.sCount[id] as number) === 0) continue;
      const start = this.sStart[id] as number;
      const end = start + (this.sCap[id] as number);
      for (let p = start; p < end; p++) {
        if (((flags[p] as number) & CODE_MASK) === code && (at[p] as number) < min) min = at[p] as number;
      }
    }
    return min === Infinity ? undefined : min;
  }

  /** Warm entries with confirmedAt < before, and the smallest warm confirmedAt. */
  warmSummary(before: number): { count: number; oldest: number | undefined } {
    let min = Infinity;
    let count = 0;
    const { at, flags } = this;
    for (const id of this.ids.values()) {
      if ((this.sCount[id] as number) === 0) continue;
      const start = this.sStart[id] as number;
      const end = start + (this.sCap[id] as number);
      for (let p = start; p < end; p++) {
        if (((flags[p] as number) & CODE_MASK) !== OUTCOME.warm) continue;
        const t = at[p] as number;
        if (t < min) min = t;
        if (t < before) count++;
      }
    }
    return { count, oldest: min === Infinity ? undefined : min };
  }

  /**
   * Reserves an exactly-sized segment for a series known to span [lo, hi]
   * (used when loading a snapshot). The series must be empty.
   */
  reserve(id: number, lo: number, hi: number): void {
    const cap = Math.max(1, hi - lo + 1);
    const start = this.allocate(cap);
    this.sBase[id] = lo;
    this.sStart[id] = start;
    this.sCap[id] = cap;
  }

  /**
   * Shrinks every segment to the span of its entries and packs the pool, so that
   * memory is ~13 bytes per slot of span. O(total capacity).
   */
  trim(): void {
    let live = 0;
    const spans: [number, number, number][] = [];
    for (const id of this.ids.values()) {
      const cap = this.sCap[id] as number;
      const start = this.sStart[id] as number;
      let lo = -1;
      let hi = -1;
      if ((this.sCount[id] as number) > 0) {
        for (let i = 0; i < cap; i++)
          if (this.flags[start + i] !== 0) {
            lo = i;
            break;
          }
        for (let i = cap - 1; i >= 0; i--)
          if (this.flags[start + i] !== 0) {
            hi = i;
            break;
          }
      }
      spans.push([id, lo, hi]);
      if (lo >= 0) live += hi - lo + 1;
    }
    const size = Math.max(MIN_POOL, live + (live >> 4));
    const at = new Float64Array(size);
    const sum = new Uint32Array(size);
    const flags = new Uint8Array(size);
    let used = 0;
    for (const [id, lo, hi] of spans) {
      if (lo < 0) {
        this.sCap[id] = 0;
        this.sStart[id] = 0;
        this.sBase[id] = 0;
        continue;
      }
      const from = (this.sStart[id] as number) + lo;
      const n = hi - lo + 1;
      at.set(this.at.subarray(from, from + n), used);
      sum.set(this.sum.subarray(from, from + n), used);
      flags.set(this.flags.subarray(from, from + n), used);
      this.sBase[id] = (this.sBase[id] as number) + lo;
      this.sStart[id] = used;
      this.sCap[id] = n;
      used += n;
    }
    this.at = at;
    this.sum = sum;
    this.flags = flags;
    this.poolUsed = used;
    this.garbage = 0;
  }

  // ---- internals ----

  private growSeriesArrays(min: number): void {
    const n = Math.max(64, min);
    const grow = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.sBase = grow(this.sBase);
    this.sStart = grow(this.sStart);
    this.sCap = grow(this.sCap);
    this.sCount = grow(this.sCount);
  }

  private growSegment(id: number, slot: number): void {
    const cap = this.sCap[id] as number;
    const base = this.sBase[id] as number;
    let lo: number;
    let hi: number;
    if (cap === 0) {
      lo = slot < MIN_SEGMENT * 2 ? 0 : slot;
      hi = slot;
    } else {
      lo = Math.min(base, slot);
      hi = Math.max(base + cap - 1, slot);
    }
    const span = hi - lo + 1;
    if (span > MAX_SPAN) {
      throw new RangeError(`ledger: slots of one series must lie within ${MAX_SPAN} of each other (slot ${slot}, series spans ${base}..${base + cap - 1})`);
    }
    const newCap = Math.min(MAX_SPAN, Math.max(nextPow2(span), cap * 2));
    // Leave the headroom on the side we are growing towards.
    const newBase = slot < base && cap > 0 ? Math.max(0, hi + 1 - newCap) : lo;
    const start = this.allocate(newCap);
    if (cap > 0) {
      const oldStart = this.sStart[id] as number;
      const to = start + (base - newBase);
      this.at.copyWithin(to, oldStart, oldStart + cap);
      this.sum.copyWithin(to, oldStart, oldStart + cap);
      this.flags.copyWithin(to, oldStart, oldStart + cap);
      this.flags.fill(0, oldStart, oldStart + cap);
      this.garbage += cap;
    }
    this.sBase[id] = newBase;
    this.sStart[id] = start;
    this.sCap[id] = newCap;
  }

  /**
   * Returns the start of a fresh zeroed segment of `n` slots. When the pool is full
   * it is rebuilt: live segments are packed (dropping garbage) into arrays sized 1.5x
   * the live data plus the request, and every series' start is updated.
   */
  private allocate(n: number): number {
    if (this.poolUsed + n > this.at.length) {
      const live = this.poolUsed - this.garbage;
      const size = Math.max(MIN_POOL, Math.ceil((live + n) * 1.5));
      const at = new Float64Array(size);
      const sum = new Uint32Array(size);
      const flags = new Uint8Array(size);
      let used = 0;
      for (const id of this.ids.values()) {
        const cap = this.sCap[id] as number;
        if (cap === 0) continue;
        const from = this.sStart[id] as number;
        at.set(this.at.subarray(from, from + cap), used);
        sum.set(this.sum.subarray(from, from + cap), used);
        flags.set(this.flags.subarray(from, from + cap), used);
        this.sStart[id] = used;
        used += cap;
      }
      this.at = at;
      this.sum = sum;
      this.flags = flags;
      this.poolUsed = used;
      this.garbage = 0;
    }
    const start = this.poolUsed;
    this.poolUsed += n;
    return start;
  }
}
