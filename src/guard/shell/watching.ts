/**
 * Which watchers run, by watch mode:
 *  - inotify: one fs.watch per directory holding expected files (DirWatchers) plus
 *    one on the share root (root-watcher.ts);
 *  - polling: chokidar stat-polling over the expected files (small network shares);
 *  - scan_only: nothing (large network shares; the scans do the work).
 * Also remembers each watched directory's (and its ancestors') dev+inode, which tells
 * a replaced or renamed directory from the one being watched.
 *
 * Degraded is a state, not a warning: a directory whose watch cannot be added (the
 * inotify limit: ENOSPC/EMFILE; or EACCES…) is kept in a bounded list, covered by the
 * guard's degraded scans, retried with capped exponential back-off, and reported once
 * (once per directory for its own errors, once per episode for the limit) until its
 * watch works again. The mode then reads `degraded` (cvat_warden_share_watch_mode).
 */
import path from 'node:path';
import type { Logger } from '../../log.js';
import type { WatchMode } from '../../domain.js';
import { setWatchMode, type Metrics } from '../../metrics.js';
import { pollFiles, whenReady, type FSWatcher } from './chokidar-watch.js';
import { watchShareRoot } from './root-watcher.js';
import type { DirWatchers } from './dir-watchers.js';
import { copyStat, errorCode, type GuardFs } from './fsio.js';
import { baseOf, dirOf, type ShareRootResolver } from './paths.js';
import type { ShareIndex } from '../core/share-index.js';
import type { FileStat } from '../types.js';
import type { WatchHandler } from './watch-handler.js';

export interface WatchingDeps {
  index: ShareIndex;
  fs: GuardFs;
  resolver: ShareRootResolver;
  dirs: DirWatchers;
  handler: () => WatchHandler;
  metrics: Metrics;
  logger: Logger;
  /** The mode was forced by configuration (never switched automatically). */
  forced: boolean;
  pollingMaxFiles: number;
  pollIntervalMs: number;
  enqueue: (job: () => Promise<void>) => Promise<void>;
  /** The root watcher saw the root itself go. */
  checkRoot: () => void;
  /** A watcher without a directory (root, polling) failed. */
  onError: (dir: string | undefined, error: unknown) => void;
  /**
   * A directory could not be watched and is now covered by degraded scans. `alert`: first
   * report of it; `lostEvents`: its live watch died, so changes may have been missed.
   */
  onDegraded: (dir: string, error: unknown, how: { alert: boolean; lostEvents: boolean }) => void;
  /** Retry delays of failed watches: first delay, doubling up to the max (GUARD_DEFAULTS.watchRetry*). */
  retryBaseMs: number;
  retryMaxMs: number;
}

/** A directory without a watch. */
interface FailedWatch {
  code: string;
  attempts: number;
  /** performance.now() of the next retry */
  nextAt: number;
}

const LIMIT_CODES = new Set(['ENOSPC', 'EMFILE']);

export class GuardWatching {
  readonly #d: WatchingDeps;
  readonly #dirInodes = new Map<string, FileStat>();
  readonly #failed = new Map<string, FailedWatch>();
  #rootWatcher: { close(): void } | undefined;
  #pollWatcher: FSWatcher | undefined;
  /** The watch limit was hit: new directories go straight to the failed list until a retry succeeds. */
  #limitReached = false;
  #limitAlerted = false;
  #reported: WatchMode = 'inotify';
  mode: WatchMode = 'inotify';

  constructor(deps: WatchingDeps) {
    this.#d = deps;
  }

  setMode(mode: WatchMode): void {
    this.mode = mode;
    this.#publishMode();
  }

  /** What the metric and /status say: `degraded` while some directory of an inotify share has no watch. */
  get effectiveMode(): WatchMode {
    return this.mode === 'inotify' && this.#failed.size > 0 ? 'degraded' : this.mode;
  }

