/**
 * The guard's memory across restarts and crashes.
 *  - Open problems (guard-state.json): loaded once, saved (debounced) when alerts change them.
 *  - The baseline: loaded once, *before* any task is indexed, into a compact table;
 *    every file the index creates claims its persisted baseline, so the first stat
 *    after a restart compares against what was there before the downtime. Every
 *    baseline taken or changed is appended to a CRC'd journal within ~20 ms
 *    (fdatasync'd), so a `kill -9` — even before the first scheduled scan — keeps
 *    it; the journal is compacted into a snapshot when it outgrows the index and at
 *    close. Write failures are logged, never thrown.
 */
import { GUARD_STORE_DEFAULTS } from '../../config/presets.js';
import { describeError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { StateDamage } from '../../state/damage.js';
import { Journaled } from '../../state/journaled.js';
import { encodeJournalRecords } from '../../state/journal-lines.js';
import { BASELINE_RECORD_BYTES, baselineCodec, writeBaselineRecord, type SnapshotEntry } from './baseline-file.js';
import type { BaselineTable } from '../core/baseline-table.js';
import type { ShareIndex } from '../core/share-index.js';
import { loadState, saveState, type PersistedProblem } from './state.js';
import type { FileTracker } from '../core/tracker.js';

export interface GuardStoreOptions {
  index: ShareIndex;
  tracker: FileTracker;
  stateDir: string;
  shareDir: string;
  logger: Logger;
  clock: () => number;
  /** Delay that batches journal appends (GUARD_STORE_DEFAULTS.journalFlushMs). */
  journalFlushMs?: number;
  /** fsync/fdatasync writes (tests of crash safety rely on it). @default true */
  durable?: boolean;
  /** Called once, after loading, with what was found damaged (not called when the files were intact). */
  onDamage?: (damage: readonly StateDamage[]) => void;
}

export class GuardStore {
  readonly #o: GuardStoreOptions;
  #loading: Promise<void> | undefined;
  /** Persisted baselines not claimed by an indexed file yet (undefined once none are left, or pruned). */
  #table: BaselineTable | undefined;
  #writer: Journaled<BaselineTable, Iterable<SnapshotEntry>> | undefined;
  /** Path key of each live slot (set when the slot is claimed). */
  #keyHi = new Uint32Array(0);
  #keyLo = new Uint32Array(0);
  /** Scratch for a slot's key (hi, lo) in claim. */
  readonly #key = new Uint32Array(2);
  /** Slots whose baseline changed since the last journal append. */
  #dirty: number[] = [];
  #journalTimer: NodeJS.Timeout | undefined;
  #saveTimer: NodeJS.Timeout | undefined;
  #available = true;
  #writes: Promise<void> = Promise.resolve();
  #closed = false;
  /** What loading found damaged in the baseline files and how it was recovered. */
  damage: readonly StateDamage[] = [];

  constructor(options: GuardStoreOptions) {
    this.#o = options;
  }

  /** Loads problems and the baseline, once; later calls wait for the first. Never throws. */
  load(): Promise<void> {
    this.#loading ??= this.#load();
    return this.#loading;
  }

  async #load(): Promise<void> {
    const { stateDir, logger, tracker } = this.#o;
    try {
      const state = await loadState(stateDir);
      tracker.loadPersisted(state?.problems ?? []);
    } catch (error) {
      logger.warn({ err: describeError(error), stateDir }, 'guard state unreadable; starting without it');
    }
    try {
      this.#writer = await Journaled.open(stateDir, baselineCodec, { durable: this.#o.durable ?? true, logger });
      const { state: table, damage, records } = this.#writer;
      if (table.count) logger.info({ entries: table.count, journalRecords: records }, 'share baseline loaded');
      if (table.unclaimed > 0) this.#table = table;
      this.damage = damage;
      if (damage.length > 0) this.#o.onDamage?.(damage);
      // Compact at once: the damaged files are replaced by a snapshot of what was kept.
      if (damage.length > 0) this.#chain(() => this.#compact(), 'cannot rewrite the damaged share baseline');
    } catch (error) {
      // Not even a fresh journal could be started: the guard runs on without persistence.
      logger.warn({ err: describeError(error), stateDir }, 'share baseline unreadable or not writable; running without it');
    }
  }

  /** New index slots (never observed): remember their keys and give them their persisted baseline. */
  claim(slots: readonly number[]): void {
    const { index } = this.#o;
    if (index.slotCount > this.#keyHi.length) {
      const capacity = Math.max(index.slotCount, this.#keyHi.length * 2, 1024);
      const hi = new Uint32Array(capacity);
      const lo = new Uint32Array(capacity);
      hi.set(this.#keyHi);
      lo.set(this.#keyLo);
      this.#keyHi = hi;
      this.#keyLo = lo;
    }
    const key = this.#key;
    for (const f of slots) {
      index.pathKeyOf(f, key);
      this.#keyHi[f] = key[0]!;
      this.#keyLo[f] = key[1]!;
      const st = this.#table?.take({ hi: key[0]!, lo: key[1]! });
      if (st && !index.hasBaseline(f)) index.setBaseline(f, st);
    }
    if (this.#table && this.#table.unclaimed === 0) this.#table = undefined;
  }

  /**
   * Forget persisted baselines nothing claimed (tasks deleted while the guard was
   * down). Called once discovery had every chance to feed every task.
   */
  pruneUnclaimed(): void {
    if (!this.#table) return;
    this.#o.logger.info({ entries: this.#table.unclaimed }, 'persisted baselines of files no task reads any more dropped');
    this.#table = undefined;
  }

  /** A slot's baseline was taken or changed: journal it soon. */
  noteBaseline(f: number): void {
    if (this.#closed) return;
    this.#dirty.push(f);
    if (this.#journalTimer) return;
    this.#journalTimer = setTimeout(() => {
      this.#journalTimer = undefined;
      this.#appendDirty();
    }, this.#o.journalFlushMs ?? GUARD_STORE_DEFAULTS.journalFlushMs);
    this.#journalTimer.unref();
  }

  #appendDirty(): void {
    const { index } = this.#o;
    const dirty = this.#dirty;
    this.#dirty = [];
    const slots = dirty.filter((f) => index.isLive(f) && index.hasBaseline(f) && f < this.#keyHi.length);
    if (slots.length === 0) return;
    // Encoded now, straight into bytes that wait off-heap for the write.
    const lines = encodeJournalRecords(slots.length, BASELINE_RECORD_BYTES, (i, buf, at) => {
      const f = slots[i]!;
      return writeBaselineRecord(buf, at, this.#keyHi[f]!, this.#keyLo[f]!, index.bSize[f]!, index.bMtime[f]!, index.bIno[f]!, index.bDev.get(f));
    });
    const records = slots.length;
    this.#chain(async () => {
      await this.#writer?.appendEncoded(lines, records);
      if ((this.#writer?.records ?? 0) > Math.max(GUARD_STORE_DEFAULTS.compactMinRecords, index.liveFiles + (this.#table?.unclaimed ?? 0)))
        await this.#compact();
    }, 'cannot journal share baseline');
  }

  #chain(step: () => Promise<void>, failure: string): void {
    this.#writes = this.#writes.then(step).catch((error: unknown) => this.#o.logger.warn({ err: describeError(error) }, failure));
  }

  *#entries(): Generator<SnapshotEntry> {
    const { index } = this.#o;
    for (let f = 0; f < index.slotCount && f < this.#keyHi.length; f++) {
      if (!index.isLive(f) || !index.hasBaseline(f)) continue;
      yield [this.#keyHi[f]!, this.#keyLo[f]!, index.bSize[f]!, index.bMtime[f]!, index.bIno[f]!, index.bDev.get(f)];
    }
    const table = this.#table;
    if (table) {
      for (let e = 0; e < table.count; e++) {
        if (!table.claimed[e]) yield [table.hi[e]!, table.lo[e]!, table.size[e]!, table.mtime[e]!, table.ino[e]!, table.dev[e]!];
      }
    }
  }

  async #compact(): Promise<void> {
    if (!this.#writer) return;
    const started = performance.now();
    const entries = await this.#writer.compact(this.#entries());
    this.#o.logger.debug({ entries, ms: Math.round(performance.now() - started) }, 'share baseline snapshot written');
  }

  /** Journal what is pending now (after scans, so a crash right after loses nothing). */
  flushSoon(): void {
    if (this.#journalTimer) {
      clearTimeout(this.#journalTimer);
      this.#journalTimer = undefined;
    }
    this.#appendDirty();
  }

  scheduleSave(available: boolean): void {
    this.#available = available;
    if (this.#saveTimer || this.#closed) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      this.#saveState();
    }, GUARD_STORE_DEFAULTS.saveDebounceMs);
    this.#saveTimer.unref();
  }

  #saveState(): void {
    const { index, tracker } = this.#o;
    const problems: PersistedProblem[] = [];
    for (const [f, record] of tracker.problems) {
      const p: PersistedProblem = { path: index.relPath(f), kind: record.kind, role: index.roleOf(f), since: record.since, taskIds: index.taskIdsOf(f) };
      if (record.newPath !== undefined) p.newPath = record.newPath;
      problems.push(p);
    }
    problems.push(...tracker.persisted.values()); // not seen again yet (share unavailable?): keep them
    const state = {
      version: 1 as const,
      shareDir: this.#o.shareDir,
      savedAt: new Date(this.#o.clock()).toISOString(),
      shareAvailable: this.#available,
      problems,
    };
    this.#chain(() => saveState(this.#o.stateDir, state), 'cannot save guard state');
  }

  /**
   * Final writes when the guard ever `started`: state (with the share's last `available`),
   * pending journal, a snapshot; waits for all.
   */
  async close({ started, available }: { started: boolean; available: boolean }): Promise<void> {
    if (this.#saveTimer) clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    if (started && !this.#closed) {
      this.#available = available;
      this.#saveState();
      this.flushSoon();
      if (this.#writer && this.#loading) this.#chain(() => this.#compact(), 'cannot write share baseline snapshot');
    }
    this.#closed = true;
    if (this.#journalTimer) clearTimeout(this.#journalTimer);
    this.#journalTimer = undefined;
    await this.#writes;
    await this.#writer?.close();
  }
}
