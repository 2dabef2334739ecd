/**
 * Start-up check of a vault directory: it must be on the share's filesystem AND mount
 * (a hard link across mount points fails with EXDEV even on one disk), writable, and
 * able to make the kind of entry its mode needs. Each problem becomes a ConfigError
 * (exit 2) that says what to do, before anything is linked.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { VaultMode } from '../domain.js';
import { ConfigError } from '../errors.js';
import { codeOf, type VaultFs } from './fsops.js';
import { SUGGESTED_VAULT_NAME, VaultLayout } from './layout.js';

export interface VaultSetup {
  layout: VaultLayout;
  mode: VaultMode;
  /** Share-relative path of the vault when it lies inside the share (the guard must skip it), else undefined. */
  prefixInShare: string | undefined;
}

const suggestion = (shareDir: string) => `put it inside the share volume, e.g. --vault ${path.join(shareDir, SUGGESTED_VAULT_NAME)}`;

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

export async function checkVaultSetup(shareDir: string, vaultDir: string, mode: VaultMode, vfs: VaultFs): Promise<VaultSetup> {
  const share = await fs.realpath(shareDir).catch(() => path.resolve(shareDir));
  const fail = (problem: string): never => {
    throw new ConfigError([`vault ${vaultDir}: ${problem}`]);
  };
  try {
    await fs.mkdir(vaultDir, { recursive: true });
  } catch (error) {
    fail(
      `cannot be created (${codeOf(error)}): ${codeOf(error) === 'EROFS' ? 'the share is mounted read-only; the vault needs it read-write for the warden (see the compose override / kustomize overlay)' : 'check the path and its permissions'}`,
    );
  }
  const vault = await fs.realpath(vaultDir);
  if (vault === share || inside(share, vault)) fail(`must not be the share itself or contain it; ${suggestion(shareDir)}`);
  const [shareStat, vaultStat] = await Promise.all([fs.stat(share), fs.stat(vault)]);
  if (shareStat.dev !== vaultStat.dev) {
    fail(
      `is on another filesystem than the share ${shareDir} (device ${vaultStat.dev} vs ${shareStat.dev}): hard links cannot cross filesystems; ${suggestion(shareDir)}`,
    );
  }
  const layout = new VaultLayout(vault);
  try {
    await layout.ensure();
    await layout.writeAtomic(path.join(layout.tmpDir, 'write-probe'), 'ok');
  } catch (error) {
    fail(
      `is not writable (${codeOf(error)}): the warden needs write access to it${codeOf(error) === 'EROFS' ? ' — the share is mounted read-only; mount it read-write for the warden' : ''}`,
    );
  }
  await layout.clearTemp();
  // The test entry: from the share's side of the mount into the vault, as every real one will be.
  const probe = path.join(share, `.cvat-warden-probe-${process.pid}`);
  try {
    await fs.writeFile(probe, 'cvat-warden vault probe\n', { flag: 'w' });
  } catch (error) {
    fail(
      `cannot test a link: the share ${shareDir} is not writable (${codeOf(error)}); the vault (and restore) need the share mounted read-write for the warden`,
    );
  }
  const target = layout.tmpName();
  try {
    if (mode === 'link') await vfs.link(probe, target);
    else await vfs.reflink(probe, target);
  } catch (error) {
    const code = codeOf(error);
    if (code === 'EXDEV')
      fail(`a test link from the share failed with EXDEV: it is on another mount than the share (a bind mount or volume of its own); ${suggestion(shareDir)}`);
    if (mode === 'reflink') fail(`this filesystem cannot make reflinks (${code}); reflinks need btrfs, XFS with reflink=1, or similar — use --vault-mode link`);
    fail(
      `a test link from the share failed (${code}): check that the warden may create hard links there (fs.protected_hardlinks needs it to own the files or read and write them)`,
    );
  } finally {
    await fs.rm(probe, { force: true });
    await fs.rm(target, { force: true });
  }
  const rel = path.relative(share, vault).split(path.sep).join('/');
  return { layout, mode, prefixInShare: inside(vault, share) ? rel : undefined };
}
