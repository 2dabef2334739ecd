/**
 * The filesystem calls the guard makes, behind one small interface so tests can
 * count stats (path-safety: a rejected name must never be stat-ed) and inject
 * watcher failures (ENOSPC, an `error` on a live watcher) without mocking node:fs.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { FileStat } from '../types.js';

/** What `watch` returns: node's FSWatcher satisfies it. */
export interface DirWatcher {
  close(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export type WatchListener = (eventType: string, filename: string | null) => void;

/** What a path is itself, its last component not followed (lstat). */
export type EntryKind = 'directory' | 'symlink' | 'other';

export interface GuardFs {
  /** stat (follows symlinks, as CVAT's open() does); null when the path does not exist (ENOENT/ENOTDIR). */
  stat(path: string): Promise<FileStat | null>;
  statSync(path: string): FileStat | null;
  /** Entries of a directory with their types; throws on error. */
  readdir(path: string): Promise<fs.Dirent[]>;
  realpath(path: string): Promise<string>;
  /** realpath(3) on this thread: on a local disk a sync call is ~20× cheaper than a trip through libuv's pool. */
  realpathSync(path: string): string;
  /** lstat's verdict on a path; null when it does not exist (ENOENT/ENOTDIR); throws on other errors. */
  entryKind(path: string): Promise<EntryKind | null>;
  /** As entryKind, on this thread (local disks, as realpathSync). */
  entryKindSync(path: string): EntryKind | null;
  /** Non-recursive directory watch (node `fs.watch`); may throw (ENOSPC, ENOENT). */
  watch(path: string, listener: WatchListener, options: { persistent: boolean }): DirWatcher;
  /** true when the directory exists and is readable + searchable. */
  accessibleDir(path: string): Promise<boolean>;
}

/**
 * node's Stats already has the four fields: hand it over without a copy (a scan makes
 * a million of them, and a copying site that also produced long-lived objects would be
 * pretenured by V8, sending every scan's garbage to the old generation). Whoever keeps
 * a stat beyond the current call copies it with `copyStat`.
 */
function toStat(st: fs.Stats): FileStat {
  return st;
}

/** A plain, JSON-friendly copy of the four fields, for anything that outlives the call. */
export function copyStat(st: FileStat): FileStat {
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev };
}

function isAbsent(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function kindOf(st: fs.Stats): EntryKind {
  return st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
}

/** The call's value, null when the path does not exist (ENOENT/ENOTDIR); other errors are thrown. */
async function unlessAbsent<T>(call: Promise<T>): Promise<T | null> {
  try {
    return await call;
  } catch (error) {
    if (isAbsent(error)) return null;
    throw error;
  }
}

/** As unlessAbsent, for a sync call; throwIfNoEntry:false avoids building an Error for every missing file during big scans. */
function unlessAbsentSync<T>(call: (options: { throwIfNoEntry: false }) => T | undefined): T | null {
  try {
    return call({ throwIfNoEntry: false }) ?? null;
  } catch (error) {
    if (isAbsent(error)) return null;
    throw error;
  }
}

export const nodeFs: GuardFs = {
  async stat(path) {
    const st = await unlessAbsent(fsp.stat(path));
    return st && toStat(st);
  },
  statSync(path) {
    const st = unlessAbsentSync((options) => fs.statSync(path, options));
    return st && toStat(st);
  },
  readdir(path) {
    return fsp.readdir(path, { withFileTypes: true });
  },
  realpath(path) {
    return fsp.realpath(path);
  },
  realpathSync(path) {
    return fs.realpathSync.native(path);
  },
  async entryKind(path) {
    const st = await unlessAbsent(fsp.lstat(path));
    return st && kindOf(st);
  },
  entryKindSync(path) {
    const st = unlessAbsentSync((options) => fs.lstatSync(path, options));
    return st && kindOf(st);
  },
  watch(path, listener, options) {
    return fs.watch(path, { persistent: options.persistent, recursive: false }, (eventType, filename) => listener(eventType, filename));
  },
  async accessibleDir(path) {
    try {
      const st = await fsp.stat(path);
      if (!st.isDirectory()) return false;
      await fsp.access(path, fs.constants.R_OK | fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
};

/** The real filesystem with some calls replaced (tests). */
export function withFs(overrides: Partial<GuardFs> | undefined): GuardFs {
  return overrides ? { ...nodeFs, ...overrides } : nodeFs;
}

/** The directory is a mount point (its device differs from its parent's). */
export function isMountPoint(fs: GuardFs, dir: string): boolean {
  try {
    const self = fs.statSync(dir);
    const parent = fs.statSync(path.dirname(dir));
    return !!self && !!parent && self.dev !== parent.dev;
  } catch {
    return false;
  }
}

/**
 * The share root is usable: a readable directory and, when it was a mount point at
 * start-up, still mounted (an unmounted mount point is an empty directory of the parent).
 */
export async function rootHealthy(fs: GuardFs, root: string, wasMountPoint: boolean): Promise<boolean> {
  if (!(await fs.accessibleDir(root))) return false;
  return !wasMountPoint || isMountPoint(fs, root);
}

/** The `code` of a thrown value, or 'UNKNOWN'. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

export { isAbsent };
