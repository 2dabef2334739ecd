/**
 * The vault: for every share file a guarded task reads, a hard link (or, with
 * `--vault-mode reflink`, a copy-on-write clone) under the vault directory at the same
 * share-relative path. A link costs no data blocks while the original exists and keeps
 * the content alive when someone deletes the original or moves it away; `restore` puts
 * it back. It is fed the same GuardTask records as the guard and builds its expected
 * file list with the guard's own index code, so both agree on which files matter.
 *
 * Bounded: a task's links go when CVAT deletes the task or stops referencing a file,
 * and `sweep()` (after a complete discovery) removes what no known task needs.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { VaultMode } from '../domain.js';
import { describeError } from '../errors.js';
import { addTaskToIndex, DirLister, nodeFs, ShareIndex, ShareRootResolver, taskSignature, type GuardTask } from '../guard/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { codeOf, isMissing, withVaultFs, type VaultFs } from './fsops.js';
import { META_DIR, VaultLayout } from './layout.js';
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
  /** Bytes of vault entries whose original is gone (link count 1 / original missing), as of the last measure. */
  vaultOnlyBytes: number;
  vaultOnlyFiles: number;
  lastMeasuredAt: string | null;
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

export class Vault {
  readonly layout: VaultLayout;
  readonly mode: VaultMode;
  /** Share-relative location of the vault inside the share, which the guard must skip. */
  readonly prefixInShare: string | undefined;
  readonly #o: VaultOptions;
  readonly #fs: VaultFs;
  readonly #resolver: ShareRootResolver;
  readonly #index = new ShareIndex();
  readonly #madeDirs = new Set<string>();
  #notHeld = new Set<string>();
  #work: Promise<void> = Promise.resolve();
  #closed = false;
  #vaultOnly = { bytes: 0, files: 0, at: null as number | null };

  private constructor(o: VaultOptions, layout: VaultLayout, prefixInShare: string | undefined) {
    this.#o = o;
    this.#fs = withVaultFs(o.fs);
    this.layout = layout;
    this.mode = o.mode;
    this.prefixInShare = prefixInShare;
    this.#resolver = new ShareRootResolver(o.shareDir, nodeFs);
  }

