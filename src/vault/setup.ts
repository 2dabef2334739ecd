/**
 * Start-up check of a vault directory. A vault deletes and replaces entries, so it
 * only ever works in a directory it made (restic and borg refuse a repository they
 * did not initialise): the directory must be new or empty, or carry the vault's
 * marker. It must not be a symlink or lie under one, must not be the share or hold
 * it, must not sit inside a folder of the share that holds files (CVAT tasks created
 * from that folder would pick up the vault's links), must be writable by the warden
 * alone, and on the share's filesystem AND mount (a hard link across mount points
 * fails with EXDEV even on one disk), able to make the kind of entry its mode needs.
 * Each problem becomes a ConfigError (exit 2) that says what to do, before anything is linked.
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { VaultMode } from '../domain.js';
import { ConfigError } from '../errors.js';
import { codeOf, type VaultFs } from './fsops.js';
import { META_DIR, SUGGESTED_VAULT_NAME, VAULT_FORMAT, VaultLayout, type MarkerRead, type VaultMeta } from './layout.js';
import { firstSymlinkIn, OWN_DIR_MODE } from './safe-path.js';

export interface VaultSetup {
  layout: VaultLayout;
  mode: VaultMode;
  meta: VaultMeta;
  /** The marker was format 1 (an earlier cvat-warden's vault): its records need migrating. */
  legacy: boolean;
  /** Share-relative path of the vault when it lies inside the share (the guard must skip it), else undefined. */
  prefixInShare: string | undefined;
  /** Real path of the share. */
  shareRoot: string;
}

const suggestion = (shareDir: string) => `put it inside the share volume, e.g. --vault ${path.join(shareDir, SUGGESTED_VAULT_NAME)}`;

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** Directories of the share between its root (excluded) and the vault (excluded) that hold a file or a link. */
async function ancestorHoldingFiles(share: string, vault: string): Promise<string | undefined> {
  const rel = path.relative(share, path.dirname(vault));
  if (rel === '') return undefined;
  let dir = share;
  for (const part of rel.split(path.sep)) {
    dir = path.join(dir, part);
    const handle = await fs.opendir(dir).catch(() => undefined);
    if (!handle) continue;
    try {
      // Only as far as the first file: a media folder can hold a million.
      for await (const entry of handle) if (!entry.isDirectory()) return dir;
    } catch {
      // Unreadable: judged by what was read.
    }
  }
  return undefined;
}

