/**
 * ShareGuard: keeps the share files of cache-dependent CVAT tasks under watch and
 * raises an alert the moment one is deleted, moved or changed — a day before the
 * chunk cache expires and every frame of the job starts answering HTTP 500.
 *
 * Baseline + reconcile + realtime, like every serious FIM tool: the persisted
 * baseline and the scans (start-up, schedule, after any watcher error) are the
 * source of truth; live observation only lowers the latency.
 *
 * Layout: the pure core (core/: index, tracker, clock), the source of expected files and
 * how their presence is observed (source.ts; the share is shell/share-source.ts), the
 * runtime (runtime.ts: queue, state, timers, errors), the event bus (events.ts) whose
 * sinks are the alerts and the metrics. This class wires them and decides what runs when.
 */
import { IndexQueries } from './shell/index-queries.js';
import { assembleGuard, publishTransitions } from './assemble.js';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { WatchMode } from '../domain.js';
import { describeError } from '../errors.js';
import type { GuardClock } from './core/clock.js';
import { indexIssues, openProblems, problemCounts, type IndexIssues } from './core/guard-queries.js';
import type { ShareIndex } from './core/share-index.js';
import type { FileTracker } from './core/tracker.js';
import type { GuardEvents } from './events.js';
import { definedOnly, GUARD_DEFAULTS, type ResolvedOptions, type ShareGuardOptions, type ShareGuardStatus } from './guard-options.js';
import type { GuardRuntime } from './runtime.js';
import { errorCode } from './shell/fsio.js';
import type { FsTypeInfo } from './shell/fstype.js';
import { IndexUpdateLog } from './shell/index-log.js';
import type { GuardStore } from './shell/persistence.js';
import { ShareSource } from './shell/share-source.js';
import { attachMetrics } from './shell/guard-metrics.js';
import type { SourceHost } from './source.js';
import type { GuardTask, OpenProblem, ScanResult, ShareGuardEventMap } from './types.js';

export type { ShareGuardOptions, ShareGuardStatus } from './guard-options.js';

const INDEX_LOG_INTERVAL_MS = 1000;
/** Errors of the root/polling watcher: at most one alert and one recovery scan per this long. */
const ROOT_WATCHER_ALERT_EVERY_MS = 60_000;

export class ShareGuard extends EventEmitter<ShareGuardEventMap> {
  readonly #o: ResolvedOptions;
  readonly #clock: GuardClock;
  readonly #rt: GuardRuntime;
  readonly #events: GuardEvents;
  readonly #index: ShareIndex;
  readonly #tracker: FileTracker;
  readonly #store: GuardStore;
  readonly #source: ShareSource;
  /** Questions the service asks of the live index (why a chunk failed, what reads a path). */
  readonly queries: IndexQueries;
  readonly #skipped = new Map<number, string>();
  #started: Promise<void> | undefined;
  /** The guard got past start-up's detection once (watches and scans may run). */
  #everStarted = false;
  #scanning: Promise<ScanResult> | undefined;
  #rescan = false;
  #lastScan: ScanResult | null = null;
  #firstScanDone = false;
  #flushAt = Infinity;
  /** Indexed since the last observation, waiting for a batch of `scanBatchFiles` or `settle()`. */
  #fresh = { slots: [] as number[], dirs: new Set<string>() };
  readonly #indexLog: IndexUpdateLog;
  #lastRootWatcherAlert = -Infinity;
  #closed: Promise<void> | undefined;

