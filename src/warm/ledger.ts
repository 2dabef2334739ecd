/**
 * The chunk ledger: for every chunk the warmer touched, when it was confirmed built
 * on the server, with which outcome and X-Checksum, plus per series the
 * X-Updated-Date / `chunks_updated_date` it was built against. A restarted run uses
 * it to skip chunks confirmed warm recently (CVAT keeps a built chunk 24 h).
 *
 * Addressing: a *series* string names a group of slots sharing one updated date,
 * e.g. `j123/compressed` (job chunks by index), `t45/compressed` (legacy task
 * chunks by number), `t45/context` (context images by frame), `j123/preview`
 * (slot 0). Slots are non-negative int32; the slots of one series should be
 * dense-ish (they are stored in one array spanning lowest..highest slot, at most
 * 2^24 wide).
 *
 * Memory: ~13 bytes per slot of a series' span plus ~150 bytes per series (about
 * 24–29 bytes per entry at 1M entries); `isFresh` allocates nothing, `get` one
 * small object. Sustains millions of lookups per second.
 *
 * Persistence is src/state/'s `Journaled` with the ledger's codec (ledger-codec.ts,
 * format in ledger-format.ts): `<stateDir>/ledger.journal` receives every change as a
 * CRC-protected line, batched here (every `flushIntervalMs`, or sooner when
 * `maxPendingRecords` accumulate) and fdatasync'd; it is compacted into
 * `<stateDir>/ledger.snapshot` when it grows. `kill -9` at any point loses at most the
 * unflushed changes. `<stateDir>/ledger.lock` keeps a second process out.
 */
import { resolve } from 'node:path';
import { LEDGER_DEFAULTS } from '../config/presets.js';
import { WardenError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { StateDamage } from '../state/damage.js';
import { Journaled, stateError } from '../state/journaled.js';
import { dateLine, forgetLine, recordLine } from './ledger-format.js';
import { ledgerCodec, type LedgerSnapshotSource } from './ledger-codec.js';
import { applySetDate } from './ledger-ops.js';
import { CODE_MASK, HAS_CHECKSUM, MAX_SLOT, OUTCOME, OUTCOME_NAMES, type Outcome, type SlotStore } from './ledger-store.js';

export { OUTCOME, type Outcome } from './ledger-store.js';
export { FORMAT_VERSION as LEDGER_FORMAT_VERSION } from './ledger-format.js';

/** Entries confirmed further than this in the future (clock went back) are not fresh. */
const FUTURE_TOLERANCE_MS = 5 * 60 * 1000;

export { LEDGER_FILES } from './ledger-codec.js';

export interface LedgerEntry {
  /** When the chunk was confirmed (built) on the server, ms since the epoch. */
  confirmedAt: number;
  outcome: Outcome;
  /** X-Checksum of the response (CRC32, unsigned). */
  checksum?: number;
}

export interface LedgerStats {
  series: number;
  entries: number;
  warm: number;
  failed: number;
  stuck: number;
  /** Smallest confirmedAt among warm entries, when there are any. */
  oldestWarm?: number;
}

export interface LedgerOptions {
  /** Time source for `isFresh` (default Date.now). */
  clock?: { now(): number };
  /** Longest time a change waits before it is written (default: LEDGER_DEFAULTS in src/config/presets.ts). */
  flushIntervalMs?: number;
  /** Write as soon as this many changes are pending. */
  maxPendingRecords?: number;
  /**
   * Compact the journal into a new snapshot once it holds this many records, or a
   * quarter of the live entries if that is more.
   */
  compactAfterRecords?: number;
  /** fdatasync each batch and fsync snapshots (default true). Only tests turn this off. */
  durable?: boolean;
  logger?: Logger;
}

function checkSeries(series: string): void {
  if (typeof series !== 'string' || series.length === 0 || series.length > 1000) {
    throw new TypeError(`ledger: series must be a non-empty string of at most 1000 characters, got ${JSON.stringify(series)}`);
  }
}

function checkSlot(slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot > MAX_SLOT) throw new RangeError(`ledger: slot must be an integer in 0..${MAX_SLOT}, got ${slot}`);
}

function checkDate(date: string): void {
  if (typeof date !== 'string' || date.length === 0 || date.length > 1000) {
    throw new TypeError(`ledger: updatedDate must be a non-empty string of at most 1000 characters, got ${JSON.stringify(date)}`);
  }
}

/**
 * Persistent per-chunk record of warm confirmations. Create with `Ledger.open`;
 * all reads and `record`/`setUpdatedDate`/`forgetSeries` are synchronous and act on
 * memory at once; persistence happens in the background (see `flush`).
 */
