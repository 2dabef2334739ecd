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
import type { VaultMode } from '../domain.js';
import { ConfigError, describeError } from '../errors.js';
import { addTaskToIndex, DirLister, nodeFs, ShareIndex, ShareRootResolver, taskSignature, type GuardTask } from '../guard/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { withVaultFs, type VaultFs } from './fsops.js';
import { META_DIR, VaultLayout, type VaultMeta, type VaultRecord } from './layout.js';
import { relDirOf } from './safe-path.js';
import { checkVaultSetup } from './setup.js';
import { VaultEntries } from './entries.js';

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
  readonly #resolver: ShareRootResolver;
  readonly #index = new ShareIndex();
  /** Inode of the entry the vault made, per index slot (NaN: none known to be ours). */
  #ino = new Float64Array(0);
  /** Making, judging and removing the entries on disk (entries.ts): the only code that touches them. */
  readonly #entries: VaultEntries;
  #work: Promise<void> = Promise.resolve();
  #closed = false;
  #refused: string | undefined;
  #vaultOnly = { bytes: 0, files: 0, at: null as number | null };

  private constructor(o: VaultOptions, layout: VaultLayout, prefixInShare: string | undefined, meta: VaultMeta) {
    this.#o = o;
    this.layout = layout;
    this.mode = o.mode;
    this.prefixInShare = prefixInShare;
    this.meta = meta;
    this.#resolver = new ShareRootResolver(o.shareDir, nodeFs);
    const resolver = this.#resolver;
    this.#entries = new VaultEntries({
      layout,
      dev: meta.dev,
      mode: o.mode,
      fs: withVaultFs(o.fs),
      sourceOf: (rel) => resolver.abs(rel),
      logger: o.logger,
      metrics: o.metrics,
    });
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
        const st = await this.#entries.stat(r.rel);
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
    this.#entries.beginUpsert();
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
      const ino = await this.#entries.keep(rel, previous.get(rel));
      if (ino !== null) {
        this.#setIno(f, ino);
        linked++;
      }
    });
    await this.#prune(orphans);
    await this.layout.writeManifest(task.taskId, records());
    this.#o.metrics?.vaultFiles.set(this.#index.liveFiles - this.#entries.notHeld);
    if (result.created.length)
      this.#o.logger.info(
        { taskId: task.taskId, files: fileIds.length, linked, notHeld: result.created.length - linked, ms: Math.round(performance.now() - started) },
        'vault: task files kept',
      );
  }

  /** Removes the vault's own entries of files no task references any more, and the directories this leaves empty. */
  async #prune(records: readonly VaultRecord[]): Promise<number> {
    let pruned = 0;
    for (const r of records) {
      if (this.#index.lookup(r.rel) !== undefined || VaultLayout.reserved(r.rel)) continue;
      this.#entries.noLongerExpected(r.rel);
      if (await this.#entries.removeOwned(r)) pruned++;
    }
    if (pruned) {
      this.#o.metrics?.vaultPruned.inc(pruned);
      this.#o.logger.info({ pruned }, 'vault: links of files no task needs any more removed');
    }
    return pruned;
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
    const st = await this.#entries.stat(rel);
    if (!st?.isFile()) return false;
    const f = this.#index.lookup(rel);
    return f !== undefined && this.#entries.owns(st, this.#knownIno(f));
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
      files: this.#index.liveFiles - this.#entries.notHeld,
      notHeld: this.#entries.notHeld,
      notOwned: this.#entries.notOwned,
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