async function isEmptyDir(dir: string): Promise<boolean> {
  const handle = await fs.opendir(dir);
  try {
    return (await handle.read()) === null;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Ends the check with a ConfigError naming the vault. */
type Fail = (problem: string) => never;

export async function checkVaultSetup(shareDir: string, vaultDir: string, mode: VaultMode, vfs: VaultFs): Promise<VaultSetup> {
  const fail: Fail = (problem) => {
    throw new ConfigError([`vault ${vaultDir}: ${problem}`]);
  };
  const share = await fs.realpath(shareDir).catch((error: unknown) => fail(`the share ${shareDir} cannot be resolved (${codeOf(error)})`));
  const vault = path.resolve(vaultDir);
  await refuseSymlinkOrShare(vault, share, shareDir, fail);
  const layout = new VaultLayout(vault);
  const { existed, marker } = await readWhatIsThere(vault, share, layout, fail);
  if (inside(vault, share)) await refuseInsideFolderWithFiles(vault, share, fail);
  if (!existed) await createVaultDir(vault, fail);
  const { shareStat, vaultStat } = await refuseSharedOrForeignDevice(vault, share, shareDir, fail);
  const meta: VaultMeta =
    marker.state === 'ok'
      ? marker.meta
      : {
          version: VAULT_FORMAT,
          id: randomBytes(8).toString('hex'),
          mode: marker.state === 'legacy' ? marker.mode : mode,
          createdAt: marker.state === 'legacy' && marker.createdAt ? marker.createdAt : new Date().toISOString(),
          share: { root: share, dev: shareStat.dev, ino: shareStat.ino },
          dev: vaultStat.dev,
        };
  try {
    await layout.ensure();
    // The marker first, durably: from now on this directory is provably the vault's.
    if (marker.state !== 'ok') await layout.writeAtomic(layout.metaFile, JSON.stringify(meta), { durable: true });
  } catch (error) {
    fail(
      `is not writable (${codeOf(error)}): the warden needs write access to it${codeOf(error) === 'EROFS' ? ' — the share is mounted read-only; mount it read-write for the warden' : ''}`,
    );
  }
  if (meta.dev !== vaultStat.dev)
    fail(`was made on device ${meta.dev} but is now on ${vaultStat.dev}: its records name inodes of another filesystem; start a new vault`);
  await layout.clearTemp();
  await probeLink(share, shareDir, layout, mode, vfs, fail);
  const rel = path.relative(share, vault).split(path.sep).join('/');
  return { layout, mode, meta, legacy: marker.state === 'legacy', prefixInShare: inside(vault, share) ? rel : undefined, shareRoot: share };
}

/** The vault is never reached through a symlink, and is neither the share nor around it. */
async function refuseSymlinkOrShare(vault: string, share: string, shareDir: string, fail: Fail): Promise<void> {
  const link = await firstSymlinkIn(vault);
  if (link) {
    const real = await fs.realpath(link).catch(() => '(unresolvable)');
    fail(
      `${link === vault ? 'is' : `lies under ${link}, which is`} a symlink (to ${real}): the vault never follows one — pass the real path${link === vault ? ` ${real}` : ''}`,
    );
  }
  if (vault === share || inside(share, vault)) fail(`must not be the share itself or contain it; ${suggestion(shareDir)}`);
}

/** An existing path must be a directory the vault made (its marker) or an empty one. */
async function readWhatIsThere(vault: string, share: string, layout: VaultLayout, fail: Fail): Promise<{ existed: boolean; marker: MarkerRead }> {
  const existing = await fs.lstat(vault).catch(() => null);
  if (!existing) return { existed: false, marker: { state: 'absent' } };
  if (!existing.isDirectory()) fail('exists and is not a directory');
  const marker = await layout.readMarker();
  if (marker.state === 'damaged')
    fail(`its marker ${path.join(META_DIR, 'vault.json')} is damaged (${marker.problem}): the vault will not touch a directory it cannot prove it made`);
  if (marker.state === 'absent' && !(await isEmptyDir(vault)))
    fail(
      `exists, is not empty and is not a vault (no ${path.join(META_DIR, 'vault.json')}): a vault removes entries it made, so it only starts in a new or empty directory — choose a new one, e.g. --vault ${path.join(share, SUGGESTED_VAULT_NAME)}`,
    );
  return { existed: true, marker };
}

async function refuseInsideFolderWithFiles(vault: string, share: string, fail: Fail): Promise<void> {
  const holder = await ancestorHoldingFiles(share, vault);
  if (holder)
    fail(
      `lies inside ${holder}, a folder of the share that holds files: a CVAT task created from that folder would take in the vault's links; put the vault at the top of the share, e.g. --vault ${path.join(share, SUGGESTED_VAULT_NAME)}`,
    );
}

async function createVaultDir(vault: string, fail: Fail): Promise<void> {
  try {
    await fs.mkdir(vault, { recursive: true, mode: OWN_DIR_MODE });
  } catch (error) {
    fail(
      `cannot be created (${codeOf(error)}): ${codeOf(error) === 'EROFS' ? 'the share is mounted read-only; the vault needs it read-write for the warden (see the compose override / kustomize overlay)' : 'check the path and its permissions'}`,
    );
  }
  // Made just now: still no symlink on the way (someone could have raced the mkdir).
  if (await firstSymlinkIn(vault)) fail('a symlink appeared in its path while it was created');
}

/** The warden's alone (nobody else can swap its folders), and on the share's filesystem (hard links cannot cross). */
async function refuseSharedOrForeignDevice(vault: string, share: string, shareDir: string, fail: Fail): Promise<{ shareStat: Stats; vaultStat: Stats }> {
  const [shareStat, vaultStat] = await Promise.all([fs.stat(share), fs.lstat(vault)]);
  // Group write is fine when the group is the warden's own (a Kubernetes fsGroup makes every directory g+w).
  const othersMayWrite = (vaultStat.mode & 0o002) !== 0 || ((vaultStat.mode & 0o020) !== 0 && vaultStat.gid !== process.getgid?.());
  if (othersMayWrite)
    fail(
      `is writable by other users (mode ${(vaultStat.mode & 0o777).toString(8)}, group ${vaultStat.gid}): they could swap its folders for symlinks; make it the warden's alone (chmod go-w ${vault})`,
    );
  if (shareStat.dev !== vaultStat.dev) {
    fail(
      `is on another filesystem than the share ${shareDir} (device ${vaultStat.dev} vs ${shareStat.dev}): hard links cannot cross filesystems; ${suggestion(shareDir)}`,
    );
  }
  return { shareStat, vaultStat };
}

/** The test entry: from the share's side of the mount into the vault, as every real one will be. */
async function probeLink(share: string, shareDir: string, layout: VaultLayout, mode: VaultMode, vfs: VaultFs, fail: Fail): Promise<void> {
  // A fresh random name created exclusively: never through a file or symlink already there.
  const probe = path.join(share, `.cvat-warden-probe-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await fs.writeFile(probe, 'cvat-warden vault probe\n', { flag: 'wx', mode: 0o600 });
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
    await fs.unlink(probe).catch(() => undefined);
    await fs.unlink(target).catch(() => undefined);
  }
}