  #publishMode(): void {
    const mode = this.effectiveMode;
    setWatchMode(this.#d.metrics, mode);
    if (mode !== this.#reported) {
      if (mode === 'degraded')
        this.#d.logger.warn({ directories: this.#failed.size }, 'share watching degraded: some directories have no watch; scanning them on a schedule');
      else if (this.#reported === 'degraded') this.#d.logger.info({ mode }, 'every share directory is watched again');
      this.#reported = mode;
    }
    this.#d.metrics.shareWatchedDirectories.set(this.#d.dirs.size);
    this.#d.metrics.shareDegradedDirectories.set(this.#failed.size);
  }

  dirInode(rel: string): FileStat | undefined {
    return this.#dirInodes.get(rel);
  }

  /** Directories without a watch (first `limit`), and how many there are. */
  failedDirs(limit = 100): { dirs: string[]; count: number } {
    const dirs: string[] = [];
    for (const rel of this.#failed.keys()) {
      if (dirs.length >= limit) break;
      dirs.push(rel);
    }
    return { dirs, count: this.#failed.size };
  }

  get degradedCount(): number {
    return this.#failed.size;
  }

  *failedDirNames(): Generator<string> {
    yield* this.#failed.keys();
  }

  /**
   * Start whatever the mode needs and is not running yet; resolves when chokidar's polling is ready.
   * `dirs`: only these directories are new (a task was fed); without it, every directory.
   */
  async setup(newDirs?: Iterable<string>): Promise<void> {
    const { index, dirs } = this.#d;
    let ready: Promise<void> | undefined;
    if (this.mode === 'polling' && index.liveFiles > this.#d.pollingMaxFiles && !this.#d.forced) {
      this.#d.logger.warn({ files: index.liveFiles, pollingMaxFiles: this.#d.pollingMaxFiles }, 'too many files to poll; switching to scan-only');
      this.setMode('scan_only');
      void this.#pollWatcher?.close();
      this.#pollWatcher = undefined;
    }
    if (this.mode === 'inotify') {
      if (!this.#rootWatcher) {
        try {
          this.#rootWatcher = watchShareRoot(this.#d.resolver.root, this.#d.fs, {
            onTopLevel: (name, event) => void this.#d.enqueue(() => this.#d.handler().topLevel(name, event)),
            onRoot: () => this.#d.checkRoot(),
            onError: (error) => this.#d.onError(undefined, error),
          });
        } catch (error) {
          // Tried again by the next setup (the next batch of tasks, the share coming back); reported at most once a minute.
          this.#d.onError(undefined, error);
        }
      }
      const gone = this.#d.handler().gone;
      const candidates =
        newDirs ??
        (function* () {
          for (const dir of index.liveDirs()) yield dir.rel;
        })();
      for (const rel of candidates) {
        if (index.dirId(rel) === undefined || dirs.has(rel, 'files') || gone.has(rel) || this.#failed.has(rel)) continue;
        this.watchFilesDir(rel);
      }
    } else if (this.mode === 'polling') {
      void this.#pollWatcher?.close();
      const root = this.#d.resolver.root;
      const paths: string[] = [];
      for (const f of index.liveSlotsByDir()) paths.push(index.absPath(f, root));
      this.#pollWatcher = pollFiles(paths, this.#d.pollIntervalMs, {
        onChange: (abs) => {
          const rel = path.relative(root, abs).split(path.sep).join('/');
          dirs.enqueue(dirOf(rel), baseOf(rel));
        },
        onError: (error) => this.#d.onError(undefined, error),
      });
      ready = whenReady(this.#pollWatcher);
    }
    this.#publishMode();
    await ready;
  }