export class Ledger implements AsyncDisposable {
  readonly dir: string;
  private readonly store: SlotStore;
  private readonly files: Journaled<SlotStore, LedgerSnapshotSource>;
  private readonly clock: { now(): number };
  private readonly log: Logger | undefined;
  private readonly flushIntervalMs: number;
  private readonly maxPending: number;
  private readonly compactAfter: number;

  /** Journal payloads not yet written. */
  private pending: string[] = [];
  private compacting = false;
  /** Serialises every write; never rejects. */
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private flushQueued = false;
  private failures = 0;
  private closing: Promise<void> | undefined;

  private constructor(files: Journaled<SlotStore, LedgerSnapshotSource>, options: LedgerOptions) {
    this.dir = files.dir;
    this.files = files;
    this.store = files.state;
    this.clock = options.clock ?? Date;
    this.log = options.logger;
    this.flushIntervalMs = Math.max(0, options.flushIntervalMs ?? LEDGER_DEFAULTS.flushIntervalMs);
    this.maxPending = Math.max(1, options.maxPendingRecords ?? LEDGER_DEFAULTS.maxPendingRecords);
    this.compactAfter = Math.max(1, options.compactAfterRecords ?? LEDGER_DEFAULTS.compactAfterRecords);
  }

  /** What opening found damaged and how it was recovered (empty when the files were intact). */
  get damage(): readonly StateDamage[] {
    return this.files.damage;
  }

  /**
   * Opens (creating if missing) the ledger in `stateDir`: loads the snapshot,
   * replays the journal record by record, and truncates a torn tail away. Throws
   * WardenError('STATE_IO') naming the directory when it cannot be created, written or
   * locked, or holds a snapshot of a newer format.
   */
  static async open(stateDir: string, options: LedgerOptions = {}): Promise<Ledger> {
    const started = performance.now();
    const files = await Journaled.open(resolve(stateDir), ledgerCodec, { durable: options.durable, logger: options.logger });
    const { state: store, damage, records, generation } = files;
    store.trim();
    const ledger = new Ledger(files, options);
    options.logger?.debug(
      { dir: files.dir, series: store.seriesCount, entries: store.entries, journalRecords: records, generation, ms: Math.round(performance.now() - started) },
      'ledger loaded',
    );
    if (damage.length > 0) {
      // Compact at once: the damaged files are replaced by a snapshot of what was kept,
      // so the next open finds clean files (a failure retries in the background).
      await ledger.enqueue().catch(() => ledger.queueFlush());
    } else if (files.needsCompaction || records >= ledger.compactThreshold()) ledger.queueFlush();
    return ledger;
  }

  // ------------------------------------------------------------------ reads

  /** The entry of a chunk, or undefined. */
  get(series: string, slot: number): LedgerEntry | undefined {
    const id = this.store.idOf(series);
    if (id === undefined) return undefined;
    const p = this.store.indexOf(id, slot);
    if (p < 0) return undefined;
    return this.entryAt(p);
  }

  /**
   * True when the chunk was confirmed warm less than `maxAgeMs` ago (by the clock)
   * and, when `currentUpdatedDate` is given, the series' known updated date equals
   * it. Entries confirmed more than 5 minutes "in the future" (the clock went back)
   * are not fresh. Pure: a mismatching date does not drop anything.
   */
  isFresh(series: string, slot: number, maxAgeMs: number, currentUpdatedDate?: string): boolean {
    const id = this.store.idOf(series);
    if (id === undefined) return false;
    if (currentUpdatedDate !== undefined && this.store.dateOf(id) !== currentUpdatedDate) return false;
    const p = this.store.indexOf(id, slot);
    if (p < 0 || (this.store.flagsAt(p) & CODE_MASK) !== OUTCOME.warm) return false;
    const age = this.clock.now() - this.store.confirmedAtAt(p);
    return age < maxAgeMs && age > -FUTURE_TOLERANCE_MS;
  }

  /**
   * When the chunk comes due again, without allocating: `confirmedAt + maxAgeMs` for a
   * warm entry, `confirmedAt + retryMs` for a failed or stuck one, and `-Infinity` (due
   * now) for none or one confirmed more than 5 minutes in the future. Writes the
   * outcome code (0 none, OUTCOME.*) to `out.code`. The scheduler's per-chunk question.
   */
  dueAt(series: string, slot: number, maxAgeMs: number, retryMs: number, out: { code: number }): number {
    out.code = 0;
    const id = this.store.idOf(series);
    if (id === undefined) return -Infinity;
    const p = this.store.indexOf(id, slot);
    if (p < 0) return -Infinity;
    const code = this.store.flagsAt(p) & CODE_MASK;
    const at = this.store.confirmedAtAt(p);
    if (at - this.clock.now() > FUTURE_TOLERANCE_MS) return -Infinity;
    out.code = code;
    return at + (code === OUTCOME.warm ? maxAgeMs : retryMs);
  }

