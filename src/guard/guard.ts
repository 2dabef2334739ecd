/**
 * ShareGuard: keeps the share files of cache-dependent CVAT tasks under watch and
 * raises an alert the moment one is deleted, moved or changed — a day before the
 * chunk cache expires and every frame of the job starts answering HTTP 500.
 *
 * Baseline + reconcile + realtime, like every serious FIM tool: the persisted
 * baseline and the stat scans (start-up, schedule, after any watcher error) are the
 * source of truth; directory watches (local disks) or polling (small network shares)
 * only lower the latency.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { WatchMode } from '../domain.js';
import { describeError } from '../errors.js';
import { AlertSink } from './alerts.js';
import { indexIssues, openProblems, problemCounts, type IndexIssues } from './guard-queries.js';
import { DirWatchers } from './dir-watchers.js';
import { errorCode, isMountPoint, rootHealthy, withFs, type GuardFs } from './fsio.js';
import { definedOnly, GUARD_DEFAULTS, type ResolvedOptions, type ShareGuardOptions, type ShareGuardStatus } from './guard-options.js';
import { GuardStore } from './persistence.js';
import { detectFsType, type FsTypeInfo } from './fstype.js';
import { ShareRootResolver } from './paths.js';
import { scanSlots, type ScanCounts } from './scanner.js';
import { ShareIndex } from './share-index.js';
import { applyTaskChanges } from './task-set.js';
import { FileTracker } from './tracker.js';
import type { GuardTask, OpenProblem, ScanResult, ShareGuardEventMap } from './types.js';
import { WatchHandler } from './watch-handler.js';
import { GuardWatching } from './watching.js';

export type { ShareGuardOptions, ShareGuardStatus } from './guard-options.js';

export class ShareGuard extends EventEmitter<ShareGuardEventMap> {
  readonly #o: ResolvedOptions;
  readonly #fs: GuardFs;
  readonly #resolver: ShareRootResolver;
  readonly #index = new ShareIndex();
  readonly #tracker: FileTracker;
  readonly #sink: AlertSink;
  readonly #dirs: DirWatchers;
  readonly #handler: WatchHandler;
  readonly #watching: GuardWatching;
  readonly #skipped = new Map<number, string>();
  #fsInfo: FsTypeInfo = { fsType: 'unknown', mountPoint: '/', source: '', network: false, detectedBy: 'unknown' };
  #available = true;
  #rootMountPoint = false;
  #started: Promise<void> | undefined;
  #isStarted = false;
  #closing: Promise<void> | undefined;
  #work: Promise<void> = Promise.resolve();
  #scanning: Promise<ScanResult> | undefined;
  #rescan = false;
  #lastScan: ScanResult | null = null;
  #firstScanDone = false;
  #timers = new Set<NodeJS.Timeout>();
  #flushTimer: NodeJS.Timeout | undefined;
  #flushAt = Infinity;
  #rootPoll: NodeJS.Timeout | undefined;
  readonly #store: GuardStore;

  constructor(options: ShareGuardOptions) {
    super();
    this.#o = {
      ...GUARD_DEFAULTS,
      ...definedOnly(options),
      shareDir: path.resolve(options.shareDir),
      logger: options.logger.child({ component: 'share-guard' }),
    };
    this.#fs = withFs(options.fs);
    this.#resolver = new ShareRootResolver(this.#o.shareDir, this.#fs);
    this.#tracker = new FileTracker(this.#index, this.#o.metrics, this.#o.clock, this.#o.moveWindowMs);
    this.#store = new GuardStore({ index: this.#index, tracker: this.#tracker, stateDir: this.#o.stateDir, shareDir: this.#o.shareDir, logger: this.#o.logger, clock: this.#o.clock });
    this.#sink = new AlertSink({ index: this.#index, metrics: this.#o.metrics, logger: this.#o.logger, emitter: this, clock: this.#o.clock, lastWarmedAt: this.#o.lastWarmedAt });
    this.#dirs = new DirWatchers({
      fs: this.#fs,
      abs: (rel) => this.#resolver.abs(rel),
      persistent: this.#o.persistent,
      debounceMs: this.#o.debounceMs,
      onBatch: (batches) => void this.#enqueue(async () => {
        if (this.#available) await this.#handler.handle(batches);
      }),
      onError: (dir, error) => this.#watcherError(dir, error),
    });
    this.#watching = new GuardWatching({
      index: this.#index,
      fs: this.#fs,
      resolver: this.#resolver,
      dirs: this.#dirs,
      handler: () => this.#handler,
      metrics: this.#o.metrics,
      logger: this.#o.logger,
      forced: this.#o.watchMode !== 'auto',
      pollingMaxFiles: this.#o.pollingMaxFiles,
      pollIntervalMs: this.#o.pollIntervalMs,
      enqueue: (job) => this.#enqueue(job),
      checkRoot: () => void this.#checkRoot(),
      onError: (dir, error) => this.#watcherError(dir, error),
    });
    this.#handler = new WatchHandler({
      index: this.#index,
      tracker: this.#tracker,
      fs: this.#fs,
      resolver: this.#resolver,
      dirs: this.#dirs,
      moveWindowMs: this.#o.moveWindowMs,
      source: () => (this.#watching.mode === 'polling' ? 'poll' : 'watch'),
      syncStat: () => this.#watching.mode === 'inotify' && !this.#fsInfo.network,
      rootOk: () => this.#rootOk(),
      available: () => this.#available && !this.#closing,
      shareUnavailable: (reason) => this.#shareUnavailable(reason),
      watchFilesDir: (rel) => this.#watching.watchFilesDir(rel),
      dirInode: (rel) => this.#watching.dirInode(rel),
      onWatchError: (error) => this.#watcherError(undefined, error),
    });
    this.#o.metrics.shareAvailable.set(1);
    this.#o.metrics.shareFilesExpected.set(0);
    this.#o.metrics.shareFilesMissing.set(0);
  }

  /** Serialise event handling, flushes and index changes. */
  #enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.#work.then(async () => {
      if (this.#closing) return;
      await job();
      this.#drain();
    });
    this.#work = run.catch((error: unknown) => this.#o.logger.error({ err: describeError(error) }, 'share guard step failed'));
    return this.#work;
  }

  #timer(ms: number, fn: () => void, repeat: boolean): NodeJS.Timeout {
    const t = repeat ? setInterval(fn, ms) : setTimeout(() => (this.#timers.delete(t), fn()), ms);
    t.unref();
    this.#timers.add(t);
    return t;
  }

  // ---------------------------------------------------------------- tasks

  /** Make the guarded set exactly `tasks` (adds, removes, re-indexes changed tasks; watches follow). */
  setTasks(tasks: readonly GuardTask[]): Promise<void> {
    const wanted = new Set(tasks.map((t) => t.taskId));
    return this.#enqueue(async () => {
      const gone = [...this.#index.tasks.keys(), ...this.#skipped.keys()].filter((id) => !wanted.has(id));
      await this.#applyTasks(gone, tasks);
    });
  }

  /**
   * Add or refresh some tasks, leaving the others alone: lets a client feed a huge
   * installation in batches instead of holding every task's frame list at once.
   */
  upsertTasks(tasks: readonly GuardTask[]): Promise<void> {
    return this.#enqueue(() => this.#applyTasks([], tasks));
  }

  /** Stop guarding these tasks (deleted in CVAT, moved off the share…). */
  removeTasks(taskIds: readonly number[]): Promise<void> {
    return this.#enqueue(() => this.#applyTasks(taskIds, []));
  }

  async #applyTasks(remove: readonly number[], upsert: readonly GuardTask[]): Promise<void> {
    const { created, emptied } = await applyTaskChanges(
      { index: this.#index, tracker: this.#tracker, fs: this.#fs, resolver: this.#resolver, skipped: this.#skipped, logger: this.#o.logger, includeUnknownStorage: this.#o.includeUnknownStorage, ignoredPrefixes: this.#o.ignoredPrefixes },
      remove,
      upsert,
    );
    this.#handler.invalidate();
    this.#o.metrics.shareFilesExpected.set(this.#index.liveFiles);
    for (const dir of emptied) {
      if (this.#index.dirId(dir.rel) !== undefined) continue;
      this.#dirs.unwatch(dir.rel, 'files');
      this.#handler.forgetGone(dir.rel);
    }
    if (this.#isStarted && this.#available) {
      await this.#setupWatching();
      await this.#scanIds(Int32Array.from(created), 'startup');
      await this.#flushPending();
    }
    this.#o.metrics.shareWatchedDirectories.set(this.#dirs.size);
    this.#o.logger.info(
      { tasks: this.#index.tasks.size, skipped: this.#skipped.size, files: this.#index.liveFiles, dirs: this.#index.dirCount, newFiles: created.length, removed: remove.length },
      'share index updated',
    );
  }

  // ---------------------------------------------------------------- lifecycle

  /** Detect the filesystem, watch, run the start-up scan. Resolves when ready. */
  start(): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('ShareGuard is closed'));
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    try {
      await this.#store.loadState();
    } catch (error) {
      this.#o.logger.warn({ err: describeError(error), stateDir: this.#o.stateDir }, 'guard state unreadable; starting without it');
    }
    const realRoot = await this.#resolver.realRoot();
    this.#fsInfo = await detectFsType(realRoot, { override: this.#o.fsTypeOverride, ...(this.#o.mountinfoPath ? { mountinfoPath: this.#o.mountinfoPath } : {}) });
    this.#watching.setMode(this.#decideMode());
    if (this.#fsInfo.network) {
      this.#o.logger.warn(
        { fsType: this.#fsInfo.fsType, mountPoint: this.#fsInfo.mountPoint, watchMode: this.#watching.mode, scanIntervalMs: this.#scanInterval() },
        `share is on a network filesystem (${this.#fsInfo.fsType}): inotify cannot see changes made by other clients; relying on ${this.#watching.mode === 'polling' ? 'polling and ' : ''}reconcile scans`,
      );
    }
    this.#rootMountPoint = isMountPoint(this.#fs, this.#o.shareDir);
    this.#isStarted = true;
    if (!(await this.#rootOk())) {
      await this.#shareUnavailable('share root missing or unreadable at start');
    } else {
      await this.#enqueue(() => this.#setupWatching());
      await this.scan('startup');
    }
    this.#timer(this.#scanInterval(), () => void this.scan('scheduled').catch(() => undefined), true);
    this.#timer(this.#o.rootCheckIntervalMs, () => void this.#checkRoot(), true);
    this.#o.logger.info({ shareDir: this.#o.shareDir, fsType: this.#fsInfo.fsType, watchMode: this.#watching.mode, files: this.#index.liveFiles, watchedDirs: this.#dirs.size }, 'share guard ready');
    this.emit('ready');
  }

  #scanInterval(): number {
    return this.#o.scanIntervalMs ?? (this.#watching.mode === 'inotify' ? 3_600_000 : 600_000);
  }

  #decideMode(): WatchMode {
    if (this.#o.watchMode !== 'auto') return this.#o.watchMode;
    if (!this.#fsInfo.network) return 'inotify';
    return this.#index.liveFiles <= this.#o.pollingMaxFiles ? 'polling' : 'scan_only';
  }

  /** Root exists, is a readable directory and (if it was a mount point) is still mounted. */
  #rootOk(): Promise<boolean> {
    return rootHealthy(this.#fs, this.#o.shareDir, this.#rootMountPoint);
  }

  async #checkRoot(): Promise<void> {
    if (this.#closing || !this.#available || !this.#isStarted) return;
    if (!(await this.#rootOk())) await this.#enqueue(() => this.#shareUnavailable('share root vanished or was unmounted'));
  }

  async #setupWatching(): Promise<void> {
    if (this.#available && !this.#closing) await this.#watching.setup();
  }

  #watcherError(dir: string | undefined, error: unknown): void {
    if (this.#closing) return;
    const alert = {
      kind: 'watcher_error' as const,
      code: errorCode(error),
      message: describeError(error),
      at: this.#o.clock(),
      ...(dir !== undefined ? { dir } : {}),
    };
    this.#sink.watcherError(alert);
    this.#o.metrics.shareWatchedDirectories.set(this.#dirs.size);
    // Events may have been lost: reconcile now, and try the watch again a bit later.
    void this.scan('watcher_error').catch(() => undefined);
    if (dir !== undefined && alert.code !== 'ENOSPC' && alert.code !== 'EMFILE') {
      this.#timer(1000, () => void this.#enqueue(async () => {
        if (this.#available && this.#index.dirId(dir) !== undefined && !this.#handler.gone.has(dir)) this.#watching.watchFilesDir(dir);
      }), false);
    }
  }

  // ---------------------------------------------------------------- share availability

  async #shareUnavailable(reason: string): Promise<void> {
    if (!this.#available || this.#closing) return;
    this.#available = false;
    this.#o.metrics.shareAvailable.set(0);
    this.#tracker.revertPending();
    this.#handler.clear();
    await this.#watching.stopAll();
    this.#sink.share({ kind: 'share_unavailable', shareDir: this.#o.shareDir, reason, at: this.#o.clock(), filesExpected: this.#index.liveFiles });
    this.#store.scheduleSave(this.#available);
    this.#rootPoll = setInterval(() => void this.#pollRoot(), this.#o.rootPollMs);
    this.#rootPoll.unref();
  }

  async #pollRoot(): Promise<void> {
    if (this.#closing || this.#available || !(await this.#rootOk())) return;
    clearInterval(this.#rootPoll);
    this.#rootPoll = undefined;
    this.#timer(this.#o.rootSettleMs, () => void this.#enqueue(async () => {
      if (!(await this.#rootOk())) {
        this.#rootPoll = setInterval(() => void this.#pollRoot(), this.#o.rootPollMs);
        this.#rootPoll.unref();
        return;
      }
      this.#available = true;
      this.#o.metrics.shareAvailable.set(1);
      this.#resolver.reset();
      this.#sink.share({ kind: 'share_restored', shareDir: this.#o.shareDir, reason: 'share root is back', at: this.#o.clock(), filesExpected: this.#index.liveFiles });
      await this.#setupWatching();
      void this.scan('share_restored').catch(() => undefined);
    }), false);
  }

  // ---------------------------------------------------------------- scans

  /** One full reconcile pass over the index (coalesced with a scan already running). */
  scan(reason = 'manual'): Promise<ScanResult> {
    if (this.#closing) return Promise.resolve(this.#emptyScan(reason, 'closed'));
    if (this.#scanning) {
      this.#rescan = true;
      return this.#scanning;
    }
    const run = (async () => {
      try {
        return await this.#scanOnce(reason);
      } finally {
        this.#scanning = undefined;
        if (this.#rescan && !this.#closing) {
          this.#rescan = false;
          void this.scan('requested').catch(() => undefined);
        }
      }
    })();
    this.#scanning = run;
    return run;
  }

  #emptyScan(reason: string, skipped: ScanResult['skipped']): ScanResult {
    return { skipped, startedAt: this.#o.clock(), durationMs: 0, filesChecked: 0, present: 0, missing: 0, modified: 0, errors: 0, alerts: 0, reason };
  }

  async #scanOnce(reason: string): Promise<ScanResult> {
    if (!this.#available) return this.#emptyScan(reason, 'share_unavailable');
    if (!(await this.#rootOk())) {
      await this.#enqueue(() => this.#shareUnavailable('share root missing or unreadable at scan'));
      return this.#emptyScan(reason, 'share_unavailable');
    }
    await this.#store.loadBaseline();
    const started = performance.now();
    const result = this.#emptyScan(reason, undefined);
    delete result.skipped;
    const counts = await this.#scanIds(this.#index.liveSlotsByDir(), this.#firstScanDone ? 'scan' : 'startup', reason === 'share_restored');
    if (!this.#available) return this.#emptyScan(reason, 'share_unavailable');
    await this.#enqueue(async () => {
      await this.#flushPending();
      await this.#handler.recheckGone();
    });
    Object.assign(result, counts);
    result.durationMs = performance.now() - started;
    this.#o.metrics.shareScanDuration.observe(result.durationMs / 1000);
    this.#o.metrics.shareLastScanDuration.set(result.durationMs / 1000);
    this.#o.metrics.shareLastScanTimestamp.set(this.#o.clock() / 1000);
    // Every indexed file was observed: a persisted problem still unclaimed is for a file
    // no task expects any more (task deleted while the warden was down).
    if (this.#index.liveFiles > 0) this.#tracker.dropUnseenPersisted();
    if (!this.#firstScanDone) {
      this.#firstScanDone = true;
      this.#logStillOpen();
    }
    this.#lastScan = result;
    this.#store.saveBaseline();
    this.#store.scheduleSave(this.#available);
    this.#o.logger.info({ reason, files: result.filesChecked, missing: result.missing, modified: result.modified, errors: result.errors, ms: Math.round(result.durationMs) }, 'share reconcile scan done');
    this.emit('scan', result);
    return result;
  }

  /** Stat the given slots and feed the tracker (alerts are published as they come). */
  #scanIds(ids: Int32Array, source: 'scan' | 'startup', ignoreInode = false): Promise<ScanCounts> {
    const network = this.#fsInfo.network;
    return scanSlots(ids, {
      index: this.#index,
      tracker: this.#tracker,
      fs: this.#fs,
      root: this.#resolver.root,
      sync: !network,
      concurrency: this.#o.scanConcurrency,
      ratePerSecond: this.#o.scanRatePerSecond ?? (network ? 2000 : Infinity),
      stopped: () => !!this.#closing || !this.#available,
      source,
      ignoreInode,
      drain: () => this.#drain(),
      logger: this.#o.logger,
    });
  }

  #logStillOpen(): void {
    const still = this.#tracker.stillOpen.splice(0);
    if (still.length === 0) return;
    this.#o.logger.warn({ count: still.length, paths: still.slice(0, 10) }, `${still.length} share problem(s) from before the restart still open`);
  }

  // ---------------------------------------------------------------- alerts & flushing

  /** Publish tracker transitions; returns how many alerts went out. */
  #drain(): number {
    const transitions = this.#tracker.outbox.splice(0);
    const n = this.#sink.publish(transitions);
    if (n) this.#store.scheduleSave(this.#available);
    this.#scheduleFlush();
    return n;
  }

  #scheduleFlush(): void {
    const due = this.#tracker.nextDue();
    if (due === undefined || due >= this.#flushAt) return;
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushAt = due;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flushAt = Infinity;
      void this.#enqueue(() => this.#flushPending());
    }, Math.max(0, due - performance.now()));
    this.#flushTimer.unref();
  }

  /**
   * Emit `deleted` for vanished files whose move window passed — unless the whole share
   * went away — and decide files that came back with another size once they settled.
   */
  async #flushPending(): Promise<void> {
    const due = this.#tracker.nextDue();
    if (due === undefined || due > performance.now()) return;
    if (!this.#available) return this.#tracker.revertPending();
    if (!(await this.#rootOk())) return this.#shareUnavailable('share root vanished');
    this.#tracker.flushDue(performance.now());
    const source = this.#watching.mode === 'polling' ? 'poll' : 'watch';
    for (const f of this.#tracker.takeUnsettled(performance.now())) {
      const token = this.#index.gen[f];
      const st = await this.#fs.stat(this.#index.absPath(f, this.#resolver.root)).catch(() => undefined);
      if (st !== undefined && this.#index.gen[f] === token) this.#tracker.observe(f, st, source, false, true);
    }
  }

  // ---------------------------------------------------------------- queries

  /** Open problems (deleted / moved / modified) with their tasks, jobs and chunks. */
  problems(): OpenProblem[] {
    return openProblems(this.#index, this.#tracker, this.#o.lastWarmedAt);
  }

  /** Re-baseline modified files (all, or the given share-relative paths): the change was intended. */
  async acceptChanges(paths?: readonly string[]): Promise<number> {
    let accepted = 0;
    await this.#enqueue(async () => {
      const ids = paths ? paths.map((p) => this.#index.lookup(p)).filter((f): f is number => f !== undefined) : [...this.#tracker.problems.keys()];
      for (const f of ids) {
        const st = await this.#fs.stat(this.#resolver.abs(this.#index.relPath(f))).catch(() => null);
        if (st && this.#tracker.accept(f, st)) accepted++;
      }
      if (accepted) {
        this.#o.logger.info({ accepted }, 'modified share files accepted as the new baseline');
        this.#store.scheduleSave(this.#available);
        this.#store.saveBaseline();
      }
    });
    return accepted;
  }

  get fsType(): FsTypeInfo {
    return { ...this.#fsInfo };
  }

  get watchMode(): WatchMode {
    return this.#watching.mode;
  }

  /** Rejected names and index warnings of every guarded task, and tasks not guarded. */
  indexIssues(): IndexIssues {
    return indexIssues(this.#index, this.#skipped);
  }

  /** JSON for /status. */
  status(): ShareGuardStatus {
    return {
      shareDir: this.#o.shareDir,
      fsType: this.#fsInfo.fsType,
      network: this.#fsInfo.network,
      watchMode: this.#watching.mode,
      shareAvailable: this.#available,
      started: this.#isStarted,
      ...problemCounts(this.#index, this.#tracker, this.#skipped),
      watchedDirectories: this.#dirs.size,
      goneDirectories: this.#handler.goneDirs().slice(0, 100),
      lastScan: this.#lastScan,
    };
  }

  /** Stop every watcher and timer, write the state. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const t of this.#timers) clearTimeout(t);
      this.#timers.clear();
      if (this.#flushTimer) clearTimeout(this.#flushTimer);
      if (this.#rootPoll) clearInterval(this.#rootPoll);
      await this.#watching.stopAll();
      this.#dirs.close();
      await this.#work.catch(() => undefined);
      await this.#scanning?.catch(() => undefined);
      await this.#store.close(this.#isStarted, this.#available);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
