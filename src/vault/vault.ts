/**
 * The vault: for every share file a guarded task reads, a hard link (or, with
 * `--vault-mode reflink`, a copy-on-write clone) under the vault directory at the same
 * share-relative path. A link costs no data blocks while the original exists and keeps
 * the content alive when someone deletes the original or moves it away; `restore` puts
 * it back. It is fed the same GuardTask records as the guard and builds its expected
 * file list with the guard's own index code, so both agree on which files matter.
 *
 * It touches only what it made: each entry's inode is recorded in the task's records
 * (layout.ts) — first as an intent (inode null) before the link(2), then with the
 * inode — and an entry is deleted or replaced only when the file at that path, reached
 * without following a symlink, is a regular file on the vault's device with the
 * recorded inode. Anything else is reported (`cvat_warden_vault_entries_not_owned_total`)
 * and left alone. Directories are removed only when empty (rmdir), only on the way up
 * from an entry it removed.
 *
 * Bounded: a task's links go when CVAT deletes the task or stops referencing a file,
 * and `sweep()` (after a complete discovery) removes the entries of tasks gone while
 * the warden was down.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { VaultMode } from '../domain.js';
import { ConfigError, describeError } from '../errors.js';
import { addTaskToIndex, DirLister, nodeFs, ShareIndex, ShareRootResolver, taskSignature, type GuardTask } from '../guard/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { codeOf, withVaultFs, type VaultFs } from './fsops.js';
import { META_DIR, VaultLayout, type VaultMeta, type VaultRecord } from './layout.js';
import { OWN_DIR_MODE, relDirOf, sameContent, stillExactly, walkDirNoFollow } from './safe-path.js';
import { checkVaultSetup } from './setup.js';

export interface VaultOptions {
  shareDir: string;
  vaultDir: string;
  mode: VaultMode;
  logger: Logger;
  metrics?: Metrics;
  /** Links in flight (libuv threads do the work). @default 32 */
  concurrency?: number;
  fs?: Partial<VaultFs>;
}

export interface VaultStatus {
  dir: string;
  mode: VaultMode;
  tasks: number;
  files: number;
  /** Expected files the vault could not take (the original was already gone, or an error). */
  notHeld: number;
  /** Vault paths left alone because the entry there is not the one the vault made. */
  notOwned: number;
  /** Bytes of vault entries whose original is gone (link count 1 / original missing), as of the last measure. */
  vaultOnlyBytes: number;
  vaultOnlyFiles: number;
  lastMeasuredAt: string | null;
  /** Set when the vault stopped because of where it is (a configuration error). */
  refused: string | null;
}

/** Paths named in a log line at most (the count is exact). */
const LOGGED_PATHS = 20;

async function runLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Share-relative media names of a task (frames, the video), as CVAT lists them. */
function mediaNames(task: GuardTask): string[] {
  return (task.meta.frames ?? []).map((f) => f.name.replace(/^\/+/, ''));
}

export class Vault {
  readonly layout: VaultLayout;
  readonly mode: VaultMode;
  /** Share-relative location of the vault inside the share, which the guard must skip. */
  readonly prefixInShare: string | undefined;
  readonly meta: VaultMeta;
  readonly #o: VaultOptions;
  readonly #fs: VaultFs;
  readonly #resolver: ShareRootResolver;
  readonly #index = new ShareIndex();
  /** Inode of the entry the vault made, per index slot (NaN: none known to be ours). */
  #ino = new Float64Array(0);
  readonly #madeDirs = new Set<string>();
  /** Folders re-checked (no symlink on the way) during the current task upsert. */
  readonly #checkedDirs = new Map<string, Promise<boolean>>();
  #notHeld = new Set<string>();
  #notOwned = 0;
  #work: Promise<void> = Promise.resolve();
  #closed = false;
  #refused: string | undefined;
  #vaultOnly = { bytes: 0, files: 0, at: null as number | null };

  private constructor(o: VaultOptions, layout: VaultLayout, prefixInShare: string | undefined, meta: VaultMeta) {
    this.#o = o;
    this.#fs = withVaultFs(o.fs);
    this.layout = layout;
    this.mode = o.mode;
    this.prefixInShare = prefixInShare;
    this.meta = meta;
    this.#resolver = new ShareRootResolver(o.shareDir, nodeFs);
  }

