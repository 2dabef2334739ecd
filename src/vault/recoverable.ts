/** Which missing share files the vault can put back: for `check --vault` (and anyone who asks). */
import fs from 'node:fs/promises';
import { VaultLayout } from './layout.js';

export interface Recoverable {
  dir: string;
  recoverable: string[];
  unrecoverable: string[];
}

export async function recoverableFromVault(vaultDir: string, missing: readonly string[]): Promise<Recoverable> {
  const layout = new VaultLayout(vaultDir);
  const result: Recoverable = { dir: layout.root, recoverable: [], unrecoverable: [] };
  for (const rel of [...new Set(missing)].sort()) {
    const st = VaultLayout.reserved(rel) ? null : await fs.lstat(layout.file(rel)).catch(() => null);
    (st?.isFile() ? result.recoverable : result.unrecoverable).push(rel);
  }
  return result;
}

export function formatRecoverable(r: Recoverable, shareDir: string): string {
  if (r.recoverable.length + r.unrecoverable.length === 0) return '';
  const lines = ['', `Vault ${r.dir}: ${r.recoverable.length} missing file(s) recoverable, ${r.unrecoverable.length} not in the vault.`];
  for (const p of r.recoverable.slice(0, 50)) lines.push(`  recoverable    ${p}`);
  for (const p of r.unrecoverable.slice(0, 50)) lines.push(`  unrecoverable  ${p}`);
  if (r.recoverable.length) lines.push(`Put them back: cvat-warden restore --all --share-dir ${shareDir} --vault ${r.dir}`);
  return `${lines.join('\n')}\n`;
}
