/**
 * The share as a source of expected files (see ../source.ts): a task's expected files are
 * the frames (and related images) it reads under the share root; their presence is
 * observed by stat — reconcile scans, per-directory inotify watches plus a root watcher on
 * local disks, chokidar polling on small network shares, degraded scans for directories
 * the kernel refused a watch for.
 */
import type { WatchMode } from '../../domain.js';
import type { GuardSource, ScanOptions, SourceHost, SourceStatus } from '../source.js';
import type { DetectionSource, FileStat, GuardTask } from '../types.js';
import { DegradedScans } from './degraded.js';
import { DirWatchers } from './dir-watchers.js';
import { PathTrust, UnreadableFiles } from './file-trust.js';
import { isMountPoint, rootHealthy, withFs, type EntryKind, type GuardFs } from './fsio.js';
import { detectFsType, type FsTypeInfo } from './fstype.js';
import { ShareRootResolver } from './paths.js';
import { scanSlots, type ScanCounts } from './scanner.js';
import { StatThread } from './stat-thread.js';
import { applyTaskChanges } from './task-set.js';
import { WatchHandler } from './watch-handler.js';
import { GuardWatching } from './watching.js';
import { scanIntervalFor, scanRateFor, type ResolvedOptions } from '../guard-options.js';

/** The options of ShareGuard the share reads. */
export type ShareSourceOptions = Pick<
  ResolvedOptions,
  | 'shareDir'
  | 'persistent'
  | 'debounceMs'
  | 'watchMode'
  | 'pollingMaxFiles'
  | 'pollIntervalMs'
  | 'watchRetryBaseMs'
  | 'watchRetryMaxMs'
  | 'degradedScanIntervalMs'
  | 'moveWindowMs'
  | 'includeUnknownStorage'
  | 'ignoredPrefixes'
  | 'scanConcurrency'
  | 'fsTypeOverride'
  | 'mountinfoPath'
  | 'scanIntervalMs'
  | 'scanRatePerSecond'
> & { fs?: Partial<GuardFs> | undefined };

export class ShareSource implements GuardSource {
  readonly #o: ShareSourceOptions;
  readonly #host: SourceHost;
  readonly #fs: GuardFs;
  /** Local-disk stats off the main thread; none when a test replaces the stat calls (it must see every one). */
  readonly #thread: StatThread | undefined;
  readonly #resolver: ShareRootResolver;
  readonly #dirs: DirWatchers;
  readonly #watching: GuardWatching;
  readonly #degraded: DegradedScans;
  readonly #handler: WatchHandler;
  readonly #trust: PathTrust;
  readonly #unreadable: UnreadableFiles;
  #fsInfo: FsTypeInfo = { fsType: 'unknown', mountPoint: '/', source: '', network: false, detectedBy: 'unknown' };
  /** The file system was detected (start()): until then realpaths go through libuv's pool, as on a network share. */
  #fsDetected = false;
  #rootMountPoint = false;
  /**
   * The root directory the watches were set up on (dev and inode, from start() or the share
   * coming back). Another directory at the root's path — the share renamed away and a copy
   * put in its place, a file system mounted over it — leaves every watch on the old tree.
   */
  #rootIdentity: { dev: number; ino: number } | undefined;

