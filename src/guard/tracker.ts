/**
 * The per-file state machine. Observations (a stat result or "absent") go in;
 * transitions (deleted / moved / modified / restored) come out in an outbox that the
 * guard turns into alerts. A file that disappears is counted as missing at once (the
 * gauge moves within milliseconds) but its alert is held for the move window, so an
 * unlink that pairs with an appearance of the same dev+inode is reported as `moved`.
 *
 * Rules (baseline = stat when first indexed, or persisted):
 *  - modified: size, mtime or inode (same device) differ from the baseline
 *  - restored: a missing file is back with the baseline's size (copies need not keep
 *    mtime/inode); a modified file is back to the baseline's size and mtime
 *  - an open problem found open again after a restart is "still open": no event
 */
import type { Metrics } from '../metrics.js';
import { copyStat } from './fsio.js';
import { FileStatus, type ShareIndex } from './share-index.js';
import type { PersistedProblem } from './state.js';
import type { DetectionSource, FileEventKind, FileStat, ProblemKind } from './types.js';

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
/** Longer task names are cut in the info label (CVAT allows 256 characters). */
const TASK_NAME_MAX = 100;

export class FileTracker {
  readonly #index: ShareIndex;
  readonly #metrics: Metrics;
  readonly #clock: () => number;
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
  /** Task names published in cvat_warden_task_info. */
  readonly #taskNames = new Map<number, string>();
  /** Paths whose persisted problem was found still open (logged once by the guard). */
  readonly stillOpen: string[] = [];
  #problemFiles = 0;
  readonly #onBaseline: (f: number) => void;

  /** `onBaseline(f)`: a slot's baseline was taken or changed (the store journals it). */
  constructor(index: ShareIndex, metrics: Metrics, clock: () => number, moveWindowMs: number, onBaseline: (f: number) => void = () => undefined) {
    this.#index = index;
    this.#metrics = metrics;
    this.#clock = clock;
    this.#moveWindowMs = moveWindowMs;
    this.#onBaseline = onBaseline;
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
    if (n > 0) this.#metrics.taskShareFilesMissing.set({ task_id: String(taskId) }, n);
    else this.#metrics.taskShareFilesMissing.remove({ task_id: String(taskId) });
    this.#publishTaskName(taskId, n > 0 ? this.#index.tasks.get(taskId)?.mapping.taskName : undefined);
  }

