/**
 * What happens when a watched directory reports something:
 *  - a name we expect → stat that one file (the tracker decides what it means);
 *  - a name we do not expect → a possible move target: paired by dev+inode with a
 *    file that just vanished (else remembered for the move window);
 *  - no name / the directory's own name / a replaced inode → the directory itself
 *    changed: re-stat all its files; if it is gone, every file is missing, the watch
 *    is closed, a renamed directory is looked for next to where it was (same
 *    dev+inode), and the nearest existing ancestor is watched to notice it coming back.
 */
import path from 'node:path';
import type { DirBatch, DirWatchers } from './dir-watchers.js';
import type { GuardFs } from './fsio.js';
import { baseOf, dirOf, joinRel, type ShareRootResolver } from './paths.js';
import { FileStatus, type DirRecord, type ShareIndex } from '../core/share-index.js';
import type { FileTracker } from '../core/tracker.js';
import type { DetectionSource, FileStat } from '../types.js';

export interface WatchHandlerDeps {
  index: ShareIndex;
  tracker: FileTracker;
  fs: GuardFs;
  resolver: ShareRootResolver;
  dirs: DirWatchers;
  moveWindowMs: number;
  /** 'watch' (inotify) or 'poll'. Stat synchronously only on local disks. */
  source: () => DetectionSource;
  syncStat: () => boolean;
  rootOk: () => Promise<boolean>;
  /** false once the share is unavailable: stop observing (the outage is one alert). */
  available: () => boolean;
  shareUnavailable: (reason: string) => Promise<void>;
  /** Start watching a directory that holds expected files (records its inode). */
  watchFilesDir: (rel: string) => void;
  dirInode: (rel: string) => FileStat | undefined;
  onWatchError: (error: unknown) => void;
  /** Does the directory still resolve inside the share (it may have been swapped for a symlink)? Alerts when not. */
  dirTrusted: (rel: string) => Promise<boolean>;
}

const MAX_RECENT = 1024;
const MAX_SIBLINGS = 10_000;
/** More vanished directories than this per second is a mass deletion, not a rename: skip the sibling search. */
const MAX_DIR_MOVE_SEARCHES_PER_SECOND = 20;

/** `ancestor` plus the next path component of `rel` below it. */
function childOf(ancestor: string, rel: string): string {
  const rest = ancestor === '' ? rel : rel.slice(ancestor.length + 1);
  const slash = rest.indexOf('/');
  return joinRel(ancestor, slash < 0 ? rest : rest.slice(0, slash));
}

export class WatchHandler {
  readonly #d: WatchHandlerDeps;
  /** gone directory → the ancestor watched for its return (read-only outside; use forgetGone). */
  readonly gone = new Map<string, string>();
  /** ancestor → number of gone directories waiting on it */
  readonly #waits = new Map<string, number>();
  #recent: Array<{ rel: string; at: number }> = [];
  #ancestorCache: Set<string> | undefined;
  #searches: number[] = [];

  constructor(deps: WatchHandlerDeps) {
    this.#d = deps;
  }

  /** Index directories changed: forget the cached ancestor set. */
  invalidate(): void {
    this.#ancestorCache = undefined;
  }

