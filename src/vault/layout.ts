/**
 * Where things live in a vault directory. The vault mirrors share-relative paths
 * (`<vault>/<rel>` is a hard link to `<share>/<rel>`); its own bookkeeping sits under
 * one reserved directory that no share path may use:
 *
 *   <vault>/.vault-meta/vault.json        mode and share device, written once
 *   <vault>/.vault-meta/tasks/<id>.jsonl  the share-relative files of task <id>, one JSON string a line
 *   <vault>/.vault-meta/tmp/              temp names (reflink copies, manifests) before their rename
 *
 * Every write is a temp name then a rename, and a link(2) is atomic: a kill -9 leaves
 * whole files or none, plus temp names that the next open removes.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { VaultMode } from '../domain.js';

export const META_DIR = '.vault-meta';
/** Suggested vault location inside the share volume (same filesystem, same mount). */
export const SUGGESTED_VAULT_NAME = '.cvat-warden-vault';

export interface VaultMeta {
  version: 1;
  mode: VaultMode;
  createdAt: string;
}

export class VaultLayout {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  get metaDir(): string {
    return path.join(this.root, META_DIR);
  }
  get tmpDir(): string {
    return path.join(this.metaDir, 'tmp');
  }
  get tasksDir(): string {
    return path.join(this.metaDir, 'tasks');
  }
  get metaFile(): string {
    return path.join(this.metaDir, 'vault.json');
  }
  manifest(taskId: number): string {
    return path.join(this.tasksDir, `${taskId}.jsonl`);
  }
  /** Absolute vault path of a share-relative path (already checked by `checkName`). */
  file(rel: string): string {
    return `${this.root}/${rel}`;
  }
  tmpName(): string {
    return path.join(this.tmpDir, `${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /** A share path the vault cannot mirror because it would land in the vault's bookkeeping. */
  static reserved(rel: string): boolean {
    return rel === META_DIR || rel.startsWith(`${META_DIR}/`);
  }

  async ensure(): Promise<void> {
    await fs.mkdir(this.tmpDir, { recursive: true });
    await fs.mkdir(this.tasksDir, { recursive: true });
  }

  /** Temp names left by a process that died mid-write. */
  async clearTemp(): Promise<number> {
    const names = await fs.readdir(this.tmpDir).catch(() => [] as string[]);
    await Promise.all(names.map((n) => fs.rm(path.join(this.tmpDir, n), { force: true, recursive: true })));
    return names.length;
  }

  async readMeta(): Promise<VaultMeta | undefined> {
    try {
      const parsed = JSON.parse(await fs.readFile(this.metaFile, 'utf8')) as Partial<VaultMeta>;
      return parsed.version === 1 && (parsed.mode === 'link' || parsed.mode === 'reflink') ? (parsed as VaultMeta) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Temp name then rename: a kill -9 leaves the old file or the new one, never half of
   * either. `durable` adds an fsync (vault.json); task lists skip it — one per task would
   * dominate building a large vault, and the next discovery rewrites them anyway.
   */
  async writeAtomic(target: string, data: string, durable = false): Promise<void> {
    const tmp = this.tmpName();
    const handle = await fs.open(tmp, 'w');
    try {
      await handle.writeFile(data);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, target);
  }

  async writeManifest(taskId: number, rels: Iterable<string>): Promise<void> {
    const lines: string[] = [];
    for (const rel of rels) lines.push(JSON.stringify(rel));
    await this.writeAtomic(this.manifest(taskId), lines.length ? `${lines.join('\n')}\n` : '');
  }

  async readManifest(taskId: number): Promise<string[] | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.manifest(taskId), 'utf8');
    } catch {
      return undefined;
    }
    const rels: string[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const value: unknown = JSON.parse(line);
        if (typeof value === 'string') rels.push(value);
      } catch {
        // A damaged line names no file; the rest of the manifest still counts.
      }
    }
    return rels;
  }

  async manifestTaskIds(): Promise<number[]> {
    const names = await fs.readdir(this.tasksDir).catch(() => [] as string[]);
    return names
      .map((n) => /^(\d+)\.jsonl$/.exec(n)?.[1])
      .filter((id): id is string => id !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }
}
