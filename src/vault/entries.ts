/**
 * The vault's entries on disk, and the one rule for touching them: an entry is made with
 * link(2) (reflink: a clone to a temp name, linked in) and never replaces anything; it
 * is the vault's own only when it is a regular file on the vault's device with the inode
 * the records name, reached without following a symlink; only such an entry is replaced
 * or removed, and only empty folders go with it. Anything else is counted
 * (`cvat_warden_vault_entries_not_owned_total`) and left alone.
 */
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { VaultMode } from '../domain.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { codeOf, type VaultFs } from './fsops.js';
import { VaultLayout, type VaultRecord } from './layout.js';
import { OWN_DIR_MODE, relDirOf, sameContent, stillExactly, walkDirNoFollow } from './safe-path.js';

/** Paths named in a log line at most (the count is exact). */
const LOGGED_PATHS = 20;

export interface VaultEntriesOptions {
  layout: VaultLayout;
  /** The device the vault was made on: an entry on another one is never the vault's. */
  dev: number;
  mode: VaultMode;
  fs: VaultFs;
  /** Absolute path of a share-relative file on the share. */
  sourceOf: (rel: string) => string;
  logger: Logger;
  metrics?: Metrics | undefined;
}

export class VaultEntries {
  readonly #o: VaultEntriesOptions;
  readonly layout: VaultLayout;
  readonly #madeDirs = new Set<string>();
  /** Folders re-checked (no symlink on the way) during the current task upsert. */
  readonly #checkedDirs = new Map<string, Promise<boolean>>();
  readonly #notHeld = new Set<string>();
  #notOwned = 0;

  constructor(o: VaultEntriesOptions) {
    this.#o = o;
    this.layout = o.layout;
  }

  /** Expected files the vault could not take (the original was already gone, or an error). */
  get notHeld(): number {
    return this.#notHeld.size;
  }

  /** Vault paths left alone because the entry there is not the one the vault made. */
  get notOwned(): number {
    return this.#notOwned;
  }

  /** A new task upsert: each folder is re-checked once in it. */
  beginUpsert(): void {
    this.#checkedDirs.clear();
  }

  /** No task expects `rel` any more: it no longer counts as not held. */
  noLongerExpected(rel: string): void {
    this.#notHeld.delete(rel);
  }

  /** The vault directory of `rel`, walked (and made, 0700) without following a symlink; cached per directory. */
  async #vaultDirFor(rel: string): Promise<string | undefined> {
    const relDir = relDirOf(rel);
    const abs = relDir === '' ? this.layout.root : `${this.layout.root}/${relDir}`;
    if (this.#madeDirs.has(abs)) return abs;
    const walk = await walkDirNoFollow(this.layout.root, relDir, { create: true, mode: OWN_DIR_MODE });
    if (!walk.ok) {
      this.#notOwnedSeen(rel, walk.reason);
      return undefined;
    }
    this.#madeDirs.add(abs);
    return abs;
  }

