/**
 * Puts missing share files back from the vault. Each file goes in with one link(2)
 * onto its original name: atomic (the name appears with the whole file or not at all)
 * and it fails with EEXIST rather than replace anything — a rename would clobber a
 * file that showed up meanwhile. Reflink vaults clone to a temp name in the vault
 * first and link that in. A file already in place is left alone; one with other
 * content is never overwritten and is reported.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { VaultMode } from '../domain.js';
import { checkName } from '../guard/index.js';
import { codeOf, isMissing, withVaultFs, type VaultFs } from './fsops.js';
import { VaultLayout } from './layout.js';

export type RestoreSelection = { all: true } | { taskIds: readonly number[] } | { paths: readonly string[] };

export interface RestoreOptions {
  shareDir: string;
  vaultDir: string;
  select: RestoreSelection;
  dryRun?: boolean;
  /** Default: what the vault recorded when it was made (link when unknown). */
  mode?: VaultMode;
  fs?: Partial<VaultFs>;
  /** Files checked and restored in parallel (libuv runs the stats). @default 64 */
  concurrency?: number;
}

export interface RestoreEntry {
  path: string;
  reason?: string;
}

export interface RestoreReport {
  dryRun: boolean;
  shareDir: string;
  vaultDir: string;
  mode: VaultMode;
  /** Put back (or, with --dry-run, would be). */
  restored: RestoreEntry[];
  /** Missing and not in the vault, or the restore failed. */
  unrecoverable: RestoreEntry[];
  /** Not restored on purpose: another file is in place (never overwritten), or a bad name. */
  skipped: RestoreEntry[];
  /** Asked-for files already in place with the vault's content (not listed one by one). */
  alreadyInPlace: number;
  /** true when everything asked for is in place now (or would be). */
  ok: boolean;
}

/** Byte-for-byte comparison in 64 KiB steps (never a whole file in memory). */
async function sameContent(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([fs.open(a, 'r'), fs.open(b, 'r')]);
  try {
    const bx = Buffer.alloc(64 * 1024);
    const by = Buffer.alloc(64 * 1024);
    for (let pos = 0; ; pos += bx.length) {
      const [rx, ry] = await Promise.all([x.read(bx, 0, bx.length, pos), y.read(by, 0, by.length, pos)]);
      if (rx.bytesRead !== ry.bytesRead || !bx.subarray(0, rx.bytesRead).equals(by.subarray(0, ry.bytesRead))) return false;
      if (rx.bytesRead === 0) return true;
    }
  } finally {
    await Promise.all([x.close(), y.close()]);
  }
}

async function selectPaths(layout: VaultLayout, select: RestoreSelection, report: RestoreReport): Promise<string[]> {
  const rels = new Set<string>();
  if ('paths' in select) {
    for (const raw of select.paths) {
      const verdict = checkName(raw.replace(/^\/+/, ''));
      if (!verdict.ok || VaultLayout.reserved(verdict.rel))
        report.skipped.push({ path: raw, reason: `not a safe share-relative path (${verdict.ok ? 'reserved' : verdict.reason})` });
      else rels.add(verdict.rel);
    }
    return [...rels];
  }
  const ids = 'all' in select ? await layout.manifestTaskIds() : select.taskIds;
  for (const taskId of ids) {
    const manifest = await layout.readManifest(taskId);
    if (!manifest) {
      report.unrecoverable.push({ path: `task ${taskId}`, reason: 'the vault has no record of this task (not a share task the vault has seen)' });
      continue;
    }
    for (const rel of manifest) if (checkName(rel).ok && !VaultLayout.reserved(rel)) rels.add(rel);
  }
  return [...rels].sort();
}

export async function restoreFromVault(o: RestoreOptions): Promise<RestoreReport> {
  const layout = new VaultLayout(o.vaultDir);
  const shareDir = path.resolve(o.shareDir);
  const mode = o.mode ?? (await layout.readMeta())?.mode ?? 'link';
  const vfs = withVaultFs(o.fs);
  const dryRun = o.dryRun ?? false;
  const report: RestoreReport = { dryRun, shareDir, vaultDir: layout.root, mode, restored: [], unrecoverable: [], skipped: [], alreadyInPlace: 0, ok: false };
  const rels = await selectPaths(layout, o.select, report);
  if (mode === 'reflink' && !dryRun) await layout.ensure();

  const restoreOne = async (rel: string): Promise<void> => {
    const original = `${shareDir}/${rel}`;
    const held = `${layout.root}/${rel}`;
    const [kept, present] = await Promise.all([fs.stat(held).catch(() => null), fs.stat(original).catch(() => null)]);
    if (present) {
      if (kept && ((present.ino === kept.ino && present.dev === kept.dev) || (present.size === kept.size && (await sameContent(original, held)))))
        report.alreadyInPlace++;
      else if (kept)
        report.skipped.push({ path: rel, reason: 'another file with different content is in place: not overwritten (move it away to restore the vault copy)' });
      else report.alreadyInPlace++;
      return;
    }
    if (!kept?.isFile()) {
      report.unrecoverable.push({ path: rel, reason: 'missing from the share and not in the vault' });
      return;
    }
    if (dryRun) {
      report.restored.push({ path: rel });
      return;
    }
    try {
      await fs.mkdir(path.dirname(original), { recursive: true });
      if (mode === 'link') await vfs.link(held, original);
      else {
        const tmp = layout.tmpName();
        try {
          await vfs.reflink(held, tmp);
          await fs.link(tmp, original);
        } finally {
          await fs.rm(tmp, { force: true });
        }
      }
      report.restored.push({ path: rel });
    } catch (error) {
      if (codeOf(error) === 'EEXIST') {
        // Someone put a file there between our stat and our link: judge it like any present file.
        return restoreOne(rel);
      }
      report.unrecoverable.push({ path: rel, reason: `restore failed (${codeOf(error)})${isMissing(error) ? ': the vault entry vanished' : ''}` });
    }
  };

  let next = 0;
  const worker = async () => {
    for (let rel = rels[next++]; rel !== undefined; rel = rels[next++]) await restoreOne(rel);
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 64, rels.length) }, worker));
  for (const list of [report.restored, report.unrecoverable, report.skipped]) list.sort((a, b) => a.path.localeCompare(b.path));
  report.ok = report.unrecoverable.length === 0 && report.skipped.length === 0;
  return report;
}

export function formatRestoreReport(r: RestoreReport): string {
  const lines: string[] = [];
  const verb = r.dryRun ? 'would restore' : 'restored';
  lines.push(
    `${verb} ${r.restored.length} file(s) from the vault ${r.vaultDir} into ${r.shareDir}; ${r.alreadyInPlace} already in place; ${r.unrecoverable.length} unrecoverable; ${r.skipped.length} skipped`,
  );
  const list = (title: string, entries: RestoreEntry[]) => {
    if (!entries.length) return;
    lines.push('', `${title}:`);
    for (const e of entries.slice(0, 200)) lines.push(`  ${e.path}${e.reason ? ` — ${e.reason}` : ''}`);
    if (entries.length > 200) lines.push(`  … and ${entries.length - 200} more (see --json)`);
  };
  list(r.dryRun ? 'Would restore' : 'Restored', r.restored);
  list('Unrecoverable', r.unrecoverable);
  list('Skipped', r.skipped);
  return `${lines.join('\n')}\n`;
}