  #ancestors(): Set<string> {
    if (!this.#ancestorCache) {
      const set = new Set<string>();
      for (const dir of this.#d.index.liveDirs()) {
        for (let rel = dir.rel; rel !== '';) {
          rel = dirOf(rel);
          if (set.has(rel)) break;
          set.add(rel);
        }
      }
      this.#ancestorCache = set;
    }
    return this.#ancestorCache;
  }

  /** Index directories at or below `rel`. */
  dirsUnder(rel: string): DirRecord[] {
    const own = this.#d.index.dirId(rel);
    const result: DirRecord[] = own === undefined ? [] : [this.#d.index.dirs[own]!];
    if (rel === '' || this.#ancestors().has(rel)) {
      const prefix = rel === '' ? '' : `${rel}/`;
      for (const dir of this.#d.index.liveDirs()) if (dir.rel !== rel && dir.rel.startsWith(prefix)) result.push(dir);
    }
    return result;
  }

  async #stat(rel: string): Promise<FileStat | null | undefined> {
    const abs = this.#d.resolver.abs(rel);
    try {
      return this.#d.syncStat() ? this.#d.fs.statSync(abs) : await this.#d.fs.stat(abs);
    } catch {
      return undefined; // EACCES/EIO: leave the state as it was
    }
  }

  async #observe(f: number, source: DetectionSource): Promise<void> {
    if (!this.#d.available()) return;
    const token = this.#d.index.gen[f];
    const st = await this.#stat(this.#d.index.relPath(f));
    if (st === undefined || this.#d.index.gen[f] !== token || !this.#d.available()) return;
    this.#d.tracker.observe(f, { stat: st, source });
  }

  async #observeDir(dir: DirRecord, source: DetectionSource): Promise<void> {
    if (!(await this.#d.dirTrusted(dir.rel))) {
      // resolves outside the share now: what is there is not the share's file, whatever its size
      for (const f of [...dir.files.values()]) if (this.#d.available()) this.#d.tracker.observe(f, { stat: null, source });
      return;
    }
    for (const f of [...dir.files.values()]) await this.#observe(f, source);
  }

  /** Is the watched directory still the one we watch (same inode)? */
  async #dirStillThere(rel: string): Promise<boolean> {
    const st = await this.#stat(rel);
    if (!st) return st === undefined; // unreadable: assume still there
    const known = this.#d.dirInode(rel);
    return !known || (known.dev === st.dev && known.ino === st.ino);
  }

  async handle(batches: DirBatch[]): Promise<void> {
    const source = this.#d.source();
    const unexpected: string[] = [];
    for (const batch of batches) {
      if (!this.#d.available()) return;
      if (batch.ancestor) {
        // only gone directories whose path continues with a name this event mentions (or all, on a self event)
        const names = batch.names;
        const self = names === 'all' || names.has(path.basename(this.#d.resolver.abs(batch.dir)));
        const nameSet = names === 'all' ? undefined : names;
        const mentioned = (g: string) => self || !nameSet || nameSet.has(baseOf(childOf(batch.dir, g)));
        await this.recheckGone((g) => this.gone.get(g) === batch.dir && mentioned(g));
      }
      if (!batch.files) continue;
      const id = this.#d.index.dirId(batch.dir);
      if (id === undefined) continue;
      const dir = this.#d.index.dirs[id]!;
      const selfName = path.basename(this.#d.resolver.abs(batch.dir));
      const selfEvent = batch.names === 'all' || batch.names.has(selfName);
      if (selfEvent) {
        if (!(await this.#dirStillThere(batch.dir))) {
          await this.dirGone(batch.dir);
          continue;
        }
        await this.#observeDir(dir, source);
      }
      if (batch.names === 'all') continue;
      for (const name of batch.names) {
        const f = dir.files.get(name);
        if (f === undefined) unexpected.push(joinRel(batch.dir, name));
        else if (!selfEvent) await this.#observe(f, source);
      }
    }
    await this.#appearances(unexpected);
  }

  /** Unexpected names: pair with pending vanished files, or remember for the move window. */
  async #appearances(rels: string[]): Promise<void> {
    const now = performance.now();
    this.#recent = this.#recent.filter((r) => now - r.at <= this.#d.moveWindowMs);
    if (this.#d.tracker.hasPendingMoves()) {
      const candidates = [...this.#recent.map((r) => r.rel), ...rels];
      this.#recent = [];
      for (const rel of candidates) {
        const st = await this.#stat(rel);
        if (st) this.#d.tracker.pairAppearance(rel, st);
        if (!this.#d.tracker.hasPendingMoves()) break;
      }
      return;
    }
    for (const rel of rels) this.#recent.push({ rel, at: now });
    if (this.#recent.length > MAX_RECENT) this.#recent.splice(0, this.#recent.length - MAX_RECENT);
  }

  /** Nearest existing ancestor directory of `rel` ('' = root). */
  async #nearestExisting(rel: string): Promise<string> {
    let cur = rel;
    while (cur !== '') {
      cur = dirOf(cur);
      if (cur === '' || (await this.#stat(cur))) return cur;
    }
    return '';
  }

  /** The directory `rel` vanished or was replaced. */
  async dirGone(rel: string): Promise<void> {
    if (!(await this.#d.rootOk())) return this.#d.shareUnavailable('share root vanished');
    const source = this.#d.source();
    const lost: DirRecord[] = [];
    for (const dir of this.dirsUnder(rel)) {
      if (this.gone.has(dir.rel)) continue;
      if (dir.rel !== rel && (await this.#dirStillThere(dir.rel))) continue;
      this.#d.dirs.unwatch(dir.rel, 'files');
      lost.push(dir);
    }
    for (const dir of lost) await this.#observeDir(dir, source);
    await this.#pairMovedDir(rel);
    for (const dir of lost) {
      if (await this.#stat(dir.rel)) {
        // replaced by a new directory of the same name: watch the new one (if it is inside the share)
        await this.#regain(dir.rel);
      } else {
        await this.markGone(dir.rel);
      }
    }
  }

  #setWait(rel: string, ancestor: string | undefined): void {
    const previous = this.gone.get(rel);
    if (previous === ancestor) return;
    if (previous !== undefined) {
      const n = (this.#waits.get(previous) ?? 1) - 1;
      if (n > 0) this.#waits.set(previous, n);
      else {
        this.#waits.delete(previous);
        this.#d.dirs.unwatch(previous, 'ancestor');
      }
    }
    if (ancestor === undefined) {
      this.gone.delete(rel);
      return;
    }
    this.gone.set(rel, ancestor);
    this.#waits.set(ancestor, (this.#waits.get(ancestor) ?? 0) + 1);
  }

  /** Stop waiting for a directory (no longer expected, or back). */
  forgetGone(rel: string): void {
    this.#setWait(rel, undefined);
  }

  async #regain(rel: string): Promise<void> {
    const id = this.#d.index.dirId(rel);
    if (id === undefined) {
      this.forgetGone(rel);
      return;
    }
    const dir = this.#d.index.dirs[id]!;
    if (!(await this.#d.dirTrusted(rel))) {
      // a symlink out of the share took its place: not back. Never watch outside; wait on the
      // parent, whose events tell when the name changes again.
      if (!this.gone.has(rel)) {
        const parent = await this.#nearestExisting(rel);
        const { outcome, error } = this.#d.dirs.watch(parent, 'ancestor');
        this.#setWait(rel, parent);
        if (outcome === 'limit' || outcome === 'error') this.#d.onWatchError(error);
      }
      return this.#observeDir(dir, this.#d.source());
    }
    this.forgetGone(rel);
    this.#d.watchFilesDir(rel); // watch first, then stat: nothing slips between
    await this.#observeDir(dir, this.#d.source());
  }

  /**
   * Wait for a missing directory: watch its nearest existing ancestor. The next step
   * down may have appeared before that watch existed, so look once more after it.
   */
  async markGone(rel: string): Promise<void> {
    if (rel === '') return;
    for (let depth = 0; depth < 256; depth++) {
      const ancestor = await this.#nearestExisting(rel);
      const { outcome, error } = this.#d.dirs.watch(ancestor, 'ancestor');
      this.#setWait(rel, ancestor);
      if (outcome === 'limit' || outcome === 'error') {
        this.#d.onWatchError(error);
        return;
      }
      if (outcome === 'ok' && !(await this.#stat(childOf(ancestor, rel)))) return;
      if (await this.#stat(rel)) return this.#regain(rel);
    }
  }

  /** Re-check gone directories (all, or those matching `filter`): back → watch + re-stat. */
  async recheckGone(filter: (rel: string) => boolean = () => true): Promise<void> {
    const ancestorThere = new Map<string, boolean>();
    for (const [rel, ancestor] of [...this.gone]) {
      if (!filter(rel)) continue;
      if (this.#d.index.dirId(rel) === undefined) {
        this.forgetGone(rel);
        continue;
      }
      if (await this.#stat(rel)) {
        await this.#regain(rel);
        continue;
      }
      let there = ancestorThere.get(ancestor);
      if (there === undefined) ancestorThere.set(ancestor, (there = ancestor === '' || !!(await this.#stat(ancestor))));
      // Nothing changed on the way down from the watched ancestor: keep waiting there.
      if (there && !(await this.#stat(childOf(ancestor, rel)))) continue;
      await this.markGone(rel);
    }
  }

  /**
   * `rel` vanished: if its topmost missing ancestor M was renamed next to where it was,
   * the directory with M's dev+inode is its new name, and pending files under M that
   * are found there with their own dev+inode are reported as moved.
   */
  async #pairMovedDir(rel: string): Promise<void> {
    if (!this.#d.tracker.hasPendingMoves()) return;
    const now = performance.now();
    this.#searches = this.#searches.filter((t) => now - t < 1000);
    if (this.#searches.push(now) > MAX_DIR_MOVE_SEARCHES_PER_SECOND) return;
    const parent = await this.#nearestExisting(rel);
    const depth = parent === '' ? 1 : parent.split('/').length + 1;
    const moved = rel.split('/').slice(0, depth).join('/');
    const known = this.#d.dirInode(moved);
    if (!known) return;
    let entries;
    try {
      entries = await this.#d.fs.readdir(this.#d.resolver.abs(parent));
    } catch {
      return;
    }
    let newName: string | undefined;
    for (const entry of entries.slice(0, MAX_SIBLINGS)) {
      if (!entry.isDirectory()) continue;
      const candidate = joinRel(parent, entry.name);
      // a directory we already know is not the new name of the one that vanished
      if (candidate === moved || this.#d.index.dirId(candidate) !== undefined || this.#ancestors().has(candidate)) continue;
      const st = await this.#stat(candidate);
      if (st && st.dev === known.dev && st.ino === known.ino) {
        newName = candidate;
        break;
      }
    }
    if (newName === undefined) return;
    for (const dir of this.dirsUnder(moved)) {
      for (const f of dir.files.values()) {
        if (this.#d.index.status[f] !== FileStatus.pending) continue;
        const target = newName + this.#d.index.relPath(f).slice(moved.length);
        const st = await this.#stat(target);
        if (st) this.#d.tracker.pairAppearance(target, st);
      }
    }
  }

  /** The root watcher saw a top-level directory vanish or appear. */
  async topLevel(name: string, event: 'addDir' | 'unlinkDir'): Promise<void> {
    if (event === 'unlinkDir') {
      for (const dir of this.dirsUnder(name)) {
        if (this.#d.dirs.has(dir.rel, 'files') && !(await this.#dirStillThere(dir.rel))) await this.dirGone(dir.rel);
      }
    } else {
      await this.recheckGone((g) => g === name || g.startsWith(`${name}/`));
    }
  }

  clear(): void {
    for (const ancestor of this.#waits.keys()) this.#d.dirs.unwatch(ancestor, 'ancestor');
    this.#waits.clear();
    this.gone.clear();
    this.#recent = [];
  }

  /** For status(): gone directories (share-relative). */
  goneDirs(): string[] {
    return [...this.gone.keys()];
  }
}