  /**
   * The vault's folders are 0700 and its own: one realpath per folder per task upsert
   * re-checks that none became a symlink (one per file cost 2× the vault's build time).
   */
  async #dirStillExactly(dir: string): Promise<boolean> {
    let verdict = this.#checkedDirs.get(dir);
    if (!verdict) this.#checkedDirs.set(dir, (verdict = stillExactly(dir)));
    return verdict;
  }

  /** lstat of the vault entry of `rel`, reached without following a symlink; null when absent or unreachable. */
  async stat(rel: string): Promise<Stats | null> {
    const relDir = relDirOf(rel);
    const walk = await walkDirNoFollow(this.layout.root, relDir, { create: false }).catch(() => ({ ok: false }) as const);
    if (!walk.ok) return null;
    return fs.lstat(this.layout.file(rel)).catch(() => null);
  }

  owns(st: Stats | null, ino: number | null | undefined): boolean {
    return st !== null && st.isFile() && st.dev === this.#o.dev && ino !== null && ino !== undefined && st.ino === ino;
  }

  #notOwnedSeen(rel: string, why: string): void {
    this.#notOwned++;
    this.#o.metrics?.vaultNotOwned.inc();
    if (this.#notOwned <= LOGGED_PATHS) this.#o.logger.warn({ path: rel, why }, 'vault: an entry there is not the one the vault made: left alone');
    else if (this.#notOwned === LOGGED_PATHS + 1)
      this.#o.logger.warn('vault: more entries not made by the vault; see cvat_warden_vault_entries_not_owned_total');
  }

  /**
   * Makes the vault entry of one share file; the entry's inode when the vault holds it
   * afterwards (made now, or made before as its records say), else null.
   */
  async keep(rel: string, recorded: number | null | undefined): Promise<number | null> {
    if (VaultLayout.reserved(rel)) return null;
    const source = this.#o.sourceOf(rel);
    const target = this.layout.file(rel);
    const dir = await this.#vaultDirFor(rel).catch((error: unknown) => {
      this.#o.logger.warn({ path: rel, code: codeOf(error) }, 'vault: cannot make the folder of a share file');
      return undefined;
    });
    if (dir === undefined) {
      this.#notHeld.add(rel);
      return null;
    }
    try {
      if (!(await this.#dirStillExactly(dir))) {
        this.#madeDirs.delete(dir);
        this.#notHeld.add(rel);
        this.#notOwnedSeen(rel, 'a folder on the way became a symlink');
        return null;
      }
      if (this.#o.mode === 'link') await this.#o.fs.link(source, target);
      else {
        // Clone to a temp name first (a kill -9 mid-copy must not leave half a file at `target`),
        // then link(2) it in: atomic, and EEXIST instead of replacing a copy already held.
        const tmp = this.layout.tmpName();
        try {
          await this.#o.fs.reflink(source, tmp);
          await fs.link(tmp, target);
        } finally {
          await fs.rm(tmp, { force: true });
        }
      }
      const made = await fs.lstat(target);
      if (!made.isFile()) {
        // link(2) links a symlink itself, not its target: a share "file" that is a symlink is not kept.
        await fs.unlink(target).catch(() => undefined);
        this.#notHeld.add(rel);
        this.#o.logger.warn({ path: rel }, 'vault: the share file is not a regular file (a symlink?): not kept');
        return null;
      }
      this.#notHeld.delete(rel);
      return made.ino;
    } catch (error) {
      return this.#afterKeepFailed(rel, source, target, recorded, error);
    }
  }

  async #afterKeepFailed(rel: string, source: string, target: string, recorded: number | null | undefined, error: unknown): Promise<number | null> {
    const code = codeOf(error);
    const [src, held] = await Promise.all([fs.lstat(source).catch(() => null), fs.lstat(target).catch(() => null)]);
    if (held && code === 'EEXIST') {
      let ours = this.owns(held, recorded);
      // Recorded as an intent (a kill fell between the link and the records): ours if it is the very file.
      if (!ours && recorded === null && held.isFile() && held.dev === this.#o.dev && src?.isFile())
        ours = this.#o.mode === 'link' ? held.ino === src.ino : await sameContent(target, source).catch(() => false);
      if (!ours) {
        this.#notHeld.add(rel);
        this.#notOwnedSeen(rel, held.isSymbolicLink() ? 'a symlink' : held.isFile() ? 'a file the vault did not make' : 'not a regular file');
        return null;
      }
      // Ours. In link mode follow a replaced original (a hard link cannot keep old content
      // worth trusting over what CVAT now reads); a reflink copy keeps the first version it saw.
      if (this.#o.mode === 'link' && src?.isFile() && (src.ino !== held.ino || src.dev !== held.dev)) {
        const tmp = this.layout.tmpName();
        await this.#o.fs.link(source, tmp);
        // Replace only what is still ours, reached without a symlink.
        const again = await fs.lstat(target).catch(() => null);
        if (!this.owns(again, held.ino) || !(await stillExactly(path.dirname(target)))) {
          await fs.unlink(tmp).catch(() => undefined);
          this.#notOwnedSeen(rel, 'replaced while the vault followed the share file');
          return null;
        }
        await fs.rename(tmp, target);
        this.#o.logger.info({ path: rel }, 'vault: the share file was replaced; the vault now keeps the new one');
        this.#notHeld.delete(rel);
        return src.ino;
      }
      this.#notHeld.delete(rel);
      return held.ino;
    }
    this.#notHeld.add(rel);
    if (!src) this.#o.logger.warn({ path: rel }, 'vault: share file already missing, nothing to keep');
    else {
      this.#o.metrics?.vaultErrors.inc();
      this.#o.logger.warn({ path: rel, code }, 'vault: could not keep a share file');
    }
    return null;
  }

  /** Unlinks the entry of `r` only if it is the one the vault made. True when removed. */
  async removeOwned(r: VaultRecord): Promise<boolean> {
    const st = await this.stat(r.rel);
    if (st === null) return false;
    if (!this.owns(st, r.ino)) {
      this.#notOwnedSeen(r.rel, r.ino === null || r.ino === undefined ? 'no inode recorded for it' : 'not the entry the vault made');
      return false;
    }
    const dir = path.dirname(this.layout.file(r.rel));
    const again = await fs.lstat(this.layout.file(r.rel)).catch(() => null);
    if (!this.owns(again, r.ino) || !(await stillExactly(dir))) {
      this.#notOwnedSeen(r.rel, 'changed while being removed');
      return false;
    }
    try {
      await fs.unlink(this.layout.file(r.rel));
    } catch (error) {
      if (codeOf(error) !== 'ENOENT') this.#o.logger.warn({ path: r.rel, code: codeOf(error) }, 'vault: could not prune');
      return false;
    }
    await this.#removeEmptyParents(dir);
    return true;
  }

  /** rmdir (empty directories only) from `dir` up to, not including, the vault root. */
  async #removeEmptyParents(dir: string): Promise<void> {
    const root = this.layout.root;
    while (dir.startsWith(`${root}/`) && dir !== this.layout.metaDir) {
      const st = await fs.lstat(dir).catch(() => null);
      if (!st?.isDirectory()) return;
      try {
        await fs.rmdir(dir);
      } catch {
        return;
      }
      this.#madeDirs.delete(dir);
      dir = path.dirname(dir);
    }
  }
}
