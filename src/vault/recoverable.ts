/** Which missing share files the vault can put back: for `check --vault` (and anyone who asks). */
import fs from 'node:fs/promises';
import { VaultLayout, type DamagedRecord } from './layout.js';
import { firstSymlinkIn, relDirOf, walkDirNoFollow } from './safe-path.js';

export interface Recoverable {
  dir: string;
  recoverable: string[];
  unrecoverable: string[];
  /** Records in the vault's task lists that name no safe file (their files cannot be verified). */
  damagedRecords: { count: number; sample: DamagedRecord[] };
  /** Set when the vault itself cannot be trusted (not a vault, a damaged marker, under a symlink). */
  problem?: string;
}

export async function recoverableFromVault(vaultDir: string, missing: readonly string[]): Promise<Recoverable> {
  const layout = new VaultLayout(vaultDir);
  const result: Recoverable = { dir: layout.root, recoverable: [], unrecoverable: [], damagedRecords: { count: 0, sample: [] } };
  const wanted = [...new Set(missing)].sort();
  const marker = await layout.readMarker();
  const link = await firstSymlinkIn(layout.root);
  if (link || marker.state === 'absent' || marker.state === 'damaged') {
    result.problem = link
      ? `the vault path goes through a symlink (${link}): not followed`
      : marker.state === 'damaged'
        ? `its marker is damaged (${marker.problem})`
        : 'not a vault (no .vault-meta/vault.json)';
    result.unrecoverable.push(...wanted);
    return result;
  }
  const dev = marker.state === 'ok' ? marker.meta.dev : (await fs.lstat(layout.root)).dev;
  const inos = new Map<string, number | null>();
  for (const taskId of await layout.manifestTaskIds()) {
    const read = await layout.readManifest(taskId);
    if (!read) continue;
    result.damagedRecords.count += read.damaged;
    for (const d of read.damagedSample) if (result.damagedRecords.sample.length < 200) result.damagedRecords.sample.push(d);
    for (const r of read.records) inos.set(r.rel, inos.has(r.rel) && inos.get(r.rel) !== r.ino ? null : (r.ino ?? null));
  }
  for (const rel of wanted) {
    let ok = false;
    if (!VaultLayout.reserved(rel)) {
      const walk = await walkDirNoFollow(layout.root, relDirOf(rel), { create: false });
      const st = walk.ok ? await fs.lstat(layout.file(rel)).catch(() => null) : null;
      const ino = inos.get(rel);
      ok = st?.isFile() === true && st.dev === dev && (typeof ino !== 'number' || st.ino === ino);
    }
    (ok ? result.recoverable : result.unrecoverable).push(rel);
  }
  return result;
}

export function formatRecoverable(r: Recoverable, shareDir: string): string {
  const lines: string[] = [];
  if (r.problem) lines.push('', `Vault ${r.dir}: ${r.problem}.`);
  if (r.recoverable.length + r.unrecoverable.length > 0) {
    lines.push('', `Vault ${r.dir}: ${r.recoverable.length} missing file(s) recoverable, ${r.unrecoverable.length} not in the vault.`);
    for (const p of r.recoverable.slice(0, 50)) lines.push(`  recoverable    ${p}`);
    for (const p of r.unrecoverable.slice(0, 50)) lines.push(`  unrecoverable  ${p}`);
    if (r.recoverable.length) lines.push(`Put them back: cvat-warden restore --all --share-dir ${shareDir} --vault ${r.dir}`);
  }
  if (r.damagedRecords.count) {
    lines.push('', `Vault ${r.dir}: ${r.damagedRecords.count} damaged record(s) in its task lists (their files cannot be verified):`);
    for (const d of r.damagedRecords.sample.slice(0, 50)) lines.push(`  ${d.where} — ${d.problem}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