  /** Warm entries confirmed before `before`, and the oldest warm confirmation (one pass over memory, no allocation). */
  warmSummary(before: number): { count: number; oldest: number | undefined } {
    return this.store.warmSummary(before);
  }

  /** The series' known updated date (chunks_updated_date / X-Updated-Date). */
  updatedDate(series: string): string | undefined {
    const id = this.store.idOf(series);
    return id === undefined ? undefined : this.store.dateOf(id);
  }

  /** Slots and entries of a series, in slot order (a snapshot: safe to mutate meanwhile). */
  *entries(series: string): IterableIterator<[number, LedgerEntry]> {
    const id = this.store.idOf(series);
    if (id === undefined) return;
    const list: [number, LedgerEntry][] = [];
    this.store.forEachEntry(id, (slot, confirmedAt, flags, checksum) => {
      list.push([slot, makeEntry(confirmedAt, flags, checksum)]);
    });
    yield* list;
  }

  /** Names of all known series (including ones that only carry a date). */
  seriesNames(): IterableIterator<string> {
    return [...this.store.seriesNames()][Symbol.iterator]();
  }

  /** Counts over all entries; `oldestWarm` costs one pass over memory (~ms per million). */
  stats(): LedgerStats {
    const s = this.store;
    const out: LedgerStats = {
      series: s.seriesCount,
      entries: s.entries,
      warm: s.byOutcome[OUTCOME.warm] as number,
      failed: s.byOutcome[OUTCOME.failed] as number,
      stuck: s.byOutcome[OUTCOME.stuck] as number,
    };
    if (out.warm > 0) {
      const oldest = s.oldest(OUTCOME.warm);
      if (oldest !== undefined) out.oldestWarm = oldest;
    }
    return out;
  }

  // ------------------------------------------------------------------ writes

  /**
   * Records the outcome of a chunk request. With `updatedDate`, first applies
   * `setUpdatedDate(series, updatedDate)` (dropping the series' entries if the date
   * moved). A checksum that is not a 32-bit integer is stored as "no checksum";
   * negative int32 values are taken as their unsigned equivalent.
   * Throws TypeError/RangeError on an invalid series, slot, time or outcome, and
   * Error once the ledger is closing.
   */
  record(series: string, slot: number, entry: LedgerEntry, updatedDate?: string): void {
    this.assertOpen();
    checkSeries(series);
    checkSlot(slot);
    if (!Object.hasOwn(OUTCOME, entry.outcome)) throw new TypeError(`ledger: unknown outcome ${JSON.stringify(entry.outcome)}`);
    if (typeof entry.confirmedAt !== 'number' || !Number.isFinite(entry.confirmedAt)) {
      throw new TypeError(`ledger: confirmedAt must be a finite number, got ${entry.confirmedAt}`);
    }
    let flags: number = OUTCOME[entry.outcome];
    let checksum = 0;
    const c = entry.checksum;
    if (typeof c === 'number' && Number.isInteger(c) && c >= -0x8000_0000 && c <= 0xffff_ffff) {
      checksum = c >>> 0;
      flags |= HAS_CHECKSUM;
    }
    if (updatedDate !== undefined) this.setUpdatedDate(series, updatedDate);
    // Throws RangeError (before changing anything) when the slot is too far from the series' others.
    this.store.set(this.store.ensureSeries(series), slot, entry.confirmedAt, flags, checksum);
    this.push(recordLine(series, slot, entry.confirmedAt, flags, checksum));
  }

  /**
   * Sets the series' updated date (creating the series if needed). If it differs
   * from the known date, the series' entries are void and dropped — all of them
   * when the date moved; when the series had no date yet, only its warm entries
   * (they cannot be tied to a date; failed/stuck ones never make a chunk fresh).
   * Setting the known date again is a no-op.
   */
  setUpdatedDate(series: string, date: string): void {
    this.assertOpen();
    checkSeries(series);
    checkDate(date);
    if (applySetDate(this.store, series, date)) this.push(dateLine(series, date));
  }

  /** Forgets a series and its date (e.g. its job was deleted). No-op if unknown. */
  forgetSeries(series: string): void {
    this.assertOpen();
    const id = this.store.idOf(series);
    if (id === undefined) return;
    this.store.deleteSeries(id);
    this.push(forgetLine(series));
  }