  /** cvat_warden_task_info: the name of a task with problems, once it is indexed (bounded like the gauge). */
  #publishTaskName(taskId: number, name: string | undefined): void {
    const clipped = name === undefined ? undefined : name.slice(0, TASK_NAME_MAX);
    const previous = this.#taskNames.get(taskId);
    if (previous === clipped) return;
    if (previous !== undefined) this.#metrics.taskInfo.remove({ task_id: String(taskId), task_name: previous });
    if (clipped === undefined) this.#taskNames.delete(taskId);
    else {
      this.#taskNames.set(taskId, clipped);
      this.#metrics.taskInfo.set({ task_id: String(taskId), task_name: clipped }, 1);
    }
  }

  #publishTotal(): void {
    this.#metrics.shareFilesMissing.set(this.#problemFiles + this.persisted.size);
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
    const record: ProblemRecord = { kind, since: since ?? this.problems.get(f)?.since ?? this.#clock() };
    if (extra.newPath !== undefined) record.newPath = extra.newPath;
    if (kind === 'modified' && extra.previous !== undefined) record.previous = extra.previous;
    this.problems.set(f, record);
    this.outbox.push({ f, kind, source, ...extra });
  }

  #resolve(f: number, st: FileStat, source: DetectionSource, previous: ProblemKind): void {
    const now = performance.now();
    if (this.#settling.size > 10_000) for (const [g, until] of this.#settling) if (until < now) this.#settling.delete(g);
    this.#settling.set(f, now + Math.max(1000, 4 * this.#moveWindowMs));
    this.problems.delete(f);
    this.#rebaseline(f, st);
    this.#setStatus(f, FileStatus.ok);
    this.outbox.push({ f, kind: 'restored', source, previous });
  }

  /**
   * Apply one observation. `st === null` means the path does not exist.
   * `ignoreInode`: after the share came back (remount, restore from a copy) inode numbers
   * say nothing; size + mtime decide and the inode is re-baselined silently.
   */
  observe(f: number, st: FileStat | null, source: DetectionSource, ignoreInode = false, settled = false): void {
    const index = this.#index;
    if (index.names[f] === undefined) return;
    index.gen[f] = index.gen[f]! + 1;
    const prev = index.status[f]!;
    let persisted: PersistedProblem | undefined;
    if (prev === FileStatus.unknown && this.persisted.size > 0) {
      persisted = this.#takePersisted(index.relPath(f));
    }
    const b = index.baseline(f);

    if (st === null) {
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
      return;
    }

    switch (prev) {
      case FileStatus.unknown:
      case FileStatus.ok: {
        if (!b) {
          this.#rebaseline(f, st);
          this.#setStatus(f, FileStatus.ok);
          if (persisted) this.outbox.push({ f, kind: 'restored', source, previous: persisted.kind });
          return;
        }
        if (persisted?.kind === 'modified') {
          if (st.size === b.size && st.mtimeMs === b.mtimeMs) {
            this.#resolveFromUnknown(f, st, source, 'modified');
            return;
          }
          this.problems.set(f, { kind: 'modified', since: persisted.since });
          this.#setStatus(f, FileStatus.modified);
          this.stillOpen.push(persisted.path);
          return;
        }
        if (persisted) {
          if (st.size === b.size) {
            this.#resolveFromUnknown(f, st, source, persisted.kind);
            return;
          }
          this.#setStatus(f, FileStatus.modified);
          this.#open(f, 'modified', source, { previous: persisted.kind, change: { before: b, after: st } }, persisted.since);
          return;
        }
        if (sameAsBaseline(b, st) || (ignoreInode && b.size === st.size && b.mtimeMs === st.mtimeMs)) {
          if (b.dev !== st.dev || b.ino !== st.ino) this.#rebaseline(f, st); // remount: new device numbers
          this.#setStatus(f, FileStatus.ok);
          return;
        }
        const settlingUntil = this.#settling.get(f);
        if (settlingUntil !== undefined) {
          if (performance.now() <= settlingUntil && st.size === b.size) {
            this.#rebaseline(f, st);
            return;
          } // the restoring copy finishing
          this.#settling.delete(f);
        }
        this.#setStatus(f, FileStatus.modified);
        this.#open(f, 'modified', source, { change: { before: b, after: st } });
        return;
      }
      case FileStatus.pending: {
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
        return;
      }
      case FileStatus.deleted:
      case FileStatus.moved: {
        const previous: ProblemKind = prev === FileStatus.moved ? 'moved' : 'deleted';
        if (!b || st.size === b.size) {
          this.#unsettled.delete(f);
          this.#resolve(f, st, source, previous);
          return;
        }
        if (!settled && (source === 'watch' || source === 'poll')) {
          // probably a copy in progress: look again once it had time to finish
          if (!this.#unsettled.has(f)) this.#unsettled.set(f, performance.now() + this.#moveWindowMs);
          return;
        }
        this.#unsettled.delete(f);
        this.#setStatus(f, FileStatus.modified);
        this.#open(f, 'modified', source, { previous, change: { before: b, after: st } });
        return;
      }
      case FileStatus.modified: {
        const record = this.problems.get(f);
        const wasMissing = record?.previous === 'deleted' || record?.previous === 'moved';
        if (b && st.size === b.size && (wasMissing || st.mtimeMs === b.mtimeMs)) this.#resolve(f, st, source, 'modified');
        return;
      }
    }
  }

  #resolveFromUnknown(f: number, st: FileStat, source: DetectionSource, previous: ProblemKind): void {
    this.#rebaseline(f, st);
    this.#setStatus(f, FileStatus.ok);
    this.outbox.push({ f, kind: 'restored', source, previous });
  }

  #enterPending(f: number, prev: number, source: DetectionSource, b: FileStat | null): void {
    const now = this.#clock();
    const key = b ? inoKey(b.dev, b.ino) : undefined;
    const window = source === 'watch' || source === 'poll' ? this.#moveWindowMs : 0;
    this.#pending.set(f, { due: performance.now() + window, since: now, prev, source, key });
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

  /** performance.now() of the earliest pending deadline, or undefined. */
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
