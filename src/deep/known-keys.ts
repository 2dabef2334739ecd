/**
 * What deep mode last read of each media-cache key in scope, so a steady poll sends
 * PTTL + STRLEN only for keys it has no live reading of.
 *
 * Why a reading stays true: CVAT sets each media-cache key once with `EX` = its TTL and a
 * read never extends it (`cache.py` 2.73 `_create_and_set_cache_item` / `_get_cache_item`,
 * cited in keys.ts), so while the same copy lives its expiry and size do not change. What
 * can change is whether the key exists, and that a SCAN tells for every key at once: a full
 * SCAN iteration returns every key present from its start to its end (Redis documents this
 * for `SCAN`; for Kvrocks it is inferred from its SCAN walking keys in order from the cursor's
 * key, not read in its source — the sample check below catches a SCAN that misses keys).
 *
 * Per key the poll decides (`lookup`):
 * - in this poll's SCAN, reading present and its expiry ahead → cached, from memory;
 * - in this poll's SCAN but the reading is absent or its expiry passed (built since, or
 *   rebuilt) → probe;
 * - not in a complete SCAN → gone (no probe); if the reading was present the caller probes a
 *   small sample of those to catch a SCAN that cannot see the keys (then it trusts no SCAN
 *   this poll and probes them all). SCAN promises nothing about a key built while it runs,
 *   so where the ledger knows more than the reading — the warden built or found the chunk
 *   since — the caller probes instead (deep-sync.ts `read`);
 * - no reading, an incomplete SCAN, or the key's turn to be re-verified → probe. Readings
 *   are held in the order they were taken (a Map re-inserted on each), so each poll marks
 *   the oldest — at most 1/`reverifyPolls` of them, and only those at least `reverifyPolls`
 *   polls old — to be read again: every reading is checked within about two periods, the
 *   cost spread evenly over the polls, and no key twice within one period.
 *
 * A key deleted and rebuilt between two polls before its known expiry keeps its old reading:
 * the warden believes it expires at the OLD time, which is earlier than the truth (the copy
 * was set later with the same TTL). At that time the ledger makes it due — at worst one
 * request CVAT answers from its cache — and the next poll, seeing the key with its expiry
 * passed, reads the new expiry. An earlier re-warm, never a missed one; the re-verification
 * bounds how long a rebuilt copy's size or expiry can be off (`reverifyPolls` polls).
 *
 * Memory: per keyed request in scope the key string, a Map entry and 40 bytes of typed-array
 * columns (no object per reading); entries not in scope in a poll are dropped at its end
 * (`endPoll`) and their slots reused.
 */
import type { KeyState } from './cache-reader.js';

/** Every key is probed again once in this many polls (an hour at the default 60 s poll). */
export const REVERIFY_POLLS = 60;

/** expiresAt of a key the last reading found absent. */
const ABSENT = -1;

/** `lookup`'s answer: a live reading, or what the caller must do. */
export type Lookup =
  | { state: 'cached'; key: KeyState }
  | { state: 'absent' }
  /** The SCAN no longer lists a key the last reading found, which expired (or expires) at `expiresAt`. */
  | { state: 'gone'; expiresAt: number }
  | { state: 'probe' };

const PROBE: Lookup = { state: 'probe' };
const ABSENT_LOOKUP: Lookup = { state: 'absent' };

/** Columns of readings, one slot per key: typed arrays, so a reading costs no object of its own. */
class Columns {
  capacity: number;
  /** Clock ms at which the key leaves the cache; ABSENT: not there when last read. */
  expiresAt: Float64Array;
  bytes: Float64Array;
  /** Poll whose SCAN last returned the key. */
  seen: Int32Array;
  /** Poll in which the key was last in scope. */
  used: Int32Array;
  /** Poll of the last probe (or judgement "gone"). */
  readAt: Int32Array;
  /** Poll in which the reading is to be checked by a probe. */
  reverify: Int32Array;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.expiresAt = new Float64Array(capacity);
    this.bytes = new Float64Array(capacity);
    this.seen = new Int32Array(capacity);
    this.used = new Int32Array(capacity);
    this.readAt = new Int32Array(capacity);
    this.reverify = new Int32Array(capacity);
  }

  grown(): Columns {
    const next = new Columns(this.capacity * 2);
    next.expiresAt.set(this.expiresAt);
    next.bytes.set(this.bytes);
    next.seen.set(this.seen);
    next.used.set(this.used);
    next.readAt.set(this.readAt);
    next.reverify.set(this.reverify);
    return next;
  }
}

