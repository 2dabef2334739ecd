/**
 * The protection layer tried as a hostile user and a careless admin would (issue
 * "protection that can never destroy"): a vault pointed at someone's files or at a
 * media folder, folders swapped for symlinks under restore, a dangling symlink where a
 * lost file was, entries in the vault that it did not make, damaged vault records, and
 * secret files that are devices, FIFOs or huge. Every case ends by asserting that
 * nothing outside what the warden owns changed (a full lstat + content picture of the
 * temp tree before and after) and that the call returned.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { SECRET_FILE_MAX_BYTES } from '../src/config/secret-file.js';
import { ConfigError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { formatRecoverable, recoverableFromVault } from '../src/vault/recoverable.js';
import { restoreFromVault } from '../src/vault/restore.js';
import { BackupStore } from '../src/backup/store.js';
import { OwnedFile } from '../src/state/owned-file.js';
import { Vault } from '../src/vault/vault.js';
import { runCli } from './support/cli.js';
import { shareTask } from './support/guard.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('protection-hostile-');
const logger = createLogger({ level: 'silent' });

/** Every entry under `root` (symlinks not followed): type, inode, size and a hash of regular files' content. */
function picture(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const abs = path.join(dir, name);
      const st = lstatSync(abs);
      const rel = path.relative(root, abs);
      if (st.isSymbolicLink()) out.set(rel, `link ${readlinkSync(abs)}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${st.ino}`);
        walk(abs);
      } else out.set(rel, `file ${st.ino} ${st.size} ${createHash('sha256').update(readFileSync(abs)).digest('hex')}`);
    }
  };
  walk(root);
  return out;
}

function writeFiles(root: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), content);
  }
}

const task = shareTask;

const MEDIA = { 'images/image_0.jpg': 'zero', 'images/image_1.jpg': 'one', 'images/with_related/a.png': 'a', 'videos/v.mp4': 'video' };

function setup() {
  const share = path.join(tmp.path, 'share');
  writeFiles(share, MEDIA);
  const metrics = createMetrics({ buildInfo: { version: 'test' } });
  return { share, metrics, open: (vaultDir: string) => Vault.open({ shareDir: share, vaultDir, mode: 'link', logger, metrics }) };
}