  constructor(options: ShareSourceOptions, host: SourceHost) {
    this.#o = options;
    this.#host = host;
    this.#fs = withFs(options.fs);
    this.#thread = options.fs?.stat || options.fs?.statSync ? undefined : new StatThread();
    this.#resolver = new ShareRootResolver(options.shareDir, { ...this.#fs, realpath: (p) => this.#realpath(p), entryKind: (p) => this.#entryKind(p) });
    const { index, tracker, events, metrics, logger } = host;
    const wall = () => host.clock.wall();
    this.#trust = new PathTrust({ index, tracker, resolver: this.#resolver, events, logger, clock: wall });
    this.#unreadable = new UnreadableFiles(index, metrics, logger);
    this.#dirs = this.#makeDirWatchers();
    this.#watching = this.#makeWatching();
    this.#degraded = new DegradedScans({
      index,
      watching: this.#watching,
      events,
      metrics,
      logger,
      clock: wall,
      intervalMs: options.degradedScanIntervalMs,
      enqueue: (job) => host.enqueue(job),
      scan: (ids) => this.scan(ids, { source: 'scan' }),
      flushPending: () => host.flushPending(),
      active: () => host.active(),
      onRound: () => this.#unreadable.log(),
    });
    this.#handler = this.#makeHandler();
  }

  /**
   * Directory checks (realpath, lstat): on this thread on a local disk (as its stats were),
   * through libuv's pool on a network file system (a hung server must not block the event
   * loop), and as a test's replacement does when it replaced the call. Profiled at 1,000,000
   * share files, the pool's round trips were 0.9 s of the main thread.
   */
  #dirCheck<T>(replaced: boolean, pooled: () => Promise<T>, here: () => T): Promise<T> {
    if (!this.#fsDetected || this.#fsInfo.network || replaced) return pooled();
    return new Promise((resolve) => resolve(here())); // a throw becomes the rejection
  }

  #realpath(path: string): Promise<string> {
    return this.#dirCheck(
      !!this.#o.fs?.realpath,
      () => this.#fs.realpath(path),
      () => this.#fs.realpathSync(path),
    );
  }

  #entryKind(path: string): Promise<EntryKind | null> {
    return this.#dirCheck(
      !!this.#o.fs?.entryKind,
      () => this.#fs.entryKind(path),
      () => this.#fs.entryKindSync(path),
    );
  }

  #makeDirWatchers(): DirWatchers {
    return new DirWatchers({
      fs: this.#fs,
      abs: (rel) => this.#resolver.abs(rel),
      persistent: this.#o.persistent,
      debounceMs: this.#o.debounceMs,
      onBatch: (batches) =>
        void this.#host.enqueue(async () => {
          if (this.#host.available()) await this.#handler.handle(batches);
        }),
      onError: (dir, error) => {
        if (this.#host.available()) this.#watching.watchDied(dir, error);
      },
    });
  }

  #makeWatching(): GuardWatching {
    const { index, metrics, logger } = this.#host;
    return new GuardWatching({
      index,
      fs: this.#fs,
      resolver: this.#resolver,
      dirs: this.#dirs,
      handler: () => this.#handler,
      metrics,
      logger,
      forced: this.#o.watchMode !== 'auto',
      pollingMaxFiles: this.#o.pollingMaxFiles,
      pollIntervalMs: this.#o.pollIntervalMs,
      enqueue: (job) => this.#host.enqueue(job),
      checkRoot: () => this.#host.checkHealth(),
      onError: (dir, error) => this.#host.watcherError(dir, error),
      onDegraded: (dir, error, how) => this.#degraded.onDegraded(dir, error, how),
      retryBaseMs: this.#o.watchRetryBaseMs,
      retryMaxMs: this.#o.watchRetryMaxMs,
    });
  }

  #makeHandler(): WatchHandler {
    const { index, tracker } = this.#host;
    return new WatchHandler({
      index,
      tracker,
      fs: this.#fs,
      resolver: this.#resolver,
      dirs: this.#dirs,
      moveWindowMs: this.#o.moveWindowMs,
      source: () => this.liveSource,
      syncStat: () => this.#watching.mode === 'inotify' && !this.#fsInfo.network,
      rootOk: () => this.healthy(),
      available: () => this.#host.available(),
      shareUnavailable: (reason) => this.#host.unavailable(reason),
      watchFilesDir: (rel) => this.#watching.watchFilesDir(rel),
      dirInode: (rel) => this.#watching.dirInode(rel),
      onWatchError: (error) => this.#host.watcherError(undefined, error),
      dirTrusted: (rel) => this.#trust.dirTrusted(rel),
    });
  }

  get liveSource(): DetectionSource {
    return this.#watching.mode === 'polling' ? 'poll' : 'watch';
  }

  get fsInfo(): FsTypeInfo {
    return { ...this.#fsInfo };
  }

  get watchMode(): WatchMode {
    return this.#watching.effectiveMode;
  }

  async applyTasks(
    remove: readonly number[],
    upsert: readonly GuardTask[],
    skipped: Map<number, string>,
  ): Promise<{ created: number[]; newDirs: Set<string> }> {
    const { index, tracker, logger, metrics } = this.#host;
    const deps = { index, tracker, fs: this.#fs, resolver: this.#resolver, skipped, logger };
    const { created, emptied } = await applyTaskChanges(
      {
        ...deps,
        includeUnknownStorage: this.#o.includeUnknownStorage,
        onForget: (f) => this.#unreadable.note(f, undefined),
        ignoredPrefixes: this.#o.ignoredPrefixes,
      },
      remove,
      upsert,
    );
    this.#handler.invalidate();
    for (const dir of emptied) {
      if (index.dirId(dir.rel) !== undefined) continue;
      this.#dirs.unwatch(dir.rel, 'files');
      this.#watching.forget(dir.rel);
      this.#handler.forgetGone(dir.rel);
    }
    // Only the directories this change added: feeding 10,000 tasks one by one must not walk every directory 10,000 times.
    const newDirs = new Set<string>();
    for (const f of created) newDirs.add(index.dirs[index.dirOf[f]!]!.rel);
    metrics.shareWatchedDirectories.set(this.#dirs.size);
    return { created, newDirs };
  }

  /** The absolute path of a share-relative name (not resolved: for opening it as the guard does). */
  absolutePath(rel: string): string {
    return this.#resolver.abs(rel);
  }

  async start(): Promise<void> {
    const realRoot = await this.#resolver.realRoot();
    this.#fsInfo = await detectFsType(realRoot, {
      override: this.#o.fsTypeOverride,
      ...(this.#o.mountinfoPath ? { mountinfoPath: this.#o.mountinfoPath } : {}),
    });
    this.#fsDetected = true;
    this.#watching.setMode(this.#decideMode());
    if (this.#fsInfo.network) {
      const mode = this.#watching.mode;
      this.#host.logger.warn(
        { fsType: this.#fsInfo.fsType, mountPoint: this.#fsInfo.mountPoint, watchMode: mode, scanIntervalMs: this.defaultScanIntervalMs() },
        `share is on a network filesystem (${this.#fsInfo.fsType}): inotify cannot see changes made by other clients; relying on ${mode === 'polling' ? 'polling and ' : ''}reconcile scans`,
      );
    }
    this.#rootMountPoint = isMountPoint(this.#fs, this.#o.shareDir);
    this.#rootIdentity = await this.#rootNow();
  }

  async #rootNow(): Promise<{ dev: number; ino: number } | undefined> {
    const st = await this.#fs.stat(this.#o.shareDir).catch(() => null);
    return st ? { dev: st.dev, ino: st.ino } : undefined;
  }

  /** The directory at the root's path is not the one the watches were set up on (healthy() says whether there is one). */
  async rootReplaced(): Promise<boolean> {
    const was = this.#rootIdentity;
    const now = await this.#rootNow();
    return was !== undefined && now !== undefined && (now.dev !== was.dev || now.ino !== was.ino);
  }

  #decideMode(): WatchMode {
    if (this.#o.watchMode !== 'auto') return this.#o.watchMode;
    if (!this.#fsInfo.network) return 'inotify';
    return this.#host.index.liveFiles <= this.#o.pollingMaxFiles ? 'polling' : 'scan_only';
  }

  /** Root exists, is a readable directory and (if it was a mount point) is still mounted. */
  healthy(): Promise<boolean> {
    return rootHealthy(this.#fs, this.#o.shareDir, this.#rootMountPoint);
  }

  async observe(newDirs?: Iterable<string>): Promise<void> {
    if (this.#host.available()) await this.#watching.setup(newDirs);
    this.#host.metrics.shareWatchedDirectories.set(this.#dirs.size);
  }

  async setAvailable(state: 'gone' | 'back'): Promise<void> {
    if (state === 'back') {
      this.#resolver.reset();
      // The watches about to be set up are on this directory; a mount that appeared over the
      // root is then watched for going away too.
      this.#rootIdentity = await this.#rootNow();
      this.#rootMountPoint ||= isMountPoint(this.#fs, this.#o.shareDir);
      return;
    }
    this.#handler.clear();
    await this.#watching.stopAll();
  }

  /** Stats the (trusted) slots and feeds the tracker; alerts are published as they come. */
  async scan(ids: Int32Array | undefined, { source, ignoreInode = false, fresh = false }: ScanOptions): Promise<ScanCounts> {
    const { index, tracker, logger } = this.#host;
    const network = this.#fsInfo.network;
    const all = ids ?? index.liveSlotsByDir();
    return scanSlots(fresh ? all : await this.#trust.trustedSlots(all, source), {
      index,
      tracker,
      fs: this.#fs,
      root: this.#resolver.root,
      sync: !network,
      concurrency: this.#o.scanConcurrency,
      ratePerSecond: scanRateFor(this.#o.scanRatePerSecond, network),
      stopped: () => !this.#host.available(),
      source,
      ignoreInode,
      drain: () => this.#host.drain(),
      logger,
      thread: this.#thread,
      onReadable: (f, error) => this.#unreadable.note(f, error),
    });
  }

  async afterScan(): Promise<void> {
    await this.#handler.recheckGone();
  }

  /** Degraded rounds begin once start-up is done (idempotent). */
  ready(): void {
    this.#degraded.start();
  }

  async stat(f: number): Promise<FileStat | undefined> {
    return (await this.#fs.stat(this.#host.index.absPath(f, this.#resolver.root)).catch(() => undefined)) ?? undefined;
  }

  defaultScanIntervalMs(): number {
    return scanIntervalFor(this.#o.scanIntervalMs, this.#fsInfo, this.#watching.mode);
  }

  status(): SourceStatus {
    return {
      fsType: this.#fsInfo.fsType,
      network: this.#fsInfo.network,
      watchMode: this.#watching.effectiveMode,
      degradedDirectories: this.#watching.failedDirs(100).dirs,
      degradedDirectoryCount: this.#watching.degradedCount,
      unreadable: this.#unreadable.list(100),
      watchedDirectories: this.#dirs.size,
      goneDirectories: this.#handler.goneDirs().slice(0, 100),
    };
  }

  report(): void {
    this.#unreadable.log();
  }

  async close(): Promise<void> {
    const degraded = this.#degraded.close(); // timers off now; a round in progress stops at its next stat
    await this.#watching.stopAll();
    this.#dirs.close();
    await degraded;
    await this.#thread?.close();
  }
}
