/**
 * Which watchers run, by watch mode:
 *  - inotify: one fs.watch per directory holding expected files (DirWatchers) plus
 *    chokidar on the share root (depth 0);
 *  - polling: chokidar stat-polling over the expected files (small network shares);
 *  - scan_only: nothing (large network shares; the scans do the work).
 * Also remembers each watched directory's (and its ancestors') dev+inode, which tells
 * a replaced or renamed directory from the one being watched.
 */
import path from 'node:path';
import type { Logger } from '../log.js';
import type { WatchMode } from '../domain.js';
import { setWatchMode, type Metrics } from '../metrics.js';
import { pollFiles, watchShareRoot, whenReady, type FSWatcher } from './chokidar-watch.js';
import type { DirWatchers } from './dir-watchers.js';
import { copyStat, type GuardFs } from './fsio.js';
import { baseOf, dirOf, type ShareRootResolver } from './paths.js';
import type { ShareIndex } from './share-index.js';
import type { FileStat } from './types.js';
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
  onError: (dir: string | undefined, error: unknown) => void;
}

export class GuardWatching {
  readonly #d: WatchingDeps;
  readonly #dirInodes = new Map<string, FileStat>();
  #rootWatcher: FSWatcher | undefined;
  #pollWatcher: FSWatcher | undefined;
  #limitReached = false;
  mode: WatchMode = 'inotify';

  constructor(deps: WatchingDeps) {
    this.#d = deps;
  }

  setMode(mode: WatchMode): void {
    this.mode = mode;
    setWatchMode(this.#d.metrics, mode);
  }

  dirInode(rel: string): FileStat | undefined {
    return this.#dirInodes.get(rel);
  }

  /** Start whatever the mode needs and is not running yet; resolves when chokidar is ready. */
  async setup(): Promise<void> {
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
        this.#rootWatcher = watchShareRoot(this.#d.resolver.root, {
          onTopLevel: (name, event) => {
            if (name === '') this.#d.checkRoot();
            else void this.#d.enqueue(() => this.#d.handler().topLevel(name, event));
          },
          onError: (error) => this.#d.onError(undefined, error),
        });
        ready = whenReady(this.#rootWatcher);
      }
      const gone = this.#d.handler().gone;
      for (const dir of index.liveDirs()) {
        if (this.#limitReached) break;
        if (!dirs.has(dir.rel, 'files') && !gone.has(dir.rel)) this.watchFilesDir(dir.rel);
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
    this.#d.metrics.shareWatchedDirectories.set(dirs.size);
    await ready;
  }

  /** Watch a directory of expected files (inotify mode); a missing one waits to come back. */
  watchFilesDir(rel: string): void {
    if (this.mode !== 'inotify' || this.#limitReached) return;
    const { outcome, error } = this.#d.dirs.watch(rel, 'files');
    if (outcome === 'ok') {
      for (let cur = rel; ; cur = dirOf(cur)) {
        const st = this.#d.fs.statSync(this.#d.resolver.abs(cur));
        if (st) this.#dirInodes.set(cur, copyStat(st));
        if (cur === '' || this.#dirInodes.has(dirOf(cur))) break;
      }
    } else if (outcome === 'absent') {
      void this.#d.handler().markGone(rel);
    } else {
      // ENOSPC/EMFILE: the watch limit is reached; report once, leave the rest to scans.
      if (outcome === 'limit') this.#limitReached = true;
      this.#d.onError(rel, error);
    }
    this.#d.metrics.shareWatchedDirectories.set(this.#d.dirs.size);
  }

  /** Drop every watcher (the share went away, or close()). */
  async stopAll(): Promise<void> {
    this.#d.dirs.closeAll();
    this.#dirInodes.clear();
    const closing = [this.#rootWatcher?.close(), this.#pollWatcher?.close()];
    this.#rootWatcher = this.#pollWatcher = undefined;
    await Promise.allSettled(closing);
    this.#d.metrics.shareWatchedDirectories.set(0);
  }
}
