/**
 * Path resolution that never follows a symlink out of a root: the discipline of rsync's
 * `--safe-links` and openat-style resolution, with what Node offers (no openat/linkat).
 *
 * Every directory between a root and the place the warden writes, links or deletes is
 * looked at with lstat, one component at a time: a symlink (dangling or not) or a
 * non-directory there is refused, never followed. Right before the link(2) or unlink(2)
 * the caller asks `stillExactly` (realpath of the parent must be the path it walked):
 * what remains is the microseconds between that check and the syscall, which only a
 * process that can write in that directory could use — and the warden's own directories
 * are 0700 (see `OWN_DIR_MODE`).
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { codeOf } from './fsops.js';

/** Mode of every directory the vault creates: nobody else may swap its entries for symlinks. */
export const OWN_DIR_MODE = 0o700;

/** Directory part of a normalised share-relative path ('' at the top). */
export function relDirOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export type Walk = { ok: true } | { ok: false; reason: string; missing?: boolean };

/**
 * Walks `relDir` (a normalised share-relative directory, '' for the root) below `root`
 * without following symlinks. With `create`, missing components are made (`mode`);
 * without, a missing component ends the walk with `missing: true`.
 */
export async function walkDirNoFollow(root: string, relDir: string, o: { create: boolean; mode?: number }): Promise<Walk> {
  let current = root;
  let walked = '';
  for (const segment of relDir === '' ? [] : relDir.split('/')) {
    current = `${current}/${segment}`;
    walked = walked === '' ? segment : `${walked}/${segment}`;
    let st = await fs.lstat(current).catch((error: unknown) => {
      if (codeOf(error) === 'ENOENT') return null;
      throw error;
    });
    if (!st) {
      if (!o.create) return { ok: false, reason: `${walked} does not exist`, missing: true };
      try {
        await fs.mkdir(current, o.mode !== undefined ? { mode: o.mode } : {});
      } catch (error) {
        if (codeOf(error) !== 'EEXIST') return { ok: false, reason: `${walked} cannot be created (${codeOf(error)})` };
      }
      // Judge what is there now: someone may have put a symlink in its place meanwhile.
      st = await fs.lstat(current);
    }
    if (st.isSymbolicLink()) return { ok: false, reason: `${walked} is a symlink (not followed)` };
    if (!st.isDirectory()) return { ok: false, reason: `${walked} is not a directory` };
  }
  return { ok: true };
}

/** True when `dirAbs` resolves to exactly itself: no component of it is a symlink right now. */
export async function stillExactly(dirAbs: string): Promise<boolean> {
  return (await fs.realpath(dirAbs).catch(() => null)) === dirAbs;
}

/**
 * The first component of an absolute path that is a symlink (walking from `/`), or
 * undefined. Components that do not exist end the walk: nothing below them can be one.
 */
export async function firstSymlinkIn(absPath: string): Promise<string | undefined> {
  const parts = path.resolve(absPath).split('/').filter(Boolean);
  let current = '';
  for (const part of parts) {
    current = `${current}/${part}`;
    const st = await fs.lstat(current).catch(() => null);
    if (!st) return undefined;
    if (st.isSymbolicLink()) return current;
  }
  return undefined;
}

/**
 * Opens a file for reading only if it is a regular file: O_NOFOLLOW refuses a symlink
 * at the last component, O_NONBLOCK keeps a FIFO from blocking the open, and fstat on
 * the descriptor judges the file actually opened (no stat-then-open race).
 */
export async function openRegularNoFollow(file: string): Promise<fs.FileHandle> {
  const handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw Object.assign(new Error(`${file} is not a regular file`), { code: 'ENOTREG' });
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** Byte-for-byte comparison of two regular files in 64 KiB steps (never a whole file in memory). */
export async function sameContent(a: string, b: string): Promise<boolean> {
  const x = await openRegularNoFollow(a);
  try {
    const y = await openRegularNoFollow(b);
    try {
      const bx = Buffer.alloc(64 * 1024);
      const by = Buffer.alloc(64 * 1024);
      // Bounded by the files' sizes: each step reads 64 KiB more of both, and stops at the shorter end.
      for (let pos = 0; ; pos += bx.length) {
        const [rx, ry] = await Promise.all([x.read(bx, 0, bx.length, pos), y.read(by, 0, by.length, pos)]);
        if (rx.bytesRead !== ry.bytesRead || !bx.subarray(0, rx.bytesRead).equals(by.subarray(0, ry.bytesRead))) return false;
        if (rx.bytesRead === 0) return true;
      }
    } finally {
      await y.close();
    }
  } finally {
    await x.close();
  }
}