  /** Checks the setup (ConfigError on a wrong one), removes temp names a killed process left, records the mode. */
  static async open(o: VaultOptions): Promise<Vault> {
    const setup = await checkVaultSetup(o.shareDir, o.vaultDir, o.mode, withVaultFs(o.fs));
    const vault = new Vault(o, setup.layout, setup.prefixInShare);
    const meta = await setup.layout.readMeta();
    if (meta && meta.mode !== o.mode)
      o.logger.warn({ was: meta.mode, now: o.mode }, 'vault mode changed: existing entries stay as they are, new ones follow the new mode');
    if (!meta || meta.mode !== o.mode)
      await setup.layout.writeAtomic(setup.layout.metaFile, JSON.stringify({ version: 1, mode: o.mode, createdAt: new Date().toISOString() }), true);
    o.logger.info({ vault: setup.layout.root, mode: o.mode, insideShare: setup.prefixInShare ?? null }, 'vault ready');
    return vault;
  }

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#work.then(() => (this.#closed ? (undefined as T) : job()));
    this.#work = run.then(
      () => undefined,
      (error: unknown) => this.#o.logger.error({ err: describeError(error) }, 'vault step failed'),
    );
    return run;
  }

  /** Link the files of a share task (new or changed); unchanged tasks cost nothing. */
  upsert(task: GuardTask): Promise<void> {
    return this.#enqueue(() => this.#upsert(task));
  }

  /** CVAT deleted these tasks: their links go, unless another task reads the same file. */
  remove(taskIds: readonly number[]): Promise<void> {
    return this.#enqueue(async () => {
      for (const taskId of taskIds) {
        const orphans = this.#drop(taskId);
        await fs.rm(this.layout.manifest(taskId), { force: true });
        await this.#prune(orphans);
      }
    });
  }

  #drop(taskId: number): string[] {
    const orphans: string[] = [];
    this.#index.removeTask(taskId, (f) => orphans.push(this.#index.relPath(f)));
    return orphans;
  }

  async #upsert(task: GuardTask): Promise<void> {
    const existing = this.#index.tasks.get(task.taskId);
    const signature = taskSignature(task);
    if (existing?.signature === signature) return;
    const orphans = existing ? this.#drop(task.taskId) : [];
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
    const rels = result.created.map((f) => this.#index.relPath(f));
    let linked = 0;
    await runLimited(rels, this.#o.concurrency ?? 32, async (rel) => {
      if (await this.#keep(rel)) linked++;
    });
    await this.#prune(orphans);
    const files = new Set<string>();
    for (const f of result.indexed.fileIds) files.add(this.#index.relPath(f));
    await this.layout.writeManifest(task.taskId, files);
    this.#o.metrics?.vaultFiles.set(this.#index.liveFiles - this.#notHeld.size);
    if (rels.length)
      this.#o.logger.info(
        { taskId: task.taskId, files: files.size, linked, notHeld: rels.length - linked, ms: Math.round(performance.now() - started) },
        'vault: task files kept',
      );
  }

  async #mkdirFor(file: string): Promise<void> {
    const dir = path.dirname(file);
    if (this.#madeDirs.has(dir)) return;
    await fs.mkdir(dir, { recursive: true });
    this.#madeDirs.add(dir);
  }

  /** Makes the vault entry of one share file; true when the vault holds it afterwards. */
  async #keep(rel: string): Promise<boolean> {
    if (VaultLayout.reserved(rel)) return false;
    const source = this.#resolver.abs(rel);
    const target = this.layout.file(rel);
    try {
      await this.#mkdirFor(target);
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
      this.#notHeld.delete(rel);
      return true;
    } catch (error) {
      return this.#afterKeepFailed(rel, source, target, error);
    }
  }

  async #afterKeepFailed(rel: string, source: string, target: string, error: unknown): Promise<boolean> {
    const code = codeOf(error);
    const [src, held] = await Promise.all([fs.stat(source).catch(() => null), fs.lstat(target).catch(() => null)]);
    if (held?.isFile()) {
      // Already held. In link mode follow a replaced original (a hard link cannot keep old content
      // worth trusting over what CVAT now reads); a reflink copy keeps the first version it saw.
      if (this.mode === 'link' && src && (src.ino !== held.ino || src.dev !== held.dev)) {
        const tmp = this.layout.tmpName();
        await this.#fs.link(source, tmp);
        await fs.rename(tmp, target);
        this.#o.logger.info({ path: rel }, 'vault: the share file was replaced; the vault now keeps the new one');
      }
      this.#notHeld.delete(rel);
      return true;
    }
    this.#notHeld.add(rel);
    if (!src) this.#o.logger.warn({ path: rel }, 'vault: share file already missing, nothing to keep');
    else {
      this.#o.metrics?.vaultErrors.inc();
      this.#o.logger.warn({ path: rel, code }, 'vault: could not keep a share file');
    }
    return false;
  }

  /** Removes vault entries no task references any more, and directories left empty. */
  async #prune(rels: readonly string[]): Promise<void> {
    let pruned = 0;
    for (const rel of rels) {
      if (this.#index.lookup(rel) !== undefined || VaultLayout.reserved(rel)) continue;
      this.#notHeld.delete(rel);
      try {
        await fs.unlink(this.layout.file(rel));
        pruned++;
      } catch (error) {
        if (!isMissing(error)) this.#o.logger.warn({ path: rel, code: codeOf(error) }, 'vault: could not prune');
      }
      await this.#removeEmptyParents(path.dirname(this.layout.file(rel)));
    }
    if (pruned) {
      this.#o.metrics?.vaultPruned.inc(pruned);
      this.#o.logger.info({ pruned }, 'vault: links of files no task needs any more removed');
    }
  }

  async #removeEmptyParents(dir: string): Promise<void> {
    while (dir.startsWith(`${this.layout.root}/`)) {
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
   * After a complete discovery: forget manifests of tasks CVAT no longer lists (deleted
   * while the warden was down) and remove every entry no remaining task references.
   * `keep(taskId)` says which tasks CVAT still has (listed, even if this pass could not read them).
   */
  sweep(keep: (taskId: number) => boolean): Promise<{ prunedFiles: number; prunedTasks: number }> {
    return this.#enqueue(async () => {
      const wanted = new Set<string>();
      let prunedTasks = 0;
      for (const taskId of await this.layout.manifestTaskIds()) {
        if (this.#index.tasks.has(taskId)) continue;
        if (!keep(taskId)) {
          await fs.rm(this.layout.manifest(taskId), { force: true });
          prunedTasks++;
          continue;
        }
        for (const rel of (await this.layout.readManifest(taskId)) ?? []) wanted.add(rel);
      }
      let prunedFiles = 0;
      const walk = async (dirAbs: string, rel: string): Promise<void> => {
        const entries = await fs.readdir(dirAbs, { withFileTypes: true }).catch(() => []);
        for (const entry of entries) {
          const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
          if (rel === '' && entry.name === META_DIR) continue;
          const abs = `${dirAbs}/${entry.name}`;
          if (entry.isDirectory()) {
            await walk(abs, childRel);
            await fs.rmdir(abs).catch(() => undefined);
          } else if (this.#index.lookup(childRel) === undefined && !wanted.has(childRel)) {
            await fs.unlink(abs).catch(() => undefined);
            prunedFiles++;
          }
        }
      };
      await walk(this.layout.root, '');
      this.#madeDirs.clear();
      if (prunedFiles || prunedTasks) {
        this.#o.metrics?.vaultPruned.inc(prunedFiles);
        this.#o.logger.info({ prunedFiles, prunedTasks }, 'vault sweep: entries of tasks CVAT no longer has removed');
      }
      return { prunedFiles, prunedTasks };
    });
  }

  /** Whether the vault holds a share-relative file (a whole file: entries are never partial). */
  async holds(rel: string): Promise<boolean> {
    if (VaultLayout.reserved(rel)) return false;
    const st = await fs.lstat(this.layout.file(rel)).catch(() => null);
    return st?.isFile() ?? false;
  }

  /** Counts entries whose original is gone: the space only the vault keeps alive. */
  measure(): Promise<{ bytes: number; files: number }> {
    return this.#enqueue(async () => {
      let bytes = 0;
      let files = 0;
      const ids = this.#index.liveSlotsByDir();
      await runLimited(Array.from(ids), this.#o.concurrency ?? 32, async (f) => {
        const rel = this.#index.relPath(f);
        const held = await fs.stat(this.layout.file(rel)).catch(() => null);
        if (!held) return;
        const only = this.mode === 'link' ? held.nlink === 1 : (await fs.stat(this.#resolver.abs(rel)).catch(() => null)) === null;
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
      vaultOnlyBytes: this.#vaultOnly.bytes,
      vaultOnlyFiles: this.#vaultOnly.files,
      lastMeasuredAt: this.#vaultOnly.at === null ? null : new Date(this.#vaultOnly.at).toISOString(),
    };
  }

  /** Lets queued work finish, then refuses more. Idempotent. */
  async close(): Promise<void> {
    await this.#work;
    this.#closed = true;
  }
}
