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
import { explainChunkFailure } from './shell/worker-mount.js';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { WatchMode } from '../domain.js';
import { describeError } from '../errors.js';
import { systemClock, type GuardClock } from './core/clock.js';
import { GuardRuntime } from './runtime.js';
import { AlertSink } from './shell/alerts.js';
import { indexIssues, openProblems, problemCounts, type IndexIssues } from './core/guard-queries.js';
import { DegradedScans } from './shell/degraded.js';
import { DirWatchers } from './shell/dir-watchers.js';
import { PathTrust, UnreadableFiles } from './shell/file-trust.js';
import { errorCode, isMountPoint, rootHealthy, withFs, type GuardFs } from './shell/fsio.js';
import {
  definedOnly,
  GUARD_DEFAULTS,
  scanIntervalFor,
  scanRateFor,
  type ResolvedOptions,
  type ShareGuardOptions,
  type ShareGuardStatus,
} from './guard-options.js';
import { GuardStore } from './shell/persistence.js';
import { detectFsType, type FsTypeInfo } from './shell/fstype.js';
import { ShareRootResolver } from './shell/paths.js';
import { scanSlots, type ScanCounts } from './shell/scanner.js';
import { ShareIndex } from './core/share-index.js';
import { applyTaskChanges } from './shell/task-set.js';
import { FileTracker } from './core/tracker.js';
import { trackerGauges } from './shell/tracker-gauges.js';
import type { GuardTask, OpenProblem, ScanResult, ShareGuardEventMap } from './types.js';
import { WatchHandler } from './shell/watch-handler.js';
import { GuardWatching } from './shell/watching.js';

export type { ShareGuardOptions, ShareGuardStatus } from './guard-options.js';