  /** Watch a directory of expected files (inotify mode); a missing one waits to come back. Returns true when watched. */
  watchFilesDir(rel: string): boolean {
    if (this.mode !== 'inotify') return false;
    if (this.#limitReached && !this.#failed.has(rel)) {
      // no point asking the kernel again for every new directory: the retries find out when there is room
      this.#fail(rel, Object.assign(new Error('inotify watch limit reached'), { code: 'ENOSPC' }));
      this.#publishMode();
      return false;
    }
    const { outcome, error } = this.#d.dirs.watch(rel, 'files');
    let watched = false;
    if (outcome === 'ok') {
      watched = true;
      for (let cur = rel; ; cur = dirOf(cur)) {
        const st = this.#d.fs.statSync(this.#d.resolver.abs(cur));
        if (st) this.#dirInodes.set(cur, copyStat(st));
        if (cur === '' || this.#dirInodes.has(dirOf(cur))) break;
      }
      if (this.#failed.delete(rel)) this.#d.logger.info({ dir: rel }, 'share directory watched again');
    } else if (outcome === 'absent') {
      this.#failed.delete(rel);
      void this.#d.handler().markGone(rel);
    } else {
      this.#fail(rel, error);
    }
    this.#publishMode();
    return watched;
  }

  #fail(rel: string, error: unknown, lostEvents = false): void {
    const code = errorCode(error);
    const limit = LIMIT_CODES.has(code);
    const previous = this.#failed.get(rel);
    const attempts = (previous?.attempts ?? 0) + 1;
    const base = this.#d.retryBaseMs;
    const delay = Math.min(this.#d.retryMaxMs, base * 2 ** Math.min(attempts - 1, 20));
    this.#failed.set(rel, { code, attempts, nextAt: performance.now() + delay });
    if (limit) this.#limitReached = true;
    // Alert once per directory for its own errors, once per episode for the shared limit.
    const alert = previous === undefined && (!limit || !this.#limitAlerted);
    if (limit && alert) this.#limitAlerted = true;
    this.#d.onDegraded(rel, error, { alert, lostEvents });
  }

  /** A live watch of `rel` died (its watcher emitted 'error'): the directory is degraded until a retry works. */
  watchDied(rel: string, error: unknown): void {
    if (this.mode !== 'inotify' || this.#d.index.dirId(rel) === undefined) return;
    this.#fail(rel, error, true);
    this.#publishMode();
  }

  /** performance.now() of `rel`'s next retry, if it has no watch. */
  retryAt(rel: string): number | undefined {
    return this.#failed.get(rel)?.nextAt;
  }

  /** performance.now() of the earliest due retry, or undefined when nothing waits (walks the list: call once per round). */
  nextRetryAt(): number | undefined {
    let next: number | undefined;
    for (const f of this.#failed.values()) if (next === undefined || f.nextAt < next) next = f.nextAt;
    return next;
  }

  /**
   * Retry the failed watches that are due (at most `max`; under the limit one success
   * frees the way for the others). Returns the directories watched again: they missed events.
   */
  retryDue(max = 1000): string[] {
    if (this.mode !== 'inotify' || this.#failed.size === 0) return [];
    const now = performance.now();
    const regained: string[] = [];
    let tried = 0;
    for (const [rel, failed] of [...this.#failed]) {
      if (tried >= max) break;
      if (failed.nextAt > now) continue;
      if (this.#d.index.dirId(rel) === undefined) {
        this.#failed.delete(rel);
        continue;
      }
      tried++;
      if (LIMIT_CODES.has(failed.code)) this.#limitReached = false;
      if (this.watchFilesDir(rel)) regained.push(rel);
      else if (this.#limitReached) {
        // still full: every directory waiting on the limit waits as long as this one
        const until = this.#failed.get(rel)?.nextAt ?? now;
        for (const other of this.#failed.values()) if (LIMIT_CODES.has(other.code) && other.nextAt < until) other.nextAt = until;
        break;
      }
    }
    if (this.#failed.size === 0 || ![...this.#failed.values()].some((f) => LIMIT_CODES.has(f.code))) {
      this.#limitReached = false;
      this.#limitAlerted = false;
    }
    this.#publishMode();
    return regained;
  }

  /** The directory left the index. */
  forget(rel: string): void {
    if (this.#failed.delete(rel)) this.#publishMode();
  }

  /** Drop every watcher (the share went away, or close()). */
  async stopAll(): Promise<void> {
    this.#d.dirs.closeAll();
    this.#dirInodes.clear();
    this.#failed.clear();
    this.#limitReached = false;
    this.#limitAlerted = false;
    this.#rootWatcher?.close();
    const closing = this.#pollWatcher?.close();
    this.#rootWatcher = this.#pollWatcher = undefined;
    await closing?.catch(() => undefined);
    this.#publishMode();
    this.#d.metrics.shareWatchedDirectories.set(0);
  }
}
