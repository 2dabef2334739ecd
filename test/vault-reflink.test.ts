/**
 * `--vault-mode reflink` on a real XFS (reflink=1) loop mount made in the test's temp
 * dir: the vault entry is a copy-on-write clone (its own inode), so it survives an
 * in-place modification of the original, and restore puts the vault's version back
 * once the modified file is moved away. Skips with a message where mkfs.xfs or loop
 * mounts are not available; under CI=true a missing mkfs.xfs fails (.ci/run installs it
 * with scripts/install-xfsprogs.sh), a refused loop mount still skips.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { Vault } from '../src/vault/vault.js';
import { restoreFromVault } from '../src/vault/restore.js';
import { job, meta } from './support/guard.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('vault-reflink-');

function mountXfs(dir: string): (() => void) | string {
  try {
    execFileSync('mkfs.xfs', ['-V'], { stdio: 'ignore' });
  } catch {
    if (process.env['CI'] === 'true') throw new Error('mkfs.xfs is missing: scripts/install-xfsprogs.sh should have installed it');
    return 'mkfs.xfs is not installed (scripts/install-xfsprogs.sh)';
  }
  const image = path.join(dir, 'xfs.img');
  const mnt = path.join(dir, 'xfs');
  mkdirSync(mnt);
  try {
    writeFileSync(image, '');
    truncateSync(image, 320 * 1024 * 1024);
    execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', image], { stdio: 'ignore' });
    execFileSync('mount', ['-o', 'loop', image, mnt], { stdio: 'ignore' });
  } catch (error) {
    return `cannot make an XFS loop mount here (${(error as Error).message.split('\n')[0]})`;
  }
  return () => execFileSync('umount', [mnt]);
}

describe('vault in reflink mode', () => {
  it('keeps a copy-on-write clone that survives in-place modification, and restores it', async () => {
    const unmount = mountXfs(tmp.path);
    if (typeof unmount === 'string') {
      console.warn(`SKIP reflink test: ${unmount}`);
      return;
    }
    try {
      const share = path.join(tmp.path, 'xfs', 'share');
      mkdirSync(path.join(share, 'img'), { recursive: true });
      writeFileSync(path.join(share, 'img/1.jpg'), 'original content');
      const vault = await Vault.open({
        shareDir: share,
        vaultDir: path.join(share, '.cvat-warden-vault'),
        mode: 'reflink',
        logger: createLogger({ level: 'silent' }),
      });
      await vault.upsert({ taskId: 1, storage: 'share', isVideo: false, meta: meta([{ name: 'img/1.jpg' }]), jobs: [job(1, 0, 0)] });
      const held = path.join(vault.layout.root, 'img/1.jpg');
      expect(statSync(held).ino).not.toBe(statSync(path.join(share, 'img/1.jpg')).ino);
      expect(readFileSync(held, 'utf8')).toBe('original content');
      appendFileSync(path.join(share, 'img/1.jpg'), ' — overwritten in place');
      expect(readFileSync(held, 'utf8')).toBe('original content');
      // Restore never overwrites the modified file; moved away, the clone goes back.
      const refused = await restoreFromVault({ shareDir: share, vaultDir: vault.layout.root, select: { all: true } });
      expect(refused.skipped.map((e) => e.path)).toEqual(['img/1.jpg']);
      renameSync(path.join(share, 'img/1.jpg'), path.join(share, 'img/1.jpg.bad'));
      const report = await restoreFromVault({ shareDir: share, vaultDir: vault.layout.root, select: { all: true } });
      expect(report).toMatchObject({ ok: true, mode: 'reflink', restored: [{ path: 'img/1.jpg' }] });
      expect(readFileSync(path.join(share, 'img/1.jpg'), 'utf8')).toBe('original content');
      expect(statSync(path.join(share, 'img/1.jpg')).ino).not.toBe(statSync(held).ino);
      await vault.close();
    } finally {
      unmount();
    }
  });
});
