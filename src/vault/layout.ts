/**
 * Where things live in a vault directory. The vault mirrors share-relative paths
 * (`<vault>/<rel>` is a hard link to `<share>/<rel>`); its own bookkeeping sits under
 * one reserved directory that no share path may use:
 *
 *   <vault>/.vault-meta/vault.json        the marker: id, format version, mode, the share it
 *                                          protects, the vault's device — written first, once
 *   <vault>/.vault-meta/tasks/<id>.jsonl  the records of task <id>: one JSON line per file,
 *                                          `["<share-relative path>", <inode>]` — the entry the
 *                                          vault made there (inode null: about to be made)
 *   <vault>/.vault-meta/tmp/              temp names (reflink copies, manifests) before their rename
 *
 * The records are the vault's proof of ownership: it deletes or replaces an entry only
 * when the entry at that path is a regular file on the vault's device with the recorded
 * inode. Format 1 (vault.json version 1, manifest lines that are bare JSON strings) is
 * read and migrated by `Vault.open`.
 *
 * Every write is a temp name then a rename, and a link(2) is atomic: a kill -9 leaves
 * whole files or none, plus temp names that the next open removes.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { VaultMode } from '../domain.js';
import { checkName } from '../guard/index.js';
import { codeOf } from './fsops.js';
import { openRegularNoFollow, OWN_DIR_MODE } from './safe-path.js';
import { writeFileAtomic } from '../state/files.js';

export const META_DIR = '.vault-meta';
/** Suggested vault location inside the share volume (same filesystem, same mount). */
export const SUGGESTED_VAULT_NAME = '.cvat-warden-vault';
export const VAULT_FORMAT = 2;
/** vault.json and one task's records are read whole; anything larger is not the vault's. */
const MAX_MARKER_BYTES = 64 * 1024;
const MAX_MANIFEST_BYTES = 512 * 1024 * 1024;
/** Damaged records kept for the report (the count is exact). */
const DAMAGED_LISTED = 200;

export interface VaultMeta {
  version: typeof VAULT_FORMAT;
  /** Random id of this vault, made once. */
  id: string;
  mode: VaultMode;
  createdAt: string;
  /** Real path of the share when the vault was made, and its device and inode (the same inside a container and on the host). */
  share: { root: string; dev: number; ino: number };
  /** st_dev of the vault directory: every entry the vault made is on it. */
  dev: number;
}

export type MarkerRead =
  | { state: 'absent' }
  | { state: 'ok'; meta: VaultMeta }
  /** A format-1 marker: a vault an earlier cvat-warden made (mode and date only). */
  | { state: 'legacy'; mode: VaultMode; createdAt: string }
  | { state: 'damaged'; problem: string };

/** One file of a task as the vault recorded it. */
export interface VaultRecord {
  rel: string;
  /** Inode of the entry the vault made; null when recorded before the link (a kill may fall in between), undefined in format 1. */
  ino: number | null | undefined;
}

export interface DamagedRecord {
  /** Where: `task <id> line <n>`. */
  where: string;
  problem: string;
}

export interface ManifestRead {
  records: VaultRecord[];
  /** Lines that name no safe share path (garbage, traversal, reserved names). */
  damaged: number;
  damagedSample: DamagedRecord[];
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

  /** Makes (0700) or checks the bookkeeping directories: each must be a real directory, never a symlink. */
  async ensure(): Promise<void> {
    for (const dir of [this.metaDir, this.tmpDir, this.tasksDir]) {
      await fs.mkdir(dir, { mode: OWN_DIR_MODE }).catch((error: unknown) => {
        if (codeOf(error) !== 'EEXIST') throw error;
      });
      const st = await fs.lstat(dir);
      if (!st.isDirectory()) throw Object.assign(new Error(`${dir} is not a directory (a symlink or a file)`), { code: 'ENOTDIR' });
    }
  }

  /** Temp names a process that died mid-write left: only names of the vault's own pattern, only files. */
  async clearTemp(): Promise<number> {
    const st = await fs.lstat(this.tmpDir).catch(() => null);
    if (!st?.isDirectory()) return 0;
    const names = (await fs.readdir(this.tmpDir).catch(() => [] as string[])).filter((n) => /^\d+-[0-9a-f]{12}$/.test(n) || n === 'write-probe');
    let removed = 0;
    for (const n of names) {
      const file = path.join(this.tmpDir, n);
      const entry = await fs.lstat(file).catch(() => null);
      if (!entry || entry.isDirectory()) continue;
      await fs.unlink(file).catch(() => undefined);
      removed++;
    }
    return removed;
  }

