/**
 * Two checks on expected files that are not "present / missing / changed":
 *  - PathTrust: path safety at runtime. A directory swapped for a symlink out of the
 *    share while guarded is rejected: its files count as gone (never "restored" because
 *    copies sit at the target), and one `path_escape` alert names it until it is back.
 *  - UnreadableFiles: files the guard cannot stat (EACCES, EIO…) — a problem of their
 *    own kind, listed with their tasks in /status, counted in a gauge, logged when the
 *    count changes, forgotten when a stat works again or the file leaves the index.
 */
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { GuardEvents } from '../events.js';
import { errorCode } from './fsio.js';
import type { ShareRootResolver } from './paths.js';
import type { ShareIndex } from '../core/share-index.js';
import type { FileTracker } from '../core/tracker.js';

export interface PathTrustDeps {
  index: ShareIndex;
  tracker: FileTracker;
  resolver: ShareRootResolver;
  events: GuardEvents;
  logger: Logger;
  clock: () => number;
}

export class PathTrust {
  readonly #d: PathTrustDeps;
  /** Directories that resolve outside the share now (alerted once each until they are back inside). */
  readonly #escaped = new Set<string>();

  constructor(deps: PathTrustDeps) {
    this.#d = deps;
  }

  /** Does `rel` still resolve inside the share? One uncached realpath; alerts the first time it does not. */
  async dirTrusted(rel: string): Promise<boolean> {
    const { index, resolver } = this.#d;
    const where = await resolver.resolveNow(rel);
    if (where === 'inside' || where === 'absent') {
      if (this.#escaped.delete(rel)) this.#d.logger.info({ dir: rel }, 'share directory resolves inside the share again');
      return true;
    }
    if (!this.#escaped.has(rel)) {
      this.#escaped.add(rel);
      resolver.reset(); // index-time verdicts may be stale too
      const id = index.dirId(rel);
      const taskIds = new Set<number>();
      if (id !== undefined) for (const f of index.dirs[id]!.files.values()) for (const t of index.taskIdsOf(f)) taskIds.add(t);
      this.#d.events.emit('path_escape', {
        kind: 'path_escape',
        dir: rel,
        target: where.outside,
        at: this.#d.clock(),
        taskIds: [...taskIds].sort((a, b) => a - b),
      });
    }
    return false;
  }

  /**
   * `ids` without the slots of directories that resolve outside the share now; those
   * are observed as absent. One realpath per directory.
   */
  async trustedSlots(ids: Int32Array, source: 'scan' | 'startup'): Promise<Int32Array> {
    const { index } = this.#d;
    const escaped = new Set<number>();
    const seen = new Set<number>();
    for (const f of ids) {
      const d = index.dirOf[f]!;
      if (seen.has(d)) continue;
      seen.add(d);
      const dir = index.dirs[d];
      if (dir && !(await this.dirTrusted(dir.rel))) escaped.add(d);
    }
    if (escaped.size === 0) return ids;
    for (const f of ids) if (escaped.has(index.dirOf[f]!)) this.#d.tracker.observe(f, { stat: null, source });
    return ids.filter((f) => !escaped.has(index.dirOf[f]!));
  }
}

export interface UnreadableFile {
  path: string;
  code: string;
  taskIds: number[];
}

export class UnreadableFiles {
  readonly #index: ShareIndex;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  /** slot → error code */
  readonly #files = new Map<number, string>();
  #logged = 0;

  constructor(index: ShareIndex, metrics: Metrics, logger: Logger) {
    this.#index = index;
    this.#metrics = metrics;
    this.#logger = logger;
  }

  /** A stat of `f` worked (`error` undefined) or failed. */
  note(f: number, error: unknown): void {
    if (error === undefined) {
      if (this.#files.delete(f)) this.#metrics.shareFilesUnreadable.set(this.#files.size);
      return;
    }
    const code = errorCode(error);
    if (this.#files.get(f) === code) return;
    this.#files.set(f, code);
    this.#metrics.shareFilesUnreadable.set(this.#files.size);
  }

  /** The first `limit` with their tasks, and how many. */
  list(limit = 100): { count: number; files: UnreadableFile[] } {
    const files: UnreadableFile[] = [];
    for (const [f, code] of this.#files) {
      if (files.length >= limit) break;
      if (this.#index.isLive(f)) files.push({ path: this.#index.relPath(f), code, taskIds: this.#index.taskIdsOf(f) });
    }
    return { count: this.#files.size, files };
  }

  /** One line when the count changed since the last one, naming the first files and their tasks. */
  log(): void {
    if (this.#files.size === this.#logged) return;
    this.#logged = this.#files.size;
    if (this.#files.size === 0) {
      this.#logger.info('every expected share file is readable again');
      return;
    }
    const { count, files } = this.list(10);
    this.#logger.error(
      { count, files: files.map((x) => `${x.path} (${x.code}; tasks ${x.taskIds.join(',')})`) },
      `${count} expected share file(s) cannot be read by the guard: CVAT may not be able to read them either`,
    );
  }
}
