/**
 * Where verified backups live: `<dir>/task-<id>/<UTC time>.zip`, each beside a
 * `.json` that records what was verified. A download goes to `<dir>/.tmp/` first and
 * is renamed in only after it verified, so a kill -9 or a damaged download never
 * replaces a good backup; retention keeps the newest N good ones and never the last.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { WardenError } from '../errors.js';
import { writeFileAtomic } from '../state/files.js';
import type { OwnedFile } from '../state/owned-file.js';
import type { BackupFacts } from './restorability.js';

export interface StoredBackup {
  taskId: number;
  file: string;
  /** ms since epoch, when it was verified. */
  at: number;
  bytes: number;
  mediaFiles: number;
  /** CVAT's task `updated_date` when the export started. */
  taskUpdatedDate: string | null;
  /** SHA-256 (hex) of the zip as it was moved in; `backup verify` compares against it. Absent in records made before 0.2. */
  sha256?: string;
  /** Whether the CVAT it was made on imports it (restorability.ts); absent in older records = not proven. */
  restorable?: boolean;
  /** Why it is not restorable (restorable false). */
  restoreNote?: string;
  /** Context images in the zip (added by the warden: CVAT leaves them out, cvat#9978). */
  relatedFiles?: number;
  /** CVAT version that made it. */
  cvatVersion?: string;
  /** What its task.json and entries said (restorability.ts): lets `backup list` decide for another CVAT version. */
  facts?: BackupFacts;
}

/** A kept backup counts as good only when it is proven to import on the CVAT that made it. */
export const isGood = (b: StoredBackup): boolean => b.restorable === true;

/** SHA-256 of a file, streamed. */
export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** `<pid>-<12 hex>.zip|json`: the only names clearTemp removes. */
const TEMP_NAME = /^\d+-[0-9a-f]{12}\.(?:zip|json)$/;
const STAMP = /^(\d{8}T\d{6}\d{3}Z)\.zip$/;
const stampOf = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace('.', '');

export class BackupStore {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  taskDir(taskId: number): string {
    return path.join(this.dir, `task-${taskId}`);
  }

  /** A fresh name in the store's own `.tmp/` (created exclusively by whoever writes it). */
  async tempFile(ext: 'zip' | 'json' = 'zip'): Promise<string> {
    const tmp = await this.#ownDir(path.join(this.dir, '.tmp'));
    return path.join(tmp, `${process.pid}-${randomBytes(6).toString('hex')}.${ext}`);
  }

  /** Makes (0700) or checks a directory the store writes into: a real directory, never a symlink followed elsewhere. */
  async #ownDir(dir: string): Promise<string> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await fs.lstat(dir);
    if (!st.isDirectory()) throw new WardenError('STATE_IO', `${dir} is not a directory (a symlink?): backups are never written through one`);
    return dir;
  }

  /** Removes downloads a killed process left behind: only the store's own temp names, only files. */
  async clearTemp(): Promise<void> {
    const tmp = path.join(this.dir, '.tmp');
    const st = await fs.lstat(tmp).catch(() => null);
    if (!st?.isDirectory()) return;
    for (const name of await fs.readdir(tmp).catch(() => [] as string[])) {
      if (!TEMP_NAME.test(name)) continue;
      const file = path.join(tmp, name);
      if ((await fs.lstat(file).catch(() => null))?.isFile()) await fs.unlink(file).catch(() => undefined);
    }
  }

  /** Moves a verified download in, then drops the oldest beyond `keep` (never the newest). */
  async commit(download: OwnedFile, info: Omit<StoredBackup, 'file'>, keep: number): Promise<StoredBackup> {
    const dir = await this.#ownDir(this.taskDir(info.taskId));
    let at = info.at;
    while (
      await fs.stat(path.join(dir, `${stampOf(at)}.zip`)).then(
        () => true,
        () => false,
      )
    )
      at++;
    const file = path.join(dir, `${stampOf(at)}.zip`);
    const record: StoredBackup = { ...info, at, file, sha256: await sha256Of(download.path) };
    const sidecar = file.replace(/\.zip$/, '.json');
    // Both through src/state, never through a name someone could have placed beside them:
    // the record by an atomic write (exclusive temp name in .tmp/, fsync, rename, directory
    // fsync), then the zip, only while its temp name still holds what was downloaded
    // (fsync, rename, directory fsync: its bytes reach the disk before its name does).
    await writeFileAtomic(sidecar, JSON.stringify(record), { tmp: await this.tempFile('json') });
    await download.moveInto(file);
    await this.prune(info.taskId, keep);
    return record;
  }

  /** Good backups of a task, newest first (a zip without its record does not count). */
  async list(taskId: number): Promise<StoredBackup[]> {
    const dir = this.taskDir(taskId);
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    const found: StoredBackup[] = [];
    for (const name of names) {
      if (!STAMP.test(name)) continue;
      try {
        const record = JSON.parse(await fs.readFile(path.join(dir, name.replace(/\.zip$/, '.json')), 'utf8')) as StoredBackup;
        found.push({ ...record, file: path.join(dir, name) });
      } catch {
        // No record: a zip someone copied in; not ours to count or delete.
      }
    }
    return found.sort((a, b) => b.at - a.at);
  }

  async newest(taskId: number): Promise<StoredBackup | undefined> {
    return (await this.list(taskId))[0];
  }

  /** The newest backup CVAT is proven to import (isGood). */
  async newestGood(taskId: number): Promise<StoredBackup | undefined> {
    return (await this.list(taskId)).find(isGood);
  }

  /** Keeps the newest `keep`, and always the newest good one even when newer ones are not good. */
  async prune(taskId: number, keep: number): Promise<number> {
    const all = await this.list(taskId);
    const good = all.find(isGood);
    const drop = all.slice(Math.max(1, keep)).filter((b) => b !== good);
    for (const b of drop) {
      // Only regular files: a symlink someone put at one of these names is not followed or removed.
      for (const file of [b.file, b.file.replace(/\.zip$/, '.json')])
        if ((await fs.lstat(file).catch(() => null))?.isFile()) await fs.unlink(file).catch(() => undefined);
    }
    return drop.length;
  }

  /** Task ids that have at least one stored backup. */
  async taskIds(): Promise<number[]> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    return names
      .map((n) => /^task-(\d+)$/.exec(n)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number);
  }
}
