/**
 * The per-file state machine, part of the guard's pure core: synchronous, no file system,
 * timers or metrics, one injected clock. Observations (a stat result or "absent") go in;
 * transitions (deleted / moved / modified / restored) come out — returned by `observe`
 * and collected in `outbox`, which the runtime drains into the event sinks after each
 * step. Problem counts go to `gauges` (the shell turns them into metrics). A file that
 * disappears is counted as missing at once (the gauge moves within milliseconds) but its
 * alert is held for the move window, so an unlink that pairs with an appearance of the
 * same dev+inode is reported as `moved`.
 *
 * Rules (baseline = stat when first indexed, or persisted):
 *  - modified: size, mtime or inode (same device) differ from the baseline
 *  - restored: a missing file is back with the baseline's size (copies need not keep
 *    mtime/inode); a modified file is back to the baseline's size and mtime
 *  - an open problem found open again after a restart is "still open": no event
 */
import { FileStatus, type ShareIndex } from './share-index.js';
import type { DetectionSource, FileEventKind, FileStat, PersistedProblem, ProblemKind } from '../types.js';
import type { GuardClock } from './clock.js';

export interface Transition {
  f: number;
  kind: FileEventKind;
  source: DetectionSource;
  newPath?: string;
  previous?: ProblemKind;
  change?: { before: FileStat | null; after: FileStat };
}

export interface ProblemRecord {
  kind: ProblemKind;
  newPath?: string;
  since: number;
  /** For `modified`: the file had been missing (came back different) — a same-size copy resolves it. */
  previous?: ProblemKind;
}

interface Pending {
  due: number;
  since: number;
  prev: number;
  source: DetectionSource;
  key: string | undefined;
}

const isProblem = (status: number) =>
  status === FileStatus.pending || status === FileStatus.deleted || status === FileStatus.moved || status === FileStatus.modified;

const inoKey = (dev: number, ino: number) => `${dev}:${ino}`;
const copyStat = (st: FileStat): FileStat => ({ size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev });
const NO_TRANSITIONS: readonly Transition[] = Object.freeze([]);

/** Where problem counts go (the shell's metrics): the total, and per task with its name while it has any. */
export interface TrackerGauges {
  filesMissing(total: number): void;
  taskFilesMissing(taskId: number, count: number, taskName: string | undefined): void;
}

/**
 * How to read one observation: `normal`; `ignore-inode` after the share came back
 * (remount, restore from a copy: inode numbers say nothing, size + mtime decide and the
 * inode is re-baselined silently); `settled`: a file that came back with another size was
 * looked at again after its settle delay (a copy finished), so it is decided now.
 */
export type ObserveMode = 'normal' | 'ignore-inode' | 'settled';

export interface Observation {
  /** The stat result, or null when the path does not exist. */
  stat: FileStat | null;
  source: DetectionSource;
  mode?: ObserveMode;
}

export interface FileTrackerOptions {
  index: ShareIndex;
  clock: GuardClock;
  moveWindowMs: number;
  gauges: TrackerGauges;
  /** A slot's baseline was taken or changed (the store journals it). */
  onBaseline?: (f: number) => void;
}

export class FileTracker {
  readonly #index: ShareIndex;
  readonly #gauges: TrackerGauges;
  readonly #clock: GuardClock;
  readonly #moveWindowMs: number;
  readonly outbox: Transition[] = [];
  readonly problems = new Map<number, ProblemRecord>();
  readonly #pending = new Map<number, Pending>();
  /** Missing files seen again with another size (maybe still being copied): decided after a settle delay. */
  readonly #unsettled = new Map<number, number>();
  /** Just restored: a copy may still set mtime/attributes; same-size changes until then are not alerts. */
  readonly #settling = new Map<number, number>();
  readonly #pendingByIno = new Map<string, number>();
  readonly #taskCounts = new Map<number, number>();
  /** Problems loaded from disk, keyed by path, consumed on the file's first observation. */
  readonly persisted = new Map<string, PersistedProblem>();
  /** Persisted problems per task, counted in the gauges until their file is observed again. */
  readonly #persistedByTask = new Map<number, number>();
  /** Paths whose persisted problem was found still open (logged once by the guard). */
  readonly stillOpen: string[] = [];
  #problemFiles = 0;
  readonly #onBaseline: (f: number) => void;