  constructor(options: ShareGuardOptions) {
    super();
    const o: ResolvedOptions = {
      ...GUARD_DEFAULTS,
      ...definedOnly(options),
      shareDir: path.resolve(options.shareDir),
      logger: options.logger.child({ component: 'share-guard' }),
    };
    this.#o = o;
    const parts = assembleGuard({
      logger: o.logger,
      metrics: o.metrics,
      clock: o.clock,
      moveWindowMs: o.moveWindowMs,
      gauges: 'share',
      store: { stateDir: o.stateDir, root: o.shareDir },
      emitter: this,
      countEvent: (kind) => o.metrics.shareEvents.inc({ kind }),
      lastWarmedAt: o.lastWarmedAt,
    });
    ({ clock: this.#clock, events: this.#events, rt: this.#rt, index: this.#index, tracker: this.#tracker, store: this.#store } = parts);
    attachMetrics(this.#events, o.metrics);
    this.#source = new ShareSource(o, this.#host());
    this.#indexLog = new IndexUpdateLog({
      logger: o.logger,
      totals: () => ({ tasks: this.#index.tasks.size, skipped: this.#skipped.size, files: this.#index.liveFiles, dirs: this.#index.dirCount }),
      schedule: (log) => {
        if (!this.#rt.has('index-log') && !this.#closing) this.#rt.after('index-log', INDEX_LOG_INTERVAL_MS, log);
      },
      afterLog: () => this.#source.report(),
    });
    this.queries = new IndexQueries(this.#index, (rel) => this.#source.absolutePath(rel), o.lastWarmedAt);
    o.metrics.shareAvailable.set(1);
    o.metrics.shareFilesExpected.set(0);
    o.metrics.shareFilesMissing.set(0);
  }

  /** What the source may ask of the guard (source.ts). */
  #host(): SourceHost {
    return {
      index: this.#index,
      tracker: this.#tracker,
      events: this.#events,
      metrics: this.#o.metrics,
      logger: this.#o.logger,
      clock: this.#clock,
      enqueue: (job) => this.#enqueue(job),
      active: () => this.#everStarted && this.#available && !this.#closing,
      available: () => this.#available && !this.#closing,
      unavailable: (reason) => this.#shareUnavailable(reason),
      watcherError: (dir, error) => this.#watcherError(dir, error),
      checkHealth: () => this.#rt.spawn('root check', this.#checkRoot()),
      flushPending: () => this.#flushPending(),
      drain: () => this.#drain(),
    };
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
    const { created, newDirs } = await this.#source.applyTasks(remove, upsert, this.#skipped);
    this.#store.claim(created);
    this.#o.metrics.shareFilesExpected.set(this.#index.liveFiles);
    if (this.#everStarted && this.#available) {
      for (const f of created) this.#fresh.slots.push(f);
      for (const dir of newDirs) this.#fresh.dirs.add(dir);
      if (this.#fresh.slots.length >= this.#o.scanBatchFiles) await this.#observeFresh();
    }
    this.#indexLog.note(upsert.length, remove.length, created.length);
  }

  /** Watch the new directories and stat the new files of the task changes since the last time. */
  async #observeFresh(): Promise<void> {
    const { slots, dirs } = this.#fresh;
    if (slots.length === 0 && dirs.size === 0) return;
    this.#fresh = { slots: [], dirs: new Set() };
    // Share gone meanwhile: the scan when it is back covers them. A slot freed since is skipped by the scan.
    if (!this.#available || this.#closing) return;
    await this.#source.observe([...dirs].filter((dir) => this.#index.dirId(dir) !== undefined));
    await this.#source.scan(Int32Array.from(slots), { source: 'startup', fresh: true });
    await this.#flushPending();
  }

  /** Watch and stat whatever task changes left waiting for a batch (scanBatchFiles); resolves when done. */
  settle(): Promise<void> {
    return this.#enqueue(() => this.#observeFresh(), 'settle');
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
    await this.#source.start();
    this.#everStarted = true;
    if (this.#rt.state === 'starting') this.#rt.setState('watching');
    if (!(await this.#source.healthy())) {
      await this.#shareUnavailable('share root missing or unreadable at start');
    } else {
      await this.#enqueue(() => this.#observe());
      await this.scan('startup');
    }
    this.#rt.every('scheduled-scan', this.#scanInterval(), () => this.#rt.spawn('scheduled scan', this.scan('scheduled')));
    this.#rt.every('root-check', this.#o.rootCheckIntervalMs, () => this.#rt.spawn('root check', this.#checkRoot()));
    this.#source.ready();
    const { fsType, watchMode, watchedDirectories: watchedDirs } = this.#source.status();
    this.#o.logger.info({ shareDir: this.#o.shareDir, fsType, watchMode, files: this.#index.liveFiles, watchedDirs }, 'share guard ready');
    this.emit('ready');
  }

  #scanInterval(): number {
    return this.#source.defaultScanIntervalMs();
  }

  async #checkRoot(): Promise<void> {
    if (this.#closing || !this.#available || !this.#everStarted) return;
    if (!(await this.#source.healthy())) await this.#enqueue(() => this.#shareUnavailable('share root vanished or was unmounted'));
    // Every watch is on the old tree: going through unavailable → restored sets them up on the new one and rescans.
    else if (await this.#source.rootReplaced())
      await this.#enqueue(() => this.#shareUnavailable('share root replaced by another directory (renamed away and re-created, or mounted over)'));
  }

  async #observe(newDirs?: Iterable<string>): Promise<void> {
    if (this.#available && !this.#closing) await this.#source.observe(newDirs);
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
    const alert = { kind: 'watcher_error' as const, code: errorCode(error), message: describeError(error), at: this.#o.clock() };
    this.#events.emit('watcher_error', dir !== undefined ? { ...alert, dir } : alert);
    this.#rt.spawn('watcher-error scan', this.scan('watcher_error'));
  }

  // ---------------------------------------------------------------- share availability

  async #shareUnavailable(reason: string): Promise<void> {
    if (!this.#available || this.#closing) return;
    this.#rt.setState('unavailable');
    this.#tracker.revertPending();
    await this.#source.setAvailable('gone');
    this.#events.emit('share', { kind: 'share_unavailable', shareDir: this.#o.shareDir, reason, at: this.#o.clock(), filesExpected: this.#index.liveFiles });
    this.#store.scheduleSave(this.#available);
    this.#pollRootEvery();
  }

  #pollRootEvery(): void {
    this.#rt.every('root-poll', this.#o.rootPollMs, () => this.#rt.spawn('root poll', this.#pollRoot()));
  }

  async #pollRoot(): Promise<void> {
    if (this.#closing || this.#available || !(await this.#source.healthy())) return;
    this.#rt.cancel('root-poll');
    this.#rt.after('root-settle', this.#o.rootSettleMs, () => void this.#enqueue(() => this.#shareRestored(), 'share restored'));
  }

  async #shareRestored(): Promise<void> {
    if (!(await this.#source.healthy())) {
      this.#pollRootEvery();
      return;
    }
    this.#rt.setState(this.#everStarted ? 'watching' : 'idle');
    await this.#source.setAvailable('back');
    const alert = { kind: 'share_restored' as const, shareDir: this.#o.shareDir, reason: 'share root is back', at: this.#o.clock() };
    this.#events.emit('share', { ...alert, filesExpected: this.#index.liveFiles });
    await this.#observe();
    this.#rt.spawn('share-restored scan', this.scan('share_restored'));
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
    if (!(await this.#source.healthy())) {
      await this.#enqueue(() => this.#shareUnavailable('share root missing or unreadable at scan'));
      return this.#emptyScan(reason, 'share_unavailable');
    }
    const started = this.#clock.monotonic();
    const result = this.#emptyScan(reason, undefined);
    delete result.skipped;
    const source = this.#firstScanDone ? 'scan' : 'startup';
    const counts = await this.#source.scan(undefined, { source, ignoreInode: reason === 'share_restored' });
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the share can go away during the awaited scan above; TS narrowing does not see that
    if (!this.#available) return this.#emptyScan(reason, 'share_unavailable');
    await this.#enqueue(async () => {
      await this.#flushPending();
      await this.#source.afterScan();
    });
    Object.assign(result, counts);
    result.durationMs = this.#clock.monotonic() - started;
    this.#afterScan(reason);
    this.#lastScan = result;
    this.#o.logger.info(
      { reason, files: result.filesChecked, missing: result.missing, modified: result.modified, errors: result.errors, ms: Math.round(result.durationMs) },
      'share reconcile scan done',
    );
    this.#events.emit('scan', result);
    this.emit('scan', result);
    return result;
  }

  #afterScan(reason: string): void {
    // Every indexed file was observed: a persisted problem still unclaimed is for a file
    // no task expects any more (task deleted while the warden was down).
    if (this.#index.liveFiles > 0) this.#tracker.dropUnseenPersisted();
    if (!this.#firstScanDone) {
      this.#firstScanDone = true;
      this.#logStillOpen();
    }
    this.#source.report();
    if (reason === 'scheduled') this.#store.pruneUnclaimed();
    this.#store.flushSoon();
    this.#store.scheduleSave(this.#available);
  }

  #logStillOpen(): void {
    const still = this.#tracker.stillOpen.splice(0);
    if (still.length === 0) return;
    this.#o.logger.warn({ count: still.length, paths: still.slice(0, 10) }, `${still.length} share problem(s) from before the restart still open`);
  }

  // ---------------------------------------------------------------- alerts & flushing

  /** Publish tracker transitions (the alert sink listens); returns how many alerts went out. */
  #drain(): number {
    const published = publishTransitions({ tracker: this.#tracker, events: this.#events, store: this.#store }, this.#available);
    this.#scheduleFlush();
    return published;
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
    if (!(await this.#source.healthy())) return this.#shareUnavailable('share root vanished');
    this.#tracker.flushDue(this.#clock.monotonic());
    const source = this.#source.liveSource;
    for (const f of this.#tracker.takeUnsettled(this.#clock.monotonic())) {
      const token = this.#index.gen[f];
      const st = await this.#source.stat(f);
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
        const st = await this.#source.stat(f);
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
    return this.#source.fsInfo;
  }

  /** The mode in effect: `degraded` while some directories have no watch. */
  get watchMode(): WatchMode {
    return this.#source.watchMode;
  }

  /** Rejected names and index warnings of every guarded task, and tasks not guarded. */
  indexIssues(): IndexIssues {
    return indexIssues(this.#index, this.#skipped);
  }

  /** JSON for /status. */
  /** What readiness needs, without status()'s walk over every task and problem (/readyz is probed often). */
  availability(): { shareAvailable: boolean; filesExpected: number } {
    return { shareAvailable: this.#available, filesExpected: this.#index.liveFiles };
  }

  status(): ShareGuardStatus {
    return {
      shareDir: this.#o.shareDir,
      ...this.#source.status(),
      scanIntervalMs: this.#scanInterval(),
      shareAvailable: this.#available,
      started: this.#everStarted,
      state: this.#rt.state,
      stepErrors: this.#rt.errors + this.#events.listenerErrors,
      ...problemCounts(this.#index, this.#tracker, this.#skipped),
      lastScan: this.#lastScan,
      stateDamage: this.#store.damage,
    };
  }

  /** Stop every watcher and timer, write the state. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const available = this.#available;
      let source: Promise<void> = Promise.resolve();
      // The runtime clears every timer and waits for the queue and background jobs.
      await this.#rt.close(() => {
        this.#indexLog.flush();
        source = this.#source.close(); // watchers off now; a degraded round in progress stops at its next stat
      });
      await this.#scanning?.catch(() => undefined); // its failure was logged by whoever awaited it
      await source;
      await this.#store.close({ started: this.#everStarted, available });
    })();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