const INDEX_LOG_INTERVAL_MS = 1000;
/** Errors of the root/polling watcher: at most one alert and one recovery scan per this long. */
const ROOT_WATCHER_ALERT_EVERY_MS = 60_000;

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
  #rootMountPoint = false;
  #started: Promise<void> | undefined;
  /** The guard got past start-up's detection once (watches and scans may run). */
  #everStarted = false;
  readonly #rt: GuardRuntime;
  readonly #clock: GuardClock;
  #scanning: Promise<ScanResult> | undefined;
  #rescan = false;
  #lastScan: ScanResult | null = null;
  #firstScanDone = false;
  #flushAt = Infinity;
  readonly #store: GuardStore;
  #indexUpdates = { calls: 0, upserted: 0, removed: 0, newFiles: 0 };
  readonly #degraded: DegradedScans;
  readonly #trust: PathTrust;
  readonly #unreadable: UnreadableFiles;
  #lastRootWatcherAlert = -Infinity;
  #closed: Promise<void> | undefined;

  constructor(options: ShareGuardOptions) {
    super();
    this.#o = {
      ...GUARD_DEFAULTS,
      ...definedOnly(options),
      shareDir: path.resolve(options.shareDir),
      logger: options.logger.child({ component: 'share-guard' }),
    };
    this.#fs = withFs(options.fs);
    this.#clock = systemClock(this.#o.clock);
    this.#rt = new GuardRuntime({ logger: this.#o.logger });
    this.#resolver = new ShareRootResolver(this.#o.shareDir, this.#fs);
    this.#tracker = new FileTracker({
      index: this.#index,
      clock: this.#clock,
      moveWindowMs: this.#o.moveWindowMs,
      gauges: trackerGauges(this.#o.metrics),
      onBaseline: (f) => this.#store.noteBaseline(f),
    });
    this.#store = new GuardStore({
      index: this.#index,
      tracker: this.#tracker,
      stateDir: this.#o.stateDir,
      shareDir: this.#o.shareDir,
      logger: this.#o.logger,
      clock: this.#o.clock,
      onDamage: (damage) => {
        for (const d of damage) this.#o.metrics.stateRecordsDamaged.inc({ store: d.store }, d.recordsSkipped);
      },
    });
    this.#sink = new AlertSink({
      index: this.#index,
      metrics: this.#o.metrics,
      logger: this.#o.logger,
      emitter: this,
      clock: this.#o.clock,
      lastWarmedAt: this.#o.lastWarmedAt,
    });
    this.#trust = new PathTrust({
      index: this.#index,
      tracker: this.#tracker,
      resolver: this.#resolver,
      sink: this.#sink,
      logger: this.#o.logger,
      clock: this.#o.clock,
    });
    this.#unreadable = new UnreadableFiles(this.#index, this.#o.metrics, this.#o.logger);
    this.#dirs = new DirWatchers({
      fs: this.#fs,
      abs: (rel) => this.#resolver.abs(rel),
      persistent: this.#o.persistent,
      debounceMs: this.#o.debounceMs,
      onBatch: (batches) =>
        void this.#enqueue(async () => {
          if (this.#available) await this.#handler.handle(batches);
        }),
      onError: (dir, error) => {
        if (this.#available && !this.#closing) this.#watching.watchDied(dir, error);
      },
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
      onDegraded: (dir, error, alert, lostEvents) => this.#degraded.onDegraded(dir, error, alert, lostEvents),
      retryBaseMs: this.#o.watchRetryBaseMs,
      retryMaxMs: this.#o.watchRetryMaxMs,
    });
    this.#degraded = new DegradedScans({
      index: this.#index,
      watching: this.#watching,
      sink: this.#sink,
      metrics: this.#o.metrics,
      logger: this.#o.logger,
      clock: this.#o.clock,
      intervalMs: this.#o.degradedScanIntervalMs,
      enqueue: (job) => this.#enqueue(job),
      scan: async (ids) => this.#scanIds(await this.#trust.trustedSlots(ids, 'scan'), 'scan'),
      flushPending: () => this.#flushPending(),
      active: () => this.#everStarted && this.#available && !this.#closing,
      onRound: () => this.#unreadable.log(),
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
      dirTrusted: (rel) => this.#trust.dirTrusted(rel),
    });
    this.#o.metrics.shareAvailable.set(1);
    this.#o.metrics.shareFilesExpected.set(0);
    this.#o.metrics.shareFilesMissing.set(0);
  }

  /** Serialise event handling, flushes and index changes (runtime.ts); transitions are published after each step. */
  #enqueue(job: () => Promise<void>, what = 'step'): Promise<void> {
    return this.#rt.enqueue(what, async () => {
      await job();
      this.#drain();
    });
  }

  /** The share is there as far as the guard knows (also before start). */
  get #available(): boolean {
    return this.#rt.state !== 'unavailable';
  }

  get #closing(): boolean {
    return this.#rt.closing;
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
    await this.#store.load(); // persisted baselines must be there before the first file is indexed
    const { created, emptied } = await applyTaskChanges(
      {
        index: this.#index,
        tracker: this.#tracker,
        fs: this.#fs,
        resolver: this.#resolver,
        skipped: this.#skipped,
        logger: this.#o.logger,
        includeUnknownStorage: this.#o.includeUnknownStorage,
        onForget: (f) => this.#unreadable.note(f, undefined),
        ignoredPrefixes: this.#o.ignoredPrefixes,
      },
      remove,
      upsert,
    );
    this.#store.claim(created);
    this.#handler.invalidate();
    this.#o.metrics.shareFilesExpected.set(this.#index.liveFiles);
    for (const dir of emptied) {
      if (this.#index.dirId(dir.rel) !== undefined) continue;
      this.#dirs.unwatch(dir.rel, 'files');
      this.#watching.forget(dir.rel);
      this.#handler.forgetGone(dir.rel);
    }
    if (this.#everStarted && this.#available) {
      // Only the directories this change added: feeding 10,000 tasks one by one must not walk every directory 10,000 times.
      const newDirs = new Set<string>();
      for (const f of created) newDirs.add(this.#index.dirs[this.#index.dirOf[f]!]!.rel);
      await this.#setupWatching(newDirs);
      await this.#scanIds(Int32Array.from(created), 'startup');
      await this.#flushPending();
    }
    this.#o.metrics.shareWatchedDirectories.set(this.#dirs.size);
    this.#noteIndexUpdate(upsert.length, remove.length, created.length);
  }

  /** One info line per burst of task changes (the service feeds tasks one at a time), not one per task. */
  #noteIndexUpdate(upserted: number, removed: number, newFiles: number): void {
    const u = this.#indexUpdates;
    u.calls++;
    u.upserted += upserted;
    u.removed += removed;
    u.newFiles += newFiles;
    if (this.#rt.has('index-log') || this.#closing) return;
    this.#rt.after('index-log', INDEX_LOG_INTERVAL_MS, () => this.#logIndexUpdates());
  }

  #logIndexUpdates(): void {
    const u = this.#indexUpdates;
    if (u.calls === 0) return;
    this.#o.logger.info(
      {
        tasks: this.#index.tasks.size,
        skipped: this.#skipped.size,
        files: this.#index.liveFiles,
        dirs: this.#index.dirCount,
        tasksUpdated: u.upserted,
        tasksRemoved: u.removed,
        newFiles: u.newFiles,
        batches: u.calls,
      },
      'share index updated',
    );
    this.#indexUpdates = { calls: 0, upserted: 0, removed: 0, newFiles: 0 };
    this.#unreadable.log();
  }

  // ---------------------------------------------------------------- lifecycle

  /** Detect the filesystem, watch, run the start-up scan. Resolves when ready. */
  start(): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('ShareGuard is closed'));
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    this.#rt.setState('starting');
    await this.#store.load();
    const realRoot = await this.#resolver.realRoot();
    this.#fsInfo = await detectFsType(realRoot, {
      override: this.#o.fsTypeOverride,
      ...(this.#o.mountinfoPath ? { mountinfoPath: this.#o.mountinfoPath } : {}),
    });
    this.#watching.setMode(this.#decideMode());
    if (this.#fsInfo.network) {
      this.#o.logger.warn(
        { fsType: this.#fsInfo.fsType, mountPoint: this.#fsInfo.mountPoint, watchMode: this.#watching.mode, scanIntervalMs: this.#scanInterval() },
        `share is on a network filesystem (${this.#fsInfo.fsType}): inotify cannot see changes made by other clients; relying on ${this.#watching.mode === 'polling' ? 'polling and ' : ''}reconcile scans`,
      );
    }
    this.#rootMountPoint = isMountPoint(this.#fs, this.#o.shareDir);
    this.#everStarted = true;
    if (this.#rt.state === 'starting') this.#rt.setState('watching');
    if (!(await this.#rootOk())) {
      await this.#shareUnavailable('share root missing or unreadable at start');
    } else {
      await this.#enqueue(() => this.#setupWatching());
      await this.scan('startup');
    }
    this.#rt.every('scheduled-scan', this.#scanInterval(), () => this.#rt.spawn('scheduled scan', this.scan('scheduled')));
    this.#rt.every('root-check', this.#o.rootCheckIntervalMs, () => this.#rt.spawn('root check', this.#checkRoot()));
    this.#degraded.start();
    this.#o.logger.info(
      {
        shareDir: this.#o.shareDir,
        fsType: this.#fsInfo.fsType,
        watchMode: this.#watching.effectiveMode,
        files: this.#index.liveFiles,
        watchedDirs: this.#dirs.size,
      },
      'share guard ready',
    );
    this.emit('ready');
  }

  #scanInterval(): number {
    return scanIntervalFor(this.#o.scanIntervalMs, this.#fsInfo, this.#watching.mode);
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
    if (this.#closing || !this.#available || !this.#everStarted) return;
    if (!(await this.#rootOk())) await this.#enqueue(() => this.#shareUnavailable('share root vanished or was unmounted'));
  }

  async #setupWatching(newDirs?: Iterable<string>): Promise<void> {
    if (this.#available && !this.#closing) await this.#watching.setup(newDirs);
  }

  /** The root or polling watcher failed: events may have been lost. Alert and reconcile, at most once a minute. */
  #watcherError(dir: string | undefined, error: unknown): void {
    if (this.#closing) return;
    const now = this.#clock.monotonic();
    if (now - this.#lastRootWatcherAlert < ROOT_WATCHER_ALERT_EVERY_MS) {
      this.#o.logger.debug({ dir, code: errorCode(error) }, 'share watcher error again (already reported)');
      return;
    }
    this.#lastRootWatcherAlert = now;
    this.#sink.watcherError({
      kind: 'watcher_error',
      code: errorCode(error),
      message: describeError(error),
      at: this.#o.clock(),
      ...(dir !== undefined ? { dir } : {}),
    });
    this.#rt.spawn('watcher-error scan', this.scan('watcher_error'));
  }

  // ---------------------------------------------------------------- share availability

  async #shareUnavailable(reason: string): Promise<void> {
    if (!this.#available || this.#closing) return;
    this.#rt.setState('unavailable');
    this.#o.metrics.shareAvailable.set(0);
    this.#tracker.revertPending();
    this.#handler.clear();
    await this.#watching.stopAll();
    this.#sink.share({ kind: 'share_unavailable', shareDir: this.#o.shareDir, reason, at: this.#o.clock(), filesExpected: this.#index.liveFiles });
    this.#store.scheduleSave(this.#available);
    this.#pollRootEvery();
  }

  #pollRootEvery(): void {
    this.#rt.every('root-poll', this.#o.rootPollMs, () => this.#rt.spawn('root poll', this.#pollRoot()));
  }

  async #pollRoot(): Promise<void> {
    if (this.#closing || this.#available || !(await this.#rootOk())) return;
    this.#rt.cancel('root-poll');
    this.#rt.after(
      'root-settle',
      this.#o.rootSettleMs,
      () =>
        void this.#enqueue(async () => {
          if (!(await this.#rootOk())) {
            this.#pollRootEvery();
            return;
          }
          this.#rt.setState(this.#everStarted ? 'watching' : 'idle');
          this.#o.metrics.shareAvailable.set(1);
          this.#resolver.reset();
          this.#sink.share({
            kind: 'share_restored',
            shareDir: this.#o.shareDir,
            reason: 'share root is back',
            at: this.#o.clock(),
            filesExpected: this.#index.liveFiles,
          });
          await this.#setupWatching();
          this.#rt.spawn('share-restored scan', this.scan('share_restored'));
        }, 'share restored'),
    );
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
          this.#rt.spawn('requested scan', this.scan('requested'));
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
    const started = this.#clock.monotonic();
    const result = this.#emptyScan(reason, undefined);
    delete result.skipped;
    const source = this.#firstScanDone ? 'scan' : 'startup';
    const counts = await this.#scanIds(await this.#trust.trustedSlots(this.#index.liveSlotsByDir(), source), source, reason === 'share_restored');
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the share can go away during the awaited scan above; TS narrowing does not see that
    if (!this.#available) return this.#emptyScan(reason, 'share_unavailable');
    await this.#enqueue(async () => {
      await this.#flushPending();
      await this.#handler.recheckGone();
    });
    Object.assign(result, counts);
    result.durationMs = this.#clock.monotonic() - started;
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
    this.#unreadable.log();
    if (reason === 'scheduled') this.#store.pruneUnclaimed();
    this.#store.flushSoon();
    this.#store.scheduleSave(this.#available);
    this.#o.logger.info(
      { reason, files: result.filesChecked, missing: result.missing, modified: result.modified, errors: result.errors, ms: Math.round(result.durationMs) },
      'share reconcile scan done',
    );
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
      ratePerSecond: scanRateFor(this.#o.scanRatePerSecond, network),
      stopped: () => this.#closing || !this.#available,
      source,
      ignoreInode,
      drain: () => this.#drain(),
      logger: this.#o.logger,
      onReadable: (f, error) => this.#unreadable.note(f, error),
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
    this.#flushAt = due;
    this.#rt.after('flush', due - this.#clock.monotonic(), () => {
      this.#flushAt = Infinity;
      void this.#enqueue(() => this.#flushPending(), 'flush');
    });
  }

  /**
   * Emit `deleted` for vanished files whose move window passed — unless the whole share
   * went away — and decide files that came back with another size once they settled.
   */
  async #flushPending(): Promise<void> {
    const due = this.#tracker.nextDue();
    if (due === undefined || due > this.#clock.monotonic()) return;
    if (!this.#available) {
      this.#tracker.revertPending();
      return;
    }
    if (!(await this.#rootOk())) return this.#shareUnavailable('share root vanished');
    this.#tracker.flushDue(this.#clock.monotonic());
    const source = this.#watching.mode === 'polling' ? 'poll' : 'watch';
    for (const f of this.#tracker.takeUnsettled(this.#clock.monotonic())) {
      const token = this.#index.gen[f];
      const st = await this.#fs.stat(this.#index.absPath(f, this.#resolver.root)).catch(() => undefined);
      if (st !== undefined && this.#index.gen[f] === token) this.#tracker.observe(f, { stat: st, source, mode: 'settled' });
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
        this.#store.flushSoon();
      }
    });
    return accepted;
  }

  get fsType(): FsTypeInfo {
    return { ...this.#fsInfo };
  }

  /** The mode in effect: `degraded` while some directories have no watch. */
  get watchMode(): WatchMode {
    return this.#watching.effectiveMode;
  }

  /**
   * Why a chunk build of a guarded task failed with CVAT's 500, when the share here can
   * tell (worker-mount.ts): the worker's missing mount when every source file is readable
   * here, or the file that is missing. Undefined when the task is not guarded.
   */
  explainChunkFailure(failure: { taskId: number; jobId: number; chunk: number | undefined }): Promise<string | undefined> {
    return explainChunkFailure(this.#index, (rel) => this.#resolver.abs(rel), failure);
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
      watchMode: this.#watching.effectiveMode,
      scanIntervalMs: this.#scanInterval(),
      degradedDirectories: this.#watching.failedDirs(100).dirs,
      degradedDirectoryCount: this.#watching.degradedCount,
      unreadable: this.#unreadable.list(100),
      shareAvailable: this.#available,
      started: this.#everStarted,
      state: this.#rt.state,
      stepErrors: this.#rt.errors,
      ...problemCounts(this.#index, this.#tracker, this.#skipped),
      watchedDirectories: this.#dirs.size,
      goneDirectories: this.#handler.goneDirs().slice(0, 100),
      lastScan: this.#lastScan,
      stateDamage: this.#store.damage,
    };
  }

  /** Stop every watcher and timer, write the state. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const available = this.#available;
      let degraded: Promise<void> = Promise.resolve();
      // The runtime clears every timer and waits for the queue and background jobs.
      await this.#rt.close(async () => {
        this.#logIndexUpdates();
        degraded = this.#degraded.close(); // timers off now; a round in progress stops at its next stat
        await this.#watching.stopAll();
        this.#dirs.close();
      });
      await this.#scanning?.catch(() => undefined); // its failure was logged by whoever awaited it
      await degraded;
      await this.#store.close({ started: this.#everStarted, available });
    })();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