  constructor(options: FileTrackerOptions) {
    this.#index = options.index;
    this.#gauges = options.gauges;
    this.#clock = options.clock;
    this.#moveWindowMs = options.moveWindowMs;
    this.#onBaseline = options.onBaseline ?? (() => undefined);
  }

  get problemFiles(): number {
    return this.#problemFiles;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  hasPendingMoves(): boolean {
    return this.#pendingByIno.size > 0;
  }

  /**
   * Problems saved by the last run go into the gauges at once, before any task is known
   * again: a restart (even one with CVAT unreachable) must not read as "files back", or
   * the files-missing alert would resolve and start its `for:` wait anew.
   */
  loadPersisted(problems: Iterable<PersistedProblem>): void {
    for (const p of problems) {
      if (this.persisted.has(p.path)) continue;
      this.persisted.set(p.path, p);
      this.#persistedDelta(p, 1);
    }
    this.#publishTotal();
  }

  /** After a full scan of a populated index: persisted problems of files no task expects any more. */
  dropUnseenPersisted(): void {
    if (this.persisted.size === 0) return;
    for (const p of this.persisted.values()) this.#persistedDelta(p, -1);
    this.persisted.clear();
    this.#publishTotal();
  }

  #takePersisted(rel: string): PersistedProblem | undefined {
    const p = this.persisted.get(rel);
    if (!p) return undefined;
    this.persisted.delete(rel);
    this.#persistedDelta(p, -1);
    this.#publishTotal();
    return p;
  }

  #persistedDelta(p: PersistedProblem, delta: 1 | -1): void {
    for (const taskId of new Set(p.taskIds)) {
      const n = (this.#persistedByTask.get(taskId) ?? 0) + delta;
      if (n > 0) this.#persistedByTask.set(taskId, n);
      else this.#persistedByTask.delete(taskId);
      this.#publishTask(taskId);
    }
  }

  #publishTask(taskId: number): void {
    const n = (this.#taskCounts.get(taskId) ?? 0) + (this.#persistedByTask.get(taskId) ?? 0);
    this.#gauges.taskFilesMissing(taskId, n, n > 0 ? this.#index.tasks.get(taskId)?.mapping.taskName : undefined);
  }

  #publishTotal(): void {
    this.#gauges.filesMissing(this.#problemFiles + this.persisted.size);
  }

  #setTaskCount(taskId: number, n: number): void {
    if (n > 0) this.#taskCounts.set(taskId, n);
    else if (!this.#taskCounts.delete(taskId)) return;
    this.#publishTask(taskId);
  }

  #mark(f: number, delta: 1 | -1): void {
    this.#problemFiles += delta;
    this.#publishTotal();
    for (const taskId of this.#index.refsByTask(f).keys()) this.#setTaskCount(taskId, (this.#taskCounts.get(taskId) ?? 0) + delta);
  }

  #setStatus(f: number, next: number): void {
    const prev = this.#index.status[f]!;
    if (prev === next) return;
    this.#index.status[f] = next;
    if (isProblem(prev) && !isProblem(next)) this.#mark(f, -1);
    else if (!isProblem(prev) && isProblem(next)) this.#mark(f, 1);
  }

  #rebaseline(f: number, st: FileStat): void {
    this.#index.setBaseline(f, st);
    this.#onBaseline(f);
  }

  /** Recount a task's problem files (after it was (re)indexed). */
  recountTask(taskId: number): void {
    const task = this.#index.tasks.get(taskId);
    if (!task) {
      this.#setTaskCount(taskId, 0);
      return;
    }
    const seen = new Set<number>();
    for (const f of task.fileIds) if (isProblem(this.#index.status[f]!)) seen.add(f);
    this.#setTaskCount(taskId, seen.size);
  }

  /** A task left the index: drop its series. */
  forgetTask(taskId: number): void {
    this.#setTaskCount(taskId, 0);
  }

  /** A slot is about to be freed (no task references it any more). */
  forgetFile(f: number): void {
    this.#cancelPending(f);
    this.#unsettled.delete(f);
    this.#settling.delete(f);
    this.problems.delete(f);
    if (isProblem(this.#index.status[f]!)) {
      this.#problemFiles--;
      this.#publishTotal();
    }
    this.#index.status[f] = FileStatus.unknown;
  }

  #cancelPending(f: number): Pending | undefined {
    const pending = this.#pending.get(f);
    if (!pending) return undefined;
    this.#pending.delete(f);
    if (pending.key !== undefined && this.#pendingByIno.get(pending.key) === f) this.#pendingByIno.delete(pending.key);
    return pending;
  }

  #open(f: number, kind: ProblemKind, source: DetectionSource, extra: Partial<Transition> = {}, since?: number): void {
    if (extra.change) extra.change = { before: extra.change.before && copyStat(extra.change.before), after: copyStat(extra.change.after) };
    const record: ProblemRecord = { kind, since: since ?? this.problems.get(f)?.since ?? this.#clock.wall() };
    if (extra.newPath !== undefined) record.newPath = extra.newPath;
    if (kind === 'modified' && extra.previous !== undefined) record.previous = extra.previous;
    this.problems.set(f, record);
    this.outbox.push({ f, kind, source, ...extra });
  }

  #resolve(f: number, st: FileStat, source: DetectionSource, previous: ProblemKind): void {
    const now = this.#clock.monotonic();
    if (this.#settling.size > 10_000) for (const [g, until] of this.#settling) if (until < now) this.#settling.delete(g);
    this.#settling.set(f, now + Math.max(1000, 4 * this.#moveWindowMs));
    this.problems.delete(f);
    this.#rebaseline(f, st);
    this.#setStatus(f, FileStatus.ok);
    this.outbox.push({ f, kind: 'restored', source, previous });
  }

  /**
   * Applies one observation; returns the transitions it produced (they are also in
   * `outbox` until the runtime drains it).
   */
  observe(f: number, { stat, source, mode = 'normal' }: Observation): readonly Transition[] {
    const index = this.#index;
    if (!index.isLive(f)) return NO_TRANSITIONS;
    const before = this.outbox.length;
    index.gen[f] = index.gen[f]! + 1;
    const prev = index.status[f]!;
    const persisted = prev === FileStatus.unknown && this.persisted.size > 0 ? this.#takePersisted(index.relPath(f)) : undefined;
    const b = index.baseline(f);
    if (stat === null) this.#observeAbsent(f, prev, source, b, persisted);
    else if (prev === FileStatus.unknown || prev === FileStatus.ok) this.#observeKnown(f, stat, source, b, persisted, mode === 'ignore-inode');
    else if (prev === FileStatus.pending) this.#observeBack(f, stat, source, b);
    else if (prev === FileStatus.deleted || prev === FileStatus.moved) this.#observeMissing(f, stat, source, b, prev, mode === 'settled');
    else if (prev === FileStatus.modified) this.#observeModified(f, stat, source, b);
    return this.outbox.length === before ? NO_TRANSITIONS : this.outbox.slice(before);
  }

  #observeAbsent(f: number, prev: number, source: DetectionSource, b: FileStat | null, persisted: PersistedProblem | undefined): void {
    if (prev === FileStatus.pending || prev === FileStatus.deleted || prev === FileStatus.moved) return;
    if (persisted && persisted.kind !== 'modified') {
      const record: ProblemRecord = { kind: persisted.kind, since: persisted.since };
      if (persisted.newPath !== undefined) record.newPath = persisted.newPath;
      this.problems.set(f, record);
      this.#setStatus(f, persisted.kind === 'moved' ? FileStatus.moved : FileStatus.deleted);
      this.stillOpen.push(persisted.path);
      return;
    }
    this.#enterPending(f, prev, source, b);
  }

  /** Present, and unknown or fine so far (the first stat after indexing, or any later one). */
  #observeKnown(f: number, st: FileStat, source: DetectionSource, b: FileStat | null, persisted: PersistedProblem | undefined, ignoreInode: boolean): void {
    if (!b) {
      this.#rebaseline(f, st);
      this.#setStatus(f, FileStatus.ok);
      if (persisted) this.outbox.push({ f, kind: 'restored', source, previous: persisted.kind });
      return;
    }
    if (persisted) {
      this.#observePersisted(f, st, source, b, persisted);
      return;
    }
    if (sameAsBaseline(b, st) || (ignoreInode && b.size === st.size && b.mtimeMs === st.mtimeMs)) {
      if (b.dev !== st.dev || b.ino !== st.ino) this.#rebaseline(f, st); // remount: new device numbers
      this.#setStatus(f, FileStatus.ok);
      return;
    }
    const settlingUntil = this.#settling.get(f);
    if (settlingUntil !== undefined) {
      if (this.#clock.monotonic() <= settlingUntil && st.size === b.size) {
        this.#rebaseline(f, st); // the restoring copy finishing
        return;
      }
      this.#settling.delete(f);
    }
    this.#setStatus(f, FileStatus.modified);
    this.#open(f, 'modified', source, { change: { before: b, after: st } });
  }

  /** The first stat of a file with a problem saved by the last run. */
  #observePersisted(f: number, st: FileStat, source: DetectionSource, b: FileStat, persisted: PersistedProblem): void {
    if (persisted.kind === 'modified') {
      if (st.size === b.size && st.mtimeMs === b.mtimeMs) {
        this.#resolveFromUnknown(f, st, source, 'modified');
        return;
      }
      this.problems.set(f, { kind: 'modified', since: persisted.since });
      this.#setStatus(f, FileStatus.modified);
      this.stillOpen.push(persisted.path);
      return;
    }
    if (st.size === b.size) {
      this.#resolveFromUnknown(f, st, source, persisted.kind);
      return;
    }
    this.#setStatus(f, FileStatus.modified);
    this.#open(f, 'modified', source, { previous: persisted.kind, change: { before: b, after: st } }, persisted.since);
  }

  /** Back within the move window. */
  #observeBack(f: number, st: FileStat, source: DetectionSource, b: FileStat | null): void {
    const pending = this.#cancelPending(f);
    const before = pending?.prev ?? FileStatus.ok;
    if (!b || (b.size === st.size && b.mtimeMs === st.mtimeMs && b.ino === st.ino)) {
      // back within the window, unchanged: as if nothing happened
      if (!b) this.#rebaseline(f, st);
      this.#setStatus(f, before === FileStatus.modified ? FileStatus.modified : FileStatus.ok);
      return;
    }
    this.#setStatus(f, FileStatus.modified);
    if (before !== FileStatus.modified) this.#open(f, 'modified', source, { change: { before: b, after: st } });
  }

  /** A deleted or moved file is there again. */
  #observeMissing(f: number, st: FileStat, source: DetectionSource, b: FileStat | null, prev: number, settled: boolean): void {
    const previous: ProblemKind = prev === FileStatus.moved ? 'moved' : 'deleted';
    if (!b || st.size === b.size) {
      this.#unsettled.delete(f);
      this.#resolve(f, st, source, previous);
      return;
    }
    if (!settled && (source === 'watch' || source === 'poll')) {
      // probably a copy in progress: look again once it had time to finish
      if (!this.#unsettled.has(f)) this.#unsettled.set(f, this.#clock.monotonic() + this.#moveWindowMs);
      return;
    }
    this.#unsettled.delete(f);
    this.#setStatus(f, FileStatus.modified);
    this.#open(f, 'modified', source, { previous, change: { before: b, after: st } });
  }

  #observeModified(f: number, st: FileStat, source: DetectionSource, b: FileStat | null): void {
    const record = this.problems.get(f);
    const wasMissing = record?.previous === 'deleted' || record?.previous === 'moved';
    if (b && st.size === b.size && (wasMissing || st.mtimeMs === b.mtimeMs)) this.#resolve(f, st, source, 'modified');
  }

  #resolveFromUnknown(f: number, st: FileStat, source: DetectionSource, previous: ProblemKind): void {
    this.#rebaseline(f, st);
    this.#setStatus(f, FileStatus.ok);
    this.outbox.push({ f, kind: 'restored', source, previous });
  }

  #enterPending(f: number, prev: number, source: DetectionSource, b: FileStat | null): void {
    const now = this.#clock.wall();
    const key = b ? inoKey(b.dev, b.ino) : undefined;
    const window = source === 'watch' || source === 'poll' ? this.#moveWindowMs : 0;
    this.#pending.set(f, { due: this.#clock.monotonic() + window, since: now, prev, source, key });
    if (key !== undefined) this.#pendingByIno.set(key, f);
    this.#setStatus(f, FileStatus.pending);
  }

  /** A file appeared at `rel`: if it is a pending file's dev+inode, that file was moved. */
  pairAppearance(rel: string, st: FileStat): boolean {
    const f = this.#pendingByIno.get(inoKey(st.dev, st.ino));
    if (f === undefined || this.#index.relPath(f) === rel) return false;
    const pending = this.#cancelPending(f)!;
    this.#setStatus(f, FileStatus.moved);
    this.#open(f, 'moved', pending.source, { newPath: rel }, pending.since);
    return true;
  }

  /** The clock's monotonic time of the earliest pending deadline, or undefined. */
  nextDue(): number | undefined {
    let next: number | undefined;
    for (const p of this.#pending.values()) if (next === undefined || p.due < next) next = p.due;
    for (const due of this.#unsettled.values()) if (next === undefined || due < next) next = due;
    return next;
  }

  /** Files that came back with another size and whose settle delay passed: stat them again with `settled`. */
  takeUnsettled(nowPerf: number): number[] {
    const due: number[] = [];
    for (const [f, at] of this.#unsettled) {
      if (at > nowPerf) continue;
      this.#unsettled.delete(f);
      if (this.#index.status[f] === FileStatus.deleted || this.#index.status[f] === FileStatus.moved) due.push(f);
    }
    return due;
  }

  /** Turn every pending file whose move window has passed into a `deleted` alert. */
  flushDue(nowPerf: number): void {
    for (const [f, pending] of this.#pending) {
      if (pending.due > nowPerf) continue;
      this.#cancelPending(f);
      this.#setStatus(f, FileStatus.deleted);
      this.#open(f, 'deleted', pending.source, {}, pending.since);
    }
  }

  /** The share went away: pending files were never alerted, put them back as they were. */
  revertPending(): void {
    for (const [f, pending] of [...this.#pending]) {
      this.#cancelPending(f);
      this.#setStatus(f, pending.prev === FileStatus.modified ? FileStatus.modified : pending.prev === FileStatus.unknown ? FileStatus.unknown : FileStatus.ok);
    }
  }

  /** Accept the current content of a modified file as its new baseline (no event). */
  accept(f: number, st: FileStat): boolean {
    if (this.#index.status[f] !== FileStatus.modified) return false;
    this.problems.delete(f);
    this.#rebaseline(f, st);
    this.#setStatus(f, FileStatus.ok);
    return true;
  }
}

/** Same content as far as stat can tell; inode only compared on the same device. */
export function sameAsBaseline(b: FileStat, st: FileStat): boolean {
  return b.size === st.size && b.mtimeMs === st.mtimeMs && (b.dev !== st.dev || b.ino === st.ino);
}

export { isProblem };