describe('a vault owns only what it made', () => {
  it('refuses a folder of someone else’s files, leaving every file untouched (exit 2 from run)', async () => {
    const { share, open } = setup();
    const theirs = path.join(tmp.path, 'theirs');
    writeFiles(theirs, { 'report.pdf': 'pdf', 'photos/cat.jpg': 'cat', 'notes.txt': 'notes' });
    const before = picture(tmp.path);
    await expect(open(theirs)).rejects.toThrow(/exists, is not empty and is not a vault/);
    expect(picture(tmp.path)).toEqual(before);

    const r = await runCli(['run', '--share-dir', share, '--vault', theirs, '--state-dir', path.join(tmp.path, 'state'), '--listen', '127.0.0.1:0'], {
      CVAT_URL: 'http://127.0.0.1:9',
      CVAT_ACCESS_TOKEN: 'hostile-test-token',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not a vault.*choose a new one/s);
    rmSync(path.join(tmp.path, 'state'), { recursive: true, force: true });
    expect(picture(tmp.path)).toEqual(before);
  });

  it('refuses a media folder of the share, and a new folder inside one, touching nothing there', async () => {
    const { share, open } = setup();
    const before = picture(tmp.path);
    await expect(open(path.join(share, 'images'))).rejects.toThrow(ConfigError);
    await expect(open(path.join(share, 'images', 'vault'))).rejects.toThrow(/lies inside .*images, a folder of the share that holds files/);
    expect(picture(tmp.path)).toEqual(before);
  });

  it('refuses a vault that is a symlink, lies under one, or is writable by others', async () => {
    const { share, open } = setup();
    const real = path.join(tmp.path, 'real');
    mkdirSync(real);
    symlinkSync(real, path.join(share, 'vault-link'));
    symlinkSync(share, path.join(tmp.path, 'share-alias'));
    const open777 = path.join(share, '.open-vault');
    mkdirSync(open777);
    chmodSync(open777, 0o777);
    const before = picture(tmp.path);
    await expect(open(path.join(share, 'vault-link'))).rejects.toThrow(/is a symlink/);
    await expect(open(path.join(tmp.path, 'share-alias', '.cvat-warden-vault'))).rejects.toThrow(/lies under .*share-alias, which is a symlink/);
    await expect(open(open777)).rejects.toThrow(/writable by other users/);
    expect(picture(tmp.path)).toEqual(before);
  });

  it('the task check: a vault whose folder a task reads from is refused before any of that task is linked', async () => {
    const { share, open } = setup();
    const vault = await open(path.join(share, 'frames'));
    writeFiles(share, { 'frames/f1.jpg': 'f' });
    await expect(vault.upsert(task(7, ['frames/f1.jpg']))).rejects.toThrow(/reads frames\/f1\.jpg, which lies inside the vault/);
    // Later work is refused too: nothing more is linked, nothing pruned.
    await vault.upsert(task(8, ['images/image_0.jpg']));
    expect(lstatSync(path.join(share, 'images/image_0.jpg')).nlink).toBe(1);
    await vault.close();
  });

  it('prunes only entries it made: a file swapped in at a recorded path, and files it never made, stay', async () => {
    const { share, open, metrics } = setup();
    const vaultDir = path.join(share, '.cvat-warden-vault');
    const vault = await open(vaultDir);
    await vault.upsert(task(1, ['images/image_0.jpg', 'images/image_1.jpg']));
    await vault.upsert(task(2, ['videos/v.mp4']));
    // Someone replaces one entry with their own file and drops others into the vault.
    rmSync(path.join(vaultDir, 'images/image_1.jpg'));
    writeFileSync(path.join(vaultDir, 'images/image_1.jpg'), 'not the vault’s');
    writeFiles(vaultDir, { 'images/mine.jpg': 'mine', 'stray/keep.txt': 'keep' });
    const outside = path.join(tmp.path, 'outside');
    writeFiles(outside, { 'precious.txt': 'precious' });
    symlinkSync(outside, path.join(vaultDir, 'videos', 'escape'));
    const theirs = ['images/image_1.jpg', 'images/mine.jpg', 'stray/keep.txt', 'videos/escape'].map((rel) => [rel, lstatSync(path.join(vaultDir, rel)).ino]);
    const outsideBefore = picture(outside);

    await vault.remove([1, 2]);
    const swept = await vault.sweep(() => false);
    await vault.close();
    // Its own entries went; every file it did not make is where it was, the same inode.
    expect(() => lstatSync(path.join(vaultDir, 'images/image_0.jpg'))).toThrow();
    expect(() => lstatSync(path.join(vaultDir, 'videos/v.mp4'))).toThrow();
    for (const [rel, ino] of theirs) expect(lstatSync(path.join(vaultDir, rel as string)).ino).toBe(ino);
    expect(picture(outside)).toEqual(outsideBefore);
    expect(swept.unrecorded).toBeGreaterThanOrEqual(3);
    expect((await metrics.vaultNotOwned.get()).values[0]?.value).toBe(1);
    expect(vault.status().notOwned).toBe(1);
    // The share itself lost nothing.
    for (const rel of Object.keys(MEDIA)) expect(readFileSync(path.join(share, rel), 'utf8')).toBe(MEDIA[rel as keyof typeof MEDIA]);
  });

  it('never links through a vault folder swapped for a symlink', async () => {
    const { share, open } = setup();
    const vaultDir = path.join(share, '.cvat-warden-vault');
    const vault = await open(vaultDir);
    await vault.upsert(task(1, ['images/image_0.jpg']));
    const elsewhere = path.join(tmp.path, 'elsewhere');
    mkdirSync(elsewhere);
    // The vault's folder for videos/ is a symlink out before the task that needs it arrives.
    symlinkSync(elsewhere, path.join(vaultDir, 'videos'));
    await vault.upsert(task(2, ['videos/v.mp4']));
    await vault.close();
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(lstatSync(path.join(share, 'videos/v.mp4')).nlink).toBe(1);
  });
});

describe('restore stays inside the share and the vault', () => {
  async function lostShare() {
    const { share, open } = setup();
    const vaultDir = path.join(share, '.cvat-warden-vault');
    const vault = await open(vaultDir);
    await vault.upsert(task(1, Object.keys(MEDIA)));
    await vault.close();
    return { share, vaultDir };
  }

  it('a share folder swapped for a symlink out of the share gets nothing written through it', async () => {
    const { share, vaultDir } = await lostShare();
    const elsewhere = path.join(tmp.path, 'elsewhere');
    mkdirSync(elsewhere);
    rmSync(path.join(share, 'images'), { recursive: true });
    symlinkSync(elsewhere, path.join(share, 'images'));
    const before = picture(elsewhere);
    const report = await restoreFromVault({ shareDir: share, vaultDir, select: { all: true } });
    expect(picture(elsewhere)).toEqual(before);
    expect(report.ok).toBe(false);
    expect(report.skipped.map((s) => s.path)).toEqual(['images/image_0.jpg', 'images/image_1.jpg', 'images/with_related/a.png']);
    expect(report.skipped[0]!.reason).toMatch(/images is a symlink/);
  });

  it('a vault folder swapped for a symlink to someone’s files does not pull them into the share', async () => {
    const { share, vaultDir } = await lostShare();
    const secrets = path.join(tmp.path, 'root-only');
    writeFiles(secrets, { 'image_0.jpg': 'SECRET', 'image_1.jpg': 'SECRET' });
    rmSync(path.join(share, 'images'), { recursive: true });
    renameSync(path.join(vaultDir, 'images'), path.join(tmp.path, 'moved-vault-images'));
    symlinkSync(secrets, path.join(vaultDir, 'images'));
    const report = await restoreFromVault({ shareDir: share, vaultDir, select: { all: true } });
    expect(report.restored).toEqual([]);
    expect(report.unrecoverable.map((u) => u.reason)).toEqual(expect.arrayContaining([expect.stringMatching(/vault path is unsafe: images is a symlink/)]));
    expect(() => lstatSync(path.join(share, 'images/image_0.jpg'))).toThrow();
  });

  it('a vault entry replaced by a hard link to another file is not trusted', async () => {
    const { share, vaultDir } = await lostShare();
    const other = path.join(tmp.path, 'other.jpg');
    writeFileSync(other, 'NOT THE FRAME');
    rmSync(path.join(share, 'images/image_0.jpg'));
    rmSync(path.join(vaultDir, 'images/image_0.jpg'));
    linkSync(other, path.join(vaultDir, 'images/image_0.jpg'));
    const report = await restoreFromVault({ shareDir: share, vaultDir, select: { all: true } });
    expect(report.unrecoverable).toEqual([{ path: 'images/image_0.jpg', reason: expect.stringMatching(/not the file the vault made/) }]);
    expect(() => lstatSync(path.join(share, 'images/image_0.jpg'))).toThrow();
  });

  it('a dangling symlink where a lost file was is skipped with its reason, once, and the rest is restored', async () => {
    const { share, vaultDir } = await lostShare();
    rmSync(path.join(share, 'images/image_0.jpg'));
    rmSync(path.join(share, 'images/image_1.jpg'));
    symlinkSync(path.join(tmp.path, 'nowhere'), path.join(share, 'images/image_0.jpg'));
    const report = await restoreFromVault({ shareDir: share, vaultDir, select: { all: true } });
    expect(report.skipped).toEqual([{ path: 'images/image_0.jpg', reason: expect.stringMatching(/a symlink is at the path \(dangling or not\)/) }]);
    expect(report.restored).toEqual([{ path: 'images/image_1.jpg' }]);
    expect(readlinkSync(path.join(share, 'images/image_0.jpg'))).toBe(path.join(tmp.path, 'nowhere'));
    expect(() => lstatSync(path.join(tmp.path, 'nowhere'))).toThrow();
  });

  it('a stop signal ends restore between files: nothing more is looked at, and it says so', async () => {
    const { share, vaultDir } = await lostShare();
    rmSync(path.join(share, 'images'), { recursive: true });
    const stop = new AbortController();
    stop.abort();
    const report = await restoreFromVault({ shareDir: share, vaultDir, select: { all: true }, signal: stop.signal });
    expect(report.notAttempted).toBe(4);
    expect(report.ok).toBe(false);
    expect(() => lstatSync(path.join(share, 'images'))).toThrow();
  });

  it('damaged vault records are listed by restore --json and check --vault, and restore exits 1', async () => {
    const { share, vaultDir } = await lostShare();
    rmSync(path.join(share, 'images/image_0.jpg'));
    const manifest = path.join(vaultDir, '.vault-meta/tasks/1.jsonl');
    writeFileSync(
      manifest,
      `${readFileSync(manifest, 'utf8')}${JSON.stringify(['../../etc/passwd', 1])}\n\u0000garbage{\n${JSON.stringify(['/abs/path.jpg', null])}\n${JSON.stringify(['.vault-meta/vault.json', 3])}\n`,
    );
    const r = await runCli(['restore', '--all', '--share-dir', share, '--vault', vaultDir, '--json']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { ok: boolean; restored: unknown[]; damagedRecords: { count: number; sample: Array<{ where: string }> } };
    expect(out.ok).toBe(false);
    expect(out.restored).toEqual([{ path: 'images/image_0.jpg' }]);
    expect(out.damagedRecords.count).toBe(4);
    expect(out.damagedRecords.sample.map((d) => d.where)).toEqual(['task 1 line 5', 'task 1 line 6', 'task 1 line 7', 'task 1 line 8']);
    const text = await runCli(['restore', '--all', '--share-dir', share, '--vault', vaultDir]);
    expect(text.stdout).toMatch(/Damaged vault records \(4;/);
    // What `check --vault` reports.
    const check = await recoverableFromVault(vaultDir, ['images/image_1.jpg']);
    expect(check.damagedRecords.count).toBe(4);
    expect(formatRecoverable(check, share)).toMatch(/4 damaged record\(s\) in its task lists/);
    expect(() => lstatSync('/etc/passwd-restored')).toThrow();
  });
});

/** A file created and filled as a download is (src/state/owned-file.ts). */
async function ownedFileWith(file: string, content: string): Promise<OwnedFile> {
  const owned = await OwnedFile.create(file);
  await owned.fill(Readable.from([Buffer.from(content)]), { maxBytes: 1024 });
  return owned;
}

describe('the backup store touches only its own files', () => {
  it('clearing temp names leaves someone else’s .tmp files; a .tmp or task folder that is a symlink is never written through', async () => {
    const dir = path.join(tmp.path, 'backups');
    writeFiles(dir, { '.tmp/their-notes.txt': 'notes', '.tmp/12-abcdef012345.zip.bak': 'x', '.tmp/77-0123456789ab.zip': 'stale download' });
    const store = new BackupStore(dir);
    await store.clearTemp();
    expect(readdirSync(path.join(dir, '.tmp')).sort()).toEqual(['12-abcdef012345.zip.bak', 'their-notes.txt']);

    const elsewhere = path.join(tmp.path, 'elsewhere');
    mkdirSync(elsewhere);
    rmSync(path.join(dir, '.tmp'), { recursive: true });
    symlinkSync(elsewhere, path.join(dir, '.tmp'));
    await expect(store.tempFile()).rejects.toThrow(/not a directory \(a symlink\?\)/);
    await store.clearTemp();
    symlinkSync(elsewhere, path.join(dir, 'task-5'));
    const before = picture(elsewhere);
    const tmpFile = await ownedFileWith(path.join(tmp.path, 'download.zip'), 'zip');
    await expect(store.commit(tmpFile, { taskId: 5, at: Date.now(), bytes: 3, mediaFiles: 0, taskUpdatedDate: null }, 3)).rejects.toThrow(/symlink/);
    expect(picture(elsewhere)).toEqual(before);
  });

  it('a backup record is never written through a name someone placed beside it', async () => {
    const dir = path.join(tmp.path, 'backups-2');
    const store = new BackupStore(dir);
    const at = Date.UTC(2026, 11, 5, 12, 0, 0, 0);
    const stamp = new Date(at).toISOString().replace(/[-:]/g, '').replace('.', '');
    // Every name a record could once be written through: the sidecar's old temp name, and the store's temp folder's files.
    const victim = path.join(tmp.path, 'victim.txt');
    writeFileSync(victim, 'not the warden’s');
    mkdirSync(path.join(dir, 'task-7'), { recursive: true, mode: 0o700 });
    symlinkSync(victim, path.join(dir, 'task-7', `${stamp}.json.tmp`));
    const download = await ownedFileWith(await store.tempFile(), 'zip bytes');
    const record = await store.commit(download, { taskId: 7, at, bytes: 9, mediaFiles: 0, taskUpdatedDate: null }, 3);
    expect(readFileSync(victim, 'utf8')).toBe('not the warden’s');
    expect(JSON.parse(readFileSync(path.join(dir, 'task-7', `${stamp}.json`), 'utf8'))).toMatchObject({ taskId: 7, at, sha256: record.sha256 });
    expect(lstatSync(path.join(dir, 'task-7', `${stamp}.json`)).mode & 0o777).toBe(0o600);
    // The store's temp folder holds nothing afterwards, and the planted link is still only a link.
    expect(readdirSync(path.join(dir, '.tmp'))).toEqual([]);
    expect(lstatSync(path.join(dir, 'task-7', `${stamp}.json.tmp`)).isSymbolicLink()).toBe(true);
    // A killed writer's record temp file is one clearTemp removes (its own name pattern).
    writeFileSync(path.join(dir, '.tmp', '42-0123456789ab.json'), '{');
    await store.clearTemp();
    expect(readdirSync(path.join(dir, '.tmp'))).toEqual([]);
  });
});

describe('bounded secret files', () => {
  const env = (extra: Record<string, string>) => ({ CVAT_URL: 'http://127.0.0.1:9', ...extra });

  it('a device, a FIFO, a directory and a huge file are configuration errors, all listed at once', () => {
    const fifo = path.join(tmp.path, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const huge = path.join(tmp.path, 'huge');
    writeFileSync(huge, Buffer.alloc(SECRET_FILE_MAX_BYTES + 1, 0x61));
    let error: unknown;
    try {
      loadConfig(
        'run',
        ['--token-file', '/dev/zero', '--api-key-file', fifo, '--password-file', huge, '--webhook-secret-file', tmp.path],
        env({ CVAT_USERNAME: 'u' }),
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/access token file \/dev\/zero is a character device/);
    expect(problems).toMatch(/API key file .*fifo is a FIFO/);
    expect(problems).toMatch(/password file .*huge is 65537 bytes, more than a secret can be/);
    expect(problems).toMatch(/webhook secret file .* is a directory/);
  });

  it('the CLI exits 2 at once for --token-file /dev/zero, /dev/urandom and a FIFO with no writer', async () => {
    const fifo = path.join(tmp.path, 'fifo');
    execFileSync('mkfifo', [fifo]);
    for (const file of ['/dev/zero', '/dev/urandom', fifo]) {
      const r = await runCli(['check', '--all', '--token-file', file], env({}));
      expect(r.code, file).toBe(2);
      expect(r.stderr).toMatch(/not a regular file/);
    }
  });

  it('a regular secret file, through a symlink as Docker and Kubernetes mount them, is read and trimmed', () => {
    const real = path.join(tmp.path, '..data');
    writeFiles(real, { token: 'tok-123456\n' });
    symlinkSync(path.join(real, 'token'), path.join(tmp.path, 'token'));
    const config = loadConfig('check', ['--all', '--token-file', path.join(tmp.path, 'token')], env({}));
    expect(config.cvat.credentials).toEqual({ kind: 'token', token: 'tok-123456' });
  });
});
