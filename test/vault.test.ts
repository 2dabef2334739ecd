/**
 * The vault and `restore` over real temp directories: hard links made as tasks are
 * fed, files restored byte-identical (one file, a whole directory, a moved-away file),
 * never overwriting other content, pruning when CVAT deletes a task, and the start-up
 * check refusing a vault on another filesystem (a real tmpfs mount where allowed,
 * EXDEV injected otherwise).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { ConfigError } from '../src/errors.js';
import { Vault } from '../src/vault/vault.js';
import { restoreFromVault } from '../src/vault/restore.js';
import { ShareGuard } from '../src/guard/index.js';
import { shareTask } from './support/guard.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('vault-test-');
const logger = createLogger({ level: 'silent' });

function share(files: Record<string, string>): string {
  const dir = path.join(tmp.path, 'share');
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

const task = shareTask;

const FILES = { 'a/1.jpg': 'one', 'a/2.jpg': 'two', 'b/c/3.jpg': 'three', 'b/c/4.jpg': 'four' };

async function openVault(shareDir: string, extra: Partial<Parameters<typeof Vault.open>[0]> = {}) {
  const metrics = createMetrics({ buildInfo: { version: 'test' } });
  const vault = await Vault.open({ shareDir, vaultDir: path.join(shareDir, '.cvat-warden-vault'), mode: 'link', logger, metrics, ...extra });
  return { vault, metrics };
}

describe('vault', () => {
  it('keeps a hard link of every expected file, inside the share but never as a share path of its own', async () => {
    const shareDir = share(FILES);
    const { vault, metrics } = await openVault(shareDir);
    expect(vault.prefixInShare).toBe('.cvat-warden-vault');
    await vault.upsert(task(1, Object.keys(FILES)));
    for (const rel of Object.keys(FILES)) {
      const original = statSync(path.join(shareDir, rel));
      const held = statSync(path.join(vault.layout.root, rel));
      expect(held.ino).toBe(original.ino);
      expect(original.nlink).toBe(2);
    }
    expect((await metrics.vaultFiles.get()).values[0]?.value).toBe(4);
    // A task whose frames lie inside the vault: the vault refuses (a configuration error) and links nothing more.
    await expect(vault.upsert(task(2, ['.cvat-warden-vault/a/1.jpg']))).rejects.toThrow(ConfigError);
    expect(existsSync(path.join(vault.layout.root, '.cvat-warden-vault'))).toBe(false);
    expect(vault.status().refused).toMatch(/lies inside the vault/);
    await vault.close();
  });

  it('restores one deleted file, a whole deleted directory and a moved-away file byte-identical', async () => {
    const shareDir = share(FILES);
    const { vault } = await openVault(shareDir);
    await vault.upsert(task(1, Object.keys(FILES)));
    rmSync(path.join(shareDir, 'a/1.jpg'));
    rmSync(path.join(shareDir, 'b'), { recursive: true });
    renameSync(path.join(shareDir, 'a/2.jpg'), path.join(tmp.path, 'moved-away.jpg'));
    const dry = await restoreFromVault({ shareDir, vaultDir: vault.layout.root, select: { all: true }, dryRun: true });
    expect(dry.restored.map((e) => e.path)).toEqual(['a/1.jpg', 'a/2.jpg', 'b/c/3.jpg', 'b/c/4.jpg']);
    expect(existsSync(path.join(shareDir, 'a/1.jpg'))).toBe(false);
    const report = await restoreFromVault({ shareDir, vaultDir: vault.layout.root, select: { all: true } });
    expect(report.ok).toBe(true);
    expect(report.restored).toHaveLength(4);
    for (const [rel, content] of Object.entries(FILES)) expect(readFileSync(path.join(shareDir, rel), 'utf8')).toBe(content);
    // A second run has nothing to do.
    const again = await restoreFromVault({ shareDir, vaultDir: vault.layout.root, select: { taskIds: [1] } });
    expect(again).toMatchObject({ ok: true, restored: [], alreadyInPlace: 4 });
    await vault.close();
  });

  it('never overwrites a file that is in place with other content, and says why', async () => {
    const shareDir = share(FILES);
    const { vault } = await openVault(shareDir);
    await vault.upsert(task(1, Object.keys(FILES)));
    rmSync(path.join(shareDir, 'a/1.jpg'));
    writeFileSync(path.join(shareDir, 'a/1.jpg'), 'someone else');
    rmSync(path.join(shareDir, 'a/2.jpg'));
    const report = await restoreFromVault({ shareDir, vaultDir: vault.layout.root, select: { paths: ['a/1.jpg', 'a/2.jpg', '../etc/passwd', 'x/none.jpg'] } });
    expect(readFileSync(path.join(shareDir, 'a/1.jpg'), 'utf8')).toBe('someone else');
    expect(readFileSync(path.join(shareDir, 'a/2.jpg'), 'utf8')).toBe('two');
    expect(report.ok).toBe(false);
    expect(report.skipped.map((e) => e.path)).toEqual(['../etc/passwd', 'a/1.jpg']);
    expect(report.skipped[1]!.reason).toMatch(/not overwritten/);
    expect(report.unrecoverable).toEqual([{ path: 'x/none.jpg', reason: 'missing from the share and not in the vault' }]);
    await vault.close();
  });

  it('prunes the links of a deleted task, keeps files another task still reads, and sweeps tasks gone while it was down', async () => {
    const shareDir = share(FILES);
    const { vault, metrics } = await openVault(shareDir);
    await vault.upsert(task(1, ['a/1.jpg', 'a/2.jpg']));
    await vault.upsert(task(2, ['a/2.jpg', 'b/c/3.jpg']));
    await vault.remove([1]);
    expect(existsSync(path.join(vault.layout.root, 'a/1.jpg'))).toBe(false);
    expect(existsSync(path.join(vault.layout.root, 'a/2.jpg'))).toBe(true);
    expect(statSync(path.join(shareDir, 'a/1.jpg')).nlink).toBe(1);
    // A task's file list shrinks: the dropped file's link goes.
    await vault.upsert(task(2, ['a/2.jpg']));
    expect(existsSync(path.join(vault.layout.root, 'b'))).toBe(false);
    await vault.close();

    // Restart: task 2 was deleted in CVAT while the warden was down; task 3 is new.
    const reopened = await Vault.open({ shareDir, vaultDir: vault.layout.root, mode: 'link', logger, metrics });
    await reopened.upsert(task(3, ['b/c/4.jpg']));
    const swept = await reopened.sweep((id) => id === 3);
    expect(swept).toEqual({ prunedFiles: 1, prunedTasks: 1, unrecorded: 0, damagedRecords: 0 });
    expect(readdirSync(reopened.layout.root).sort()).toEqual(['.vault-meta', 'b']);
    expect((await metrics.vaultPruned.get()).values[0]?.value).toBe(3);
    await reopened.close();
  });

  it('counts the bytes only the vault still holds', async () => {
    const shareDir = share(FILES);
    const { vault, metrics } = await openVault(shareDir);
    await vault.upsert(task(1, Object.keys(FILES)));
    rmSync(path.join(shareDir, 'b/c/3.jpg'));
    expect(await vault.measure()).toEqual({ bytes: 5, files: 1 });
    expect((await metrics.vaultOnlyBytes.get()).values[0]?.value).toBe(5);
    await vault.close();
  });

  it('refuses a vault on another filesystem at start, saying where to put it', async () => {
    const shareDir = share(FILES);
    const mnt = path.join(tmp.path, 'other-fs');
    mkdirSync(mnt);
    let mounted = false;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' });
      mounted = true;
    } catch {
      console.warn('cannot mount a tmpfs here: injecting EXDEV instead');
    }
    try {
      const attempt = mounted
        ? Vault.open({ shareDir, vaultDir: path.join(mnt, 'vault'), mode: 'link', logger })
        : Vault.open({
            shareDir,
            vaultDir: path.join(tmp.path, 'vault'),
            mode: 'link',
            logger,
            fs: { link: async () => Promise.reject(Object.assign(new Error('EXDEV'), { code: 'EXDEV' })) },
          });
      const error = await attempt.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems[0]).toMatch(mounted ? /another filesystem/ : /EXDEV/);
      expect((error as ConfigError).problems[0]).toContain(path.join(shareDir, '.cvat-warden-vault'));
    } finally {
      if (mounted) execFileSync('umount', [mnt]);
    }
    // A bind mount of the same filesystem keeps st_dev but still fails with EXDEV: injected.
    const injected = await Vault.open({
      shareDir,
      vaultDir: path.join(shareDir, 'v2'),
      mode: 'link',
      logger,
      fs: { link: async () => Promise.reject(Object.assign(new Error('EXDEV'), { code: 'EXDEV' })) },
    }).catch((e: unknown) => e);
    expect((injected as ConfigError).problems[0]).toMatch(/another mount than the share/);
    expect(readdirSync(shareDir).filter((n) => n.startsWith('.cvat-warden-probe'))).toEqual([]);
  });

  it('the guard never expects or watches files under the vault (ignoredPrefixes)', async () => {
    const shareDir = share(FILES);
    const { vault } = await openVault(shareDir);
    await vault.upsert(task(1, Object.keys(FILES)));
    const metrics = createMetrics({ buildInfo: { version: 'test' } });
    const guard = new ShareGuard({
      shareDir,
      stateDir: path.join(tmp.path, 'state'),
      metrics,
      logger,
      persistent: false,
      ignoredPrefixes: [vault.prefixInShare!],
    });
    await guard.start();
    await guard.upsertTasks([task(2, ['a/1.jpg', '.cvat-warden-vault/a/2.jpg', '.cvat-warden-vault/b/c/3.jpg'])]);
    expect(guard.status().filesExpected).toBe(1);
    await guard.close();
    await vault.close();
  });

  it('reflink mode fails clearly where the filesystem cannot clone', async () => {
    const shareDir = share(FILES);
    const error = await Vault.open({ shareDir, vaultDir: path.join(shareDir, '.v'), mode: 'reflink', logger }).catch((e: unknown) => e);
    // tmpfs/ext4 here cannot clone; on btrfs/XFS this opens instead.
    if (error instanceof ConfigError) expect(error.problems[0]).toMatch(/cannot make reflinks .*--vault-mode link/);
    else expect(error).toBeInstanceOf(Vault);
  });
});