  /** Checks the setup (ConfigError on a wrong one), removes temp names a killed process left, records the mode. */
  static async open(o: VaultOptions): Promise<Vault> {
    const setup = await checkVaultSetup(o.shareDir, o.vaultDir, o.mode, withVaultFs(o.fs));
    let meta = setup.meta;
    if (meta.mode !== o.mode) {
      o.logger.warn({ was: meta.mode, now: o.mode }, 'vault mode changed: existing entries stay as they are, new ones follow the new mode');
      meta = { ...meta, mode: o.mode };
      await setup.layout.writeAtomic(setup.layout.metaFile, JSON.stringify(meta), { durable: true });
    }
    if (meta.share.ino !== (await fs.stat(setup.shareRoot)).ino)
      o.logger.warn(
        { vault: setup.layout.root, madeFor: meta.share.root, share: setup.shareRoot },
        'the vault was made for another share directory (same filesystem, other inode): it keeps only the links its records name',
      );
    const vault = new Vault(o, setup.layout, setup.prefixInShare, meta);
    if (setup.legacy) await vault.#adoptLegacy();
    o.logger.info({ vault: setup.layout.root, mode: o.mode, insideShare: setup.prefixInShare ?? null, id: meta.id }, 'vault ready');
    return vault;
  }

  /**
   * An earlier cvat-warden (format 1) recorded paths but no inodes. Its task lists are
   * its own records: the regular files at those paths are adopted with their inodes
   * now, once; anything else there stays unowned.
   */
  async #adoptLegacy(): Promise<void> {
    let adopted = 0;
    for (const taskId of await this.layout.manifestTaskIds()) {
      const read = await this.layout.readManifest(taskId);
      if (!read) continue;
      const records: VaultRecord[] = [];
      for (const r of read.records) {
        const st = await this.#entryStat(r.rel);
        records.push({ rel: r.rel, ino: st?.isFile() ? st.ino : null });
        if (st?.isFile()) adopted++;
      }
      await this.layout.writeManifest(taskId, records);
    }
    this.#o.logger.info({ adopted }, 'vault of an earlier cvat-warden: its recorded entries adopted with their inodes (format 2)');
  }

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#work.then(() => (this.#closed || this.#refused !== undefined ? (undefined as T) : job()));
    this.#work = run.then(
      () => undefined,
      (error: unknown) => {
        if (!(error instanceof ConfigError)) this.#o.logger.error({ err: describeError(error) }, 'vault step failed');
      },
    );
    return run;
  }

  /** Link the files of a share task (new or changed); unchanged tasks cost nothing. Rejects with a ConfigError when the vault is misplaced for this task. */
  upsert(task: GuardTask): Promise<void> {
    return this.#enqueue(() => this.#upsert(task));
  }

  /** CVAT deleted these tasks: their links go, unless another task reads the same file. */
  remove(taskIds: readonly number[]): Promise<void> {
    return this.#enqueue(async () => {
      for (const taskId of taskIds) {
        await this.#prune(this.#drop(taskId));
        await fs.rm(this.layout.manifest(taskId), { force: true });
      }
    });
  }

  /** Forgets a task in the index; returns its files no other task reads, with the inode the vault made for each. */
  #drop(taskId: number): VaultRecord[] {
    const orphans: VaultRecord[] = [];
    this.#index.removeTask(taskId, (f) => {
      const ino = this.#ino[f];
      orphans.push({ rel: this.#index.relPath(f), ino: ino === undefined || Number.isNaN(ino) ? null : ino });
      if (f < this.#ino.length) this.#ino[f] = NaN;
    });
    return orphans;
  }

  #setIno(f: number, ino: number): void {
    if (f >= this.#ino.length) {
      const next = new Float64Array(Math.max(f + 1, this.#ino.length * 2, 1024)).fill(NaN);
      next.set(this.#ino);
      this.#ino = next;
    }
    this.#ino[f] = ino;
  }

  #knownIno(f: number): number | null {
    const ino = this.#ino[f];
    return ino === undefined || Number.isNaN(ino) ? null : ino;
  }

  /**
   * The vault must not hold files a task expects, nor sit inside a folder of the share
   * that holds them (a task created from that folder would take in the vault's links).
   */
  #placementProblem(task: GuardTask): string | undefined {
    const prefix = this.prefixInShare;
    if (prefix === undefined) return undefined;
    for (const rel of mediaNames(task)) {
      if (rel === prefix || rel.startsWith(`${prefix}/`))
        return `task ${task.taskId} reads ${rel}, which lies inside the vault: the vault must be a directory of its own, e.g. --vault <share>/.cvat-warden-vault`;
      const dir = relDirOf(rel);
      if (dir !== '' && (prefix.startsWith(`${dir}/`) || prefix === dir))
        return `the vault lies inside ${dir}, a folder task ${task.taskId} reads its media from: put it at the top of the share, e.g. --vault <share>/.cvat-warden-vault`;
    }
    return undefined;
  }

  async #upsert(task: GuardTask): Promise<void> {
    const problem = this.#placementProblem(task);
    if (problem !== undefined) {
      this.#refused = problem;
      this.#o.logger.error({ vault: this.layout.root, taskId: task.taskId }, `vault refused: ${problem}`);
      throw new ConfigError([`vault ${this.layout.root}: ${problem}`]);
    }
    const existing = this.#index.tasks.get(task.taskId);
    const signature = taskSignature(task);
    if (existing?.signature === signature) return;
    // What the vault recorded for this task before (a restart, or the task's previous version).
    const previous = new Map<string, number | null | undefined>();
    for (const r of (await this.layout.readManifest(task.taskId))?.records ?? []) previous.set(r.rel, r.ino);
    const orphans = existing ? this.#drop(task.taskId) : [];
    // What memory knows of an entry is newer than the records on disk (an intent may still say null).
    for (const o of orphans) if (o.ino !== null) previous.set(o.rel, o.ino);
    const ignoredPrefixes = [META_DIR, ...(this.prefixInShare !== undefined ? [this.prefixInShare] : [])];
    const result = await addTaskToIndex(this.#index, task, {
      fs: nodeFs,
      resolver: this.#resolver,
      lister: new DirLister(nodeFs, (rel) => this.#resolver.abs(rel)),
      includeUnknownStorage: false,
      ignoredPrefixes,
    });
    if (!result.indexed) {
      await this.#prune(orphans);
      return;
    }
    const started = performance.now();
    this.#checkedDirs.clear();
    const fileIds = result.indexed.fileIds;
    const records = () => {
      const out = new Map<string, VaultRecord>();
      for (const f of fileIds) {
        const rel = this.#index.relPath(f);
        out.set(rel, { rel, ino: this.#knownIno(f) ?? previous.get(rel) ?? null });
      }
      return out.values();
    };
    // The intent first: a kill between a link(2) and the final records leaves an entry its records still name.
    await this.layout.writeManifest(task.taskId, records());
    let linked = 0;
    await runLimited(result.created, this.#o.concurrency ?? 32, async (f) => {
      const rel = this.#index.relPath(f);
      const ino = await this.#keep(rel, previous.get(rel));
      if (ino !== null) {
        this.#setIno(f, ino);
        linked++;
      }
    });
    await this.#prune(orphans);
    await this.layout.writeManifest(task.taskId, records());
    this.#o.metrics?.vaultFiles.set(this.#index.liveFiles - this.#notHeld.size);
    if (result.created.length)
      this.#o.logger.info(
        { taskId: task.taskId, files: fileIds.length, linked, notHeld: result.created.length - linked, ms: Math.round(performance.now() - started) },
        'vault: task files kept',
      );
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
  async #entryStat(rel: string): Promise<import('node:fs').Stats | null> {
    const relDir = relDirOf(rel);
    const walk = await walkDirNoFollow(this.layout.root, relDir, { create: false }).catch(() => ({ ok: false }) as const);
    if (!walk.ok) return null;
    return fs.lstat(this.layout.file(rel)).catch(() => null);
  }

  #owns(st: import('node:fs').Stats | null, ino: number | null | undefined): boolean {
    return st !== null && st.isFile() && st.dev === this.meta.dev && ino !== null && ino !== undefined && st.ino === ino;
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
  async #keep(rel: string, recorded: number | null | undefined): Promise<number | null> {
    if (VaultLayout.reserved(rel)) return null;
    const source = this.#resolver.abs(rel);
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
      if (this.mode === 'link') await this.#fs.link(source, target);
      else {
        // Clone to a temp name first (a kill -9 mid-copy must not leave half a file at `target`),
        // then link(2) it in: atomic, and EEXIST instead of replacing a copy already held.
        const tmp = this.layout.tmpName();
        try {
          await this.#fs.reflink(source, tmp);
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
      let ours = this.#owns(held, recorded);
      // Recorded as an intent (a kill fell between the link and the records): ours if it is the very file.
      if (!ours && recorded === null && held.isFile() && held.dev === this.meta.dev && src?.isFile())
        ours = this.mode === 'link' ? held.ino === src.ino : await sameContent(target, source).catch(() => false);
      if (!ours) {
        this.#notHeld.add(rel);
        this.#notOwnedSeen(rel, held.isSymbolicLink() ? 'a symlink' : held.isFile() ? 'a file the vault did not make' : 'not a regular file');
        return null;
      }
      // Ours. In link mode follow a replaced original (a hard link cannot keep old content
      // worth trusting over what CVAT now reads); a reflink copy keeps the first version it saw.
      if (this.mode === 'link' && src?.isFile() && (src.ino !== held.ino || src.dev !== held.dev)) {
        const tmp = this.layout.tmpName();
        await this.#fs.link(source, tmp);
        // Replace only what is still ours, reached without a symlink.
        const again = await fs.lstat(target).catch(() => null);
        if (!this.#owns(again, held.ino) || !(await stillExactly(path.dirname(target)))) {
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

  /** Removes the vault's own entries of files no task references any more, and the directories this leaves empty. */
  async #prune(records: readonly VaultRecord[]): Promise<number> {
    let pruned = 0;
    for (const r of records) {
      if (this.#index.lookup(r.rel) !== undefined || VaultLayout.reserved(r.rel)) continue;
      this.#notHeld.delete(r.rel);
      if (await this.#removeOwned(r)) pruned++;
    }
    if (pruned) {
      this.#o.metrics?.vaultPruned.inc(pruned);
      this.#o.logger.info({ pruned }, 'vault: links of files no task needs any more removed');
    }
    return pruned;
  }

  /** Unlinks the entry of `r` only if it is the one the vault made. True when removed. */
  async #removeOwned(r: VaultRecord): Promise<boolean> {
    const st = await this.#entryStat(r.rel);
    if (st === null) return false;
    if (!this.#owns(st, r.ino)) {
      this.#notOwnedSeen(r.rel, r.ino === null || r.ino === undefined ? 'no inode recorded for it' : 'not the entry the vault made');
      return false;
    }
    const dir = path.dirname(this.layout.file(r.rel));
    const again = await fs.lstat(this.layout.file(r.rel)).catch(() => null);
    if (!this.#owns(again, r.ino) || !(await stillExactly(dir))) {
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

  /**
   * After a complete discovery: forget the records of tasks CVAT no longer lists (deleted
   * while the warden was down) and remove the entries they made that no remaining task
   * references. `keep(taskId)` says which tasks CVAT still has (listed, even if this pass
   * could not read them). Files in the vault that no record names are counted, not touched.
   */
  sweep(keep: (taskId: number) => boolean): Promise<{ prunedFiles: number; prunedTasks: number; unrecorded: number; damagedRecords: number }> {
    return this.#enqueue(async () => {
      const wanted = new Set<string>();
      const gone: VaultRecord[] = [];
      const goneTasks: number[] = [];
      let damagedRecords = 0;
      for (const taskId of await this.layout.manifestTaskIds()) {
        const indexed = this.#index.tasks.has(taskId);
        const read = indexed ? undefined : await this.layout.readManifest(taskId);
        damagedRecords += read?.damaged ?? 0;
        if (indexed) continue;
        if (!keep(taskId)) {
          goneTasks.push(taskId);
          gone.push(...(read?.records ?? []));
        } else for (const r of read?.records ?? []) wanted.add(r.rel);
      }
      const prunedFiles = await this.#prune(gone.filter((r) => !wanted.has(r.rel)));
      for (const taskId of goneTasks) await fs.rm(this.layout.manifest(taskId), { force: true });
      const unrecorded = await this.#countUnrecorded(wanted);
      if (prunedFiles || goneTasks.length)
        this.#o.logger.info({ prunedFiles, prunedTasks: goneTasks.length }, 'vault sweep: entries of tasks CVAT no longer has removed');
      if (unrecorded) this.#o.logger.warn({ unrecorded }, 'vault sweep: files in the vault that no record names (not made by it): left alone');
      if (damagedRecords) this.#o.logger.warn({ damagedRecords }, "vault sweep: damaged records in the vault's task lists (their entries are kept)");
      return { prunedFiles, prunedTasks: goneTasks.length, unrecorded, damagedRecords };
    });
  }

  /** Files under the vault that neither the index nor a kept task's records name; symlinks are not followed. */
  async #countUnrecorded(wanted: ReadonlySet<string>): Promise<number> {
    let unrecorded = 0;
    const walk = async (dirAbs: string, rel: string): Promise<void> => {
      const entries = await fs.readdir(dirAbs, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (rel === '' && entry.name === META_DIR) continue;
        const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
        if (entry.isDirectory()) await walk(`${dirAbs}/${entry.name}`, childRel);
        else if (this.#index.lookup(childRel) === undefined && !wanted.has(childRel)) unrecorded++;
      }
    };
    await walk(this.layout.root, '');
    return unrecorded;
  }

  /** Whether the vault holds a share-relative file it made (a whole file: entries are never partial). */
  async holds(rel: string): Promise<boolean> {
    if (VaultLayout.reserved(rel)) return false;
    const st = await this.#entryStat(rel);
    if (!st?.isFile()) return false;
    const f = this.#index.lookup(rel);
    return f !== undefined && this.#owns(st, this.#knownIno(f));
  }

  /** Inode of the entry the vault made for an expected file (so a restore of it needs no records read), or undefined. */
  inodeOf(rel: string): number | undefined {
    const f = this.#index.lookup(rel);
    return f === undefined ? undefined : (this.#knownIno(f) ?? undefined);
  }

  /** Counts entries whose original is gone: the space only the vault keeps alive. */
  measure(): Promise<{ bytes: number; files: number }> {
    return this.#enqueue(async () => {
      let bytes = 0;
      let files = 0;
      const ids = this.#index.liveSlotsByDir();
      await runLimited(Array.from(ids), this.#o.concurrency ?? 32, async (f) => {
        const rel = this.#index.relPath(f);
        const held = await fs.lstat(this.layout.file(rel)).catch(() => null);
        if (!held?.isFile()) return;
        const only = this.mode === 'link' ? held.nlink === 1 : (await fs.lstat(this.#resolver.abs(rel)).catch(() => null)) === null;
        if (only) {
          bytes += held.size;
          files++;
        }
      });
      this.#vaultOnly = { bytes, files, at: Date.now() };
      this.#o.metrics?.vaultOnlyBytes.set(bytes);
      return { bytes, files };
    });
  }

  /** Waits for the queued work (tests, shutdown). */
  idle(): Promise<void> {
    return this.#work;
  }

  status(): VaultStatus {
    return {
      dir: this.layout.root,
      mode: this.mode,
      tasks: this.#index.tasks.size,
      files: this.#index.liveFiles - this.#notHeld.size,
      notHeld: this.#notHeld.size,
      notOwned: this.#notOwned,
      vaultOnlyBytes: this.#vaultOnly.bytes,
      vaultOnlyFiles: this.#vaultOnly.files,
      lastMeasuredAt: this.#vaultOnly.at === null ? null : new Date(this.#vaultOnly.at).toISOString(),
      refused: this.#refused ?? null,
    };
  }

  /** Lets queued work finish, then refuses more. Idempotent. */
  async close(): Promise<void> {
    await this.#work;
    this.#closed = true;
  }
}