export class KnownKeys {
  /** Key → its slot in the columns; the Map's order is the order the readings were taken. */
  private readonly slots = new Map<string, number>();
  private columns = new Columns(1024);
  /** Slots freed by keys out of scope, reused before the columns grow. */
  private readonly free: number[] = [];
  private nextSlot = 0;
  private readonly reverifyPolls: number;
  private poll = 0;
  private scanComplete = false;

  constructor(reverifyPolls = REVERIFY_POLLS) {
    this.reverifyPolls = Math.max(1, Math.floor(reverifyPolls));
  }

  /** Readings held (one per keyed request in scope at the last poll). */
  get size(): number {
    return this.slots.size;
  }

  /** Whether this poll's SCAN is complete and trusted (the caller may say otherwise). */
  get scanTrusted(): boolean {
    return this.scanComplete;
  }

  beginPoll(): void {
    this.poll++;
    this.scanComplete = false;
    // The oldest readings come first in the Map: mark up to a period's share of those old enough.
    const c = this.columns;
    let budget = Math.ceil(this.slots.size / this.reverifyPolls);
    for (const slot of this.slots.values()) {
      if (budget-- <= 0 || this.poll - c.readAt[slot]! < this.reverifyPolls) break;
      c.reverify[slot] = this.poll;
    }
  }

  /** Keys one SCAN call returned. Unknown keys are ignored: they are probed when in scope. */
  markScanned(batch: readonly string[]): void {
    for (const key of batch) {
      const slot = this.slots.get(key);
      if (slot !== undefined) this.columns.seen[slot] = this.poll;
    }
  }

  /** The SCAN ended: complete (cursor back at 0) or not (bounded, aborted). */
  endScan(complete: boolean): void {
    this.scanComplete = complete;
  }

  /** A sample of keys the SCAN called gone were there: this poll trusts no SCAN (everything unknown is probed). */
  distrustScan(): void {
    this.scanComplete = false;
  }

  lookup(key: string, now: number): Lookup {
    const slot = this.slots.get(key);
    if (slot === undefined) return PROBE;
    const c = this.columns;
    c.used[slot] = this.poll;
    if (c.reverify[slot] === this.poll) return PROBE;
    const expiresAt = c.expiresAt[slot]!;
    const present = expiresAt !== ABSENT;
    if (c.seen[slot] === this.poll) {
      return present && expiresAt > now ? { state: 'cached', key: { pttlMs: expiresAt - now, bytes: c.bytes[slot]! } } : PROBE;
    }
    if (!this.scanComplete) return PROBE;
    return present ? { state: 'gone', expiresAt } : ABSENT_LOOKUP;
  }

  /** What a probe found (undefined: no such key), or a key judged gone. */
  learn(key: string, state: KeyState | undefined, now: number): void {
    let slot = this.slots.get(key);
    let seen = 0;
    if (slot !== undefined) {
      seen = this.columns.seen[slot]!;
      // Re-inserted: the Map stays in the order the readings were taken (beginPoll's oldest first).
      this.slots.delete(key);
    } else {
      slot = this.free.pop() ?? this.nextSlot++;
      if (slot >= this.columns.capacity) this.columns = this.columns.grown();
    }
    this.slots.set(key, slot);
    const c = this.columns;
    // PTTL -1 (no expiry: not CVAT's cache.set): a reading that is stale at once, so probed every poll.
    c.expiresAt[slot] = state === undefined ? ABSENT : state.pttlMs >= 0 ? now + state.pttlMs : now;
    c.bytes[slot] = state?.bytes ?? 0;
    c.seen[slot] = seen;
    c.used[slot] = this.poll;
    c.readAt[slot] = this.poll;
    c.reverify[slot] = 0;
  }

  /** Drops readings of keys not in scope this poll; returns how many. */
  endPoll(): number {
    let dropped = 0;
    const used = this.columns.used;
    for (const [key, slot] of this.slots) {
      if (used[slot] !== this.poll) {
        this.slots.delete(key);
        this.free.push(slot);
        dropped++;
      }
    }
    return dropped;
  }
}