  async readMarker(): Promise<MarkerRead> {
    let text: string;
    try {
      const handle = await openRegularNoFollow(this.metaFile);
      try {
        const buf = Buffer.alloc(MAX_MARKER_BYTES + 1);
        const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
        if (bytesRead > MAX_MARKER_BYTES) return { state: 'damaged', problem: 'vault.json is larger than 64 KiB' };
        text = buf.toString('utf8', 0, bytesRead);
      } finally {
        await handle.close();
      }
    } catch (error) {
      const code = codeOf(error);
      if (code === 'ENOENT') return { state: 'absent' };
      return { state: 'damaged', problem: `vault.json cannot be read (${code === 'ELOOP' ? 'a symlink' : code})` };
    }
    let parsed: Record<string, unknown>;
    try {
      const value: unknown = JSON.parse(text);
      if (!value || typeof value !== 'object') return { state: 'damaged', problem: 'vault.json is not an object' };
      parsed = value as Record<string, unknown>;
    } catch {
      return { state: 'damaged', problem: 'vault.json is not JSON' };
    }
    const mode = parsed['mode'];
    if (mode !== 'link' && mode !== 'reflink') return { state: 'damaged', problem: 'vault.json names no mode' };
    const createdAt = typeof parsed['createdAt'] === 'string' ? parsed['createdAt'] : '';
    if (parsed['version'] === 1) return { state: 'legacy', mode, createdAt };
    if (parsed['version'] !== VAULT_FORMAT)
      return { state: 'damaged', problem: `vault.json has format ${String(parsed['version'])}, this build reads 1 and ${VAULT_FORMAT}` };
    const share = parsed['share'] as Record<string, unknown> | undefined;
    const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
    if (typeof parsed['id'] !== 'string' || !num(parsed['dev']) || !share || typeof share['root'] !== 'string' || !num(share['dev']) || !num(share['ino']))
      return { state: 'damaged', problem: 'vault.json lacks its id, device or share' };
    return { state: 'ok', meta: parsed as unknown as VaultMeta };
  }

  /**
   * Temp name then rename: a kill -9 leaves the old file or the new one, never half of
   * either. `durable` adds an fsync (vault.json); task lists skip it — one per task would
   * dominate building a large vault, and the next discovery rewrites them anyway.
   */
  async writeAtomic(target: string, data: string, { durable = false }: { durable?: boolean } = {}): Promise<void> {
    // A fresh temp name of the vault's own, created 'wx': never written through something already there.
    await writeFileAtomic(target, data, { durable, tmp: this.tmpName() });
  }

  async writeManifest(taskId: number, records: Iterable<VaultRecord>): Promise<void> {
    const lines: string[] = [];
    for (const r of records) lines.push(JSON.stringify([r.rel, r.ino ?? null]));
    await this.writeAtomic(this.manifest(taskId), lines.length ? `${lines.join('\n')}\n` : '');
  }

  /** A task's records, or undefined when the vault has none for it. Damaged lines are counted, never guessed at. */
  async readManifest(taskId: number): Promise<ManifestRead | undefined> {
    let text: string;
    try {
      const handle = await openRegularNoFollow(this.manifest(taskId));
      try {
        const st = await handle.stat();
        if (st.size > MAX_MANIFEST_BYTES)
          return {
            records: [],
            damaged: 1,
            damagedSample: [{ where: `task ${taskId}`, problem: `its record file is larger than ${MAX_MANIFEST_BYTES} bytes` }],
          };
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return undefined;
      return { records: [], damaged: 1, damagedSample: [{ where: `task ${taskId}`, problem: `its record file cannot be read (${codeOf(error)})` }] };
    }
    return parseManifest(taskId, text);
  }

  async manifestTaskIds(): Promise<number[]> {
    const names = await fs.readdir(this.tasksDir).catch(() => [] as string[]);
    return names
      .map((n) => /^(\d{1,15})\.jsonl$/.exec(n)?.[1])
      .filter((id): id is string => id !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }
}

/** Parses a task's record lines: format 2 (`[rel, ino|null]`) and format 1 (a bare JSON string). */
export function parseManifest(taskId: number, text: string): ManifestRead {
  const read: ManifestRead = { records: [], damaged: 0, damagedSample: [] };
  const damaged = (line: number, problem: string) => {
    read.damaged++;
    if (read.damagedSample.length < DAMAGED_LISTED) read.damagedSample.push({ where: `task ${taskId} line ${line}`, problem });
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      damaged(i + 1, 'not a record (unparsable)');
      continue;
    }
    const [rel, ino] = Array.isArray(value) ? (value as unknown[]) : [value, undefined];
    const inoOk = ino === undefined ? !Array.isArray(value) : ino === null || (typeof ino === 'number' && Number.isSafeInteger(ino) && ino >= 0);
    if (typeof rel !== 'string' || !inoOk || (Array.isArray(value) && value.length !== 2)) {
      damaged(i + 1, 'not a record (wrong shape)');
      continue;
    }
    const verdict = checkName(rel);
    if (!verdict.ok || verdict.rel !== rel || VaultLayout.reserved(rel)) {
      damaged(i + 1, `names no safe share path (${verdict.ok ? 'reserved or not normalised' : verdict.reason})`);
      continue;
    }
    read.records.push({ rel, ino: ino as number | null | undefined });
  }
  return read;
}
