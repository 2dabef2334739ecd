/**
 * Path safety for share-relative names that come from CVAT. A name that is absolute,
 * has a `..` segment or a NUL byte is refused lexically; a name whose (nearest
 * existing) parent directory resolves outside the share root through a symlink is
 * refused after one lstat per directory (a realpath where that directory is a symlink).
 * Refused names are reported and never stat-ed, watched or listed.
 */
import path from 'node:path';
import type { EntryKind, GuardFs } from './fsio.js';
import { isAbsent } from './fsio.js';

import { dirOf } from '../core/rel-paths.js';

export { baseOf, checkName, dirOf, joinRel, type LexicalVerdict } from '../core/rel-paths.js';

/**
 * Decides, once per directory, whether a relative directory really lies inside the
 * share root (symlinks resolved). Missing directories are judged by their nearest
 * existing ancestor, so a file that is gone is still tracked (and reported missing).
 */
export class ShareRootResolver {
  readonly root: string;
  #realRoot: string | undefined;
  readonly #fs: GuardFs;
  readonly #cache = new Map<string, Promise<boolean>>();

  constructor(root: string, fs: GuardFs) {
    this.root = path.resolve(root);
    this.#fs = fs;
  }

  /** Absolute path of a share-relative path. Only call it for names that passed `checkName`. */
  abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  async realRoot(): Promise<string> {
    if (this.#realRoot === undefined) {
      try {
        this.#realRoot = await this.#fs.realpath(this.root);
      } catch {
        this.#realRoot = this.root;
      }
    }
    return this.#realRoot;
  }

  /** true when `relDir` (or its nearest existing ancestor) resolves inside the share root. */
  dirInside(relDir: string): Promise<boolean> {
    let verdict = this.#cache.get(relDir);
    if (!verdict) {
      verdict = this.#judge(relDir);
      this.#cache.set(relDir, verdict);
    }
    return verdict;
  }

  /**
   * Where `relDir` resolves right now (no cache): 'inside', 'absent' (judge by its
   * files), or the outside real path it escapes to. Directories can be swapped for a
   * symlink while guarded, so watch events and scans ask again.
   */
  async resolveNow(relDir: string): Promise<'inside' | 'absent' | { outside: string }> {
    if (relDir === '') return 'inside';
    const realRoot = await this.realRoot();
    try {
      const real = await this.#fs.realpath(this.abs(relDir));
      return real === realRoot || real.startsWith(realRoot.endsWith('/') ? realRoot : `${realRoot}/`) ? 'inside' : { outside: real };
    } catch (error) {
      return isAbsent(error) ? 'absent' : { outside: `(unresolvable: ${(error as { code?: string }).code ?? 'error'})` };
    }
  }

  /** Forget cached verdicts (after the share came back, symlinks may differ). */
  reset(): void {
    this.#cache.clear();
    this.#realRoot = undefined;
  }

  async #judge(relDir: string): Promise<boolean> {
    if (relDir === '') return true;
    // A directory that is not a symlink, in a directory inside the root, is inside: one lstat
    // here, where realpath(3) read every component of the path again (0.35 s of the main
    // thread for 10,000 directories, profiled). A symlink or anything else: realpath says.
    let kind: EntryKind | null | 'error';
    try {
      kind = await this.#fs.entryKind(this.abs(relDir));
    } catch {
      kind = 'error';
    }
    if (kind === 'directory' || kind === null) return this.dirInside(dirOf(relDir));
    const realRoot = await this.realRoot();
    try {
      const real = await this.#fs.realpath(this.abs(relDir));
      return real === realRoot || real.startsWith(realRoot.endsWith('/') ? realRoot : `${realRoot}/`);
    } catch (error) {
      // ELOOP and friends: refuse. ENOENT (gone since the lstat): judge by the parent.
      if (!isAbsent(error)) return false;
      return this.dirInside(dirOf(relDir));
    }
  }
}