  /**
   * Writes every change made so far (and compacts if due). Resolves once the data is
   * on disk (fdatasync'd unless `durable: false`); rejects with WardenError
   * ('STATE_IO') when writing fails — nothing is lost from memory, and the next
   * write (background retries back off up to 1 min) rewrites the files by compaction.
   * After `close()` it returns the close promise.
   */
  flush(): Promise<void> {
    return this.closing ?? this.enqueue();
  }

  /**
   * Flushes, then releases the files and the lock. Idempotent: later calls return
   * the same promise. Reads keep working on the in-memory data afterwards; writes throw.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      try {
        await this.enqueue(); // rejects only with an Error (see enqueue), rethrown after the cleanup
      } finally {
        await this.chain;
        await this.files.close();
      }
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ------------------------------------------------------------------ internals

  private entryAt(p: number): LedgerEntry {
    return makeEntry(this.store.confirmedAtAt(p), this.store.flagsAt(p), this.store.checksumAt(p));
  }

  private assertOpen(): void {
    if (this.closing) throw new Error(`ledger in ${this.dir} is closed`);
  }

  private compactThreshold(): number {
    return Math.max(this.compactAfter, this.store.entries >> 2);
  }

  private push(payload: string): void {
    if (!this.files.needsCompaction || this.compacting) this.pending.push(payload);
    // While writes fail, only the back-off timer retries.
    if (this.pending.length >= this.maxPending && this.failures === 0) this.queueFlush();
    else if (!this.timer && !this.flushQueued) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.queueFlush();
      }, this.flushIntervalMs);
      this.timer.unref();
    }
  }

  /** Background flush: errors are logged, with back-off retries. */
  private queueFlush(): void {
    if (this.flushQueued || this.closing) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.flushQueued = true;
    this.enqueue().catch((error: unknown) => {
      this.failures++;
      if (this.failures === 1 || this.failures % 60 === 0) {
        this.log?.error({ dir: this.dir, err: describeError(error), failures: this.failures }, 'ledger write failed; will retry');
      }
      if (!this.closing && !this.timer) {
        const delay = Math.min(60_000, 1000 * 2 ** Math.min(6, this.failures - 1));
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.queueFlush();
        }, delay);
        this.timer.unref();
      }
    });
  }

  private enqueue(): Promise<void> {
    const run = this.chain.then(async () => {
      this.flushQueued = false;
      try {
        await this.writeStep();
        this.failures = 0;
      } catch (error) {
        throw error instanceof WardenError ? error : stateError(`cannot write the ledger in ${this.dir}`, error);
      }
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async writeStep(): Promise<void> {
    if (this.files.needsCompaction || this.files.records + this.pending.length > this.compactThreshold()) {
      await this.compact();
      return;
    }
    await this.appendPending();
  }

  /** Appends the pending lines to the journal (fdatasync'd). */
  private async appendPending(): Promise<void> {
    const n = this.pending.length;
    if (n === 0) return;
    try {
      await this.files.append(this.pending, 0, n);
    } catch (error) {
      // The compaction that replaces the journal captures memory, so the lines can go.
      this.pending = [];
      throw error;
    }
    this.pending.splice(0, n);
  }

  /**
   * Writes a snapshot of memory and a fresh journal (src/state/journaled.ts). The pending
   * lines are appended to the old journal first, so the previous generation kept as the
   * fallback of a damaged snapshot rebuilds the new snapshot exactly.
   */
  private async compact(): Promise<void> {
    const started = performance.now();
    this.compacting = true;
    try {
      if (!this.files.needsCompaction) await this.appendPending();
      const cut = this.pending.length; // everything up to here is in the snapshot
      await this.files.compact({ store: this.store, writtenAt: this.clock.now() });
      this.pending.splice(0, cut);
    } catch (error) {
      this.pending = [];
      throw error;
    } finally {
      this.compacting = false;
    }
    // Drop the growth slack of the in-memory arrays while we are at it.
    this.store.trim();
    const ms = Math.round(performance.now() - started);
    this.log?.debug({ dir: this.dir, generation: this.files.generation, entries: this.store.entries, ms }, 'ledger compacted');
  }
}

function makeEntry(confirmedAt: number, flags: number, checksum: number): LedgerEntry {
  const outcome = OUTCOME_NAMES[flags & CODE_MASK] as Outcome;
  return flags & HAS_CHECKSUM ? { confirmedAt, outcome, checksum } : { confirmedAt, outcome };
}
