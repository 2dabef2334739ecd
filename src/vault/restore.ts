/**
 * Puts missing share files back from the vault. Each file goes in with one link(2)
 * onto its original name: atomic (the name appears with the whole file or not at all)
 * and it fails with EEXIST rather than replace anything — a rename would clobber a
 * file that showed up meanwhile. Reflink vaults clone to a temp name in the vault
 * first and link that in.
 *
 * It never leaves the share or the vault: both roots are real paths, every directory
 * below them is walked with lstat (a symlink there, dangling or not, is refused, never
 * followed; missing share directories are made one by one), and the parent of the
 * target is checked again (`stillExactly`) right before the link(2). What is at the
 * target decides, once: nothing → restore; the same file → in place; a different
 * file, a symlink, a directory or a device → skipped with the reason. Each file is
 * looked at once and at most once more (an EEXIST race): no loop can spin, and a stop
 * signal ends the run between files.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Stats } from 'node:fs';
import type { VaultMode } from '../domain.js';
import { checkName } from '../guard/index.js';
import { codeOf, withVaultFs, type VaultFs } from './fsops.js';
import { VaultLayout, type DamagedRecord, type MarkerRead } from './layout.js';
import { firstSymlinkIn, relDirOf, sameContent, stillExactly, walkDirNoFollow, type Walk } from './safe-path.js';

/** `inodes`: the vault's own entries of the paths, when the caller knows them (auto-restore): no records are read then. */
export type RestoreSelection = { all: true } | { taskIds: readonly number[] } | { paths: readonly string[]; inodes?: ReadonlyMap<string, number> };

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
  /** Stops between files (SIGTERM): what was not looked at is counted in `notAttempted`. */
  signal?: AbortSignal;
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
  /** Not restored on purpose: another file, a symlink or a directory is in place (never replaced), or a bad name. */
  skipped: RestoreEntry[];
  /** Asked-for files already in place with the vault's content (not listed one by one). */
  alreadyInPlace: number;
  /** Records in the vault's task lists that name no safe file: their files cannot be verified or restored. */
  damagedRecords: { count: number; sample: DamagedRecord[] };
  /** Files not looked at because a stop signal came first. */
  notAttempted: number;
  /** true when everything asked for is in place now (or would be), and nothing asked for was unverifiable. */
  ok: boolean;
}

interface Wanted {
  rel: string;
  /** Inode of the entry the vault made (format 2 records); null/undefined when unknown. */
  ino: number | null | undefined;
}

async function selectPaths(layout: VaultLayout, select: RestoreSelection, report: RestoreReport): Promise<Wanted[]> {
  const wanted = new Map<string, Wanted>();
  const note = (read: Awaited<ReturnType<VaultLayout['readManifest']>>) => {
    if (!read) return;
    report.damagedRecords.count += read.damaged;
    for (const d of read.damagedSample) if (report.damagedRecords.sample.length < 200) report.damagedRecords.sample.push(d);
  };
  if ('paths' in select) {
    // Inodes from whatever task lists the path (records that disagree make it unknown).
    const inoOf = new Map<string, number | null>(select.inodes ?? []);
    for (const taskId of select.inodes ? [] : await layout.manifestTaskIds()) {
      const read = await layout.readManifest(taskId);
      note(read);
      for (const r of read?.records ?? []) {
        const ino = typeof r.ino === 'number' ? r.ino : null;
        inoOf.set(r.rel, inoOf.has(r.rel) && inoOf.get(r.rel) !== ino ? null : ino);
      }
    }
    for (const raw of select.paths) {
      const verdict = checkName(raw.replace(/^\/+/, ''));
      if (!verdict.ok || VaultLayout.reserved(verdict.rel))
        report.skipped.push({ path: raw, reason: `not a safe share-relative path (${verdict.ok ? 'reserved' : verdict.reason})` });
      else wanted.set(verdict.rel, { rel: verdict.rel, ino: inoOf.get(verdict.rel) ?? null });
    }
    return [...wanted.values()];
  }
  const ids = 'all' in select ? await layout.manifestTaskIds() : select.taskIds;
  for (const taskId of ids) {
    const read = await layout.readManifest(taskId);
    if (!read) {
      report.unrecoverable.push({ path: `task ${taskId}`, reason: 'the vault has no record of this task (not a share task the vault has seen)' });
      continue;
    }
    note(read);
    for (const r of read.records) {
      const known = wanted.get(r.rel);
      wanted.set(r.rel, { rel: r.rel, ino: known && known.ino !== r.ino ? null : r.ino });
    }
  }
  return [...wanted.values()].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** What is at a share path decides what restore does; undefined = nothing there. */
function judgePresent(st: Stats): string | undefined {
  if (st.isSymbolicLink()) return 'a symlink is at the path (dangling or not): not replaced (remove it to restore)';
  if (st.isDirectory()) return 'a directory is at the path: not replaced';
  if (!st.isFile()) return 'something that is not a regular file (a FIFO, socket or device) is at the path: not replaced';
  return undefined;
}

/** What every file of one restore run works with; only `report` changes. */
interface RestoreRun {
  layout: VaultLayout;
  /** The share's real path: resolved once, never again below it. */
  shareRoot: string;
  /** The vault's device: an entry on another one is not the file the vault made. */
  vaultDev: number;
  mode: VaultMode;
  dryRun: boolean;
  vfs: VaultFs;
  report: RestoreReport;
  /** A read-only walk of a directory, made at most once per run. */
  walkOnce(root: string, relDir: string): Promise<Walk>;
}

export async function restoreFromVault(o: RestoreOptions): Promise<RestoreReport> {
  const requested = path.resolve(o.vaultDir);
  const layout = new VaultLayout(requested);
  const shareDir = path.resolve(o.shareDir);
  const dryRun = o.dryRun ?? false;
  const marker = await layout.readMarker();
  const mode = o.mode ?? (marker.state === 'ok' ? marker.meta.mode : marker.state === 'legacy' ? marker.mode : 'link');
  const report = emptyReport({ dryRun, shareDir, vaultDir: layout.root, mode });
  const vfs = withVaultFs(o.fs);
  const roots = await resolveRoots(shareDir, requested, marker);
  if (!roots.ok) {
    report.unrecoverable.push({ path: '*', reason: roots.why });
    return report;
  }
  const vaultDev = marker.state === 'ok' ? marker.meta.dev : (await fs.lstat(layout.root)).dev;
  const wanted = await selectPaths(layout, o.select, report);
  if (mode === 'reflink' && !dryRun) await layout.ensure();

  // Read-only judgements walk each directory once per run; a write walks again and re-checks right before the link(2).
  const walked = new Map<string, Promise<Walk>>();
  const walkOnce = (root: string, relDir: string): Promise<Walk> => {
    const key = `${root}\0${relDir}`;
    let walk = walked.get(key);
    if (!walk) walked.set(key, (walk = walkDirNoFollow(root, relDir, { create: false })));
    return walk;
  };
  const run: RestoreRun = { layout, shareRoot: roots.shareRoot, vaultDev, mode, dryRun, vfs, report, walkOnce };
  report.notAttempted = await eachUntilStopped(wanted, o.concurrency ?? 64, o.signal, (w) => restoreOne(run, w));
  for (const list of [report.restored, report.unrecoverable, report.skipped]) list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  report.ok = report.unrecoverable.length === 0 && report.skipped.length === 0 && report.damagedRecords.count === 0 && report.notAttempted === 0;
  return report;
}

function emptyReport(head: Pick<RestoreReport, 'dryRun' | 'shareDir' | 'vaultDir' | 'mode'>): RestoreReport {
  return {
    ...head,
    restored: [],
    unrecoverable: [],
    skipped: [],
    alreadyInPlace: 0,
    damagedRecords: { count: 0, sample: [] },
    notAttempted: 0,
    ok: false,
  };
}

/** The share's real path, or why nothing can be restored: share unresolvable, vault behind a symlink, or not a usable vault. */
async function resolveRoots(
  shareDir: string,
  requestedVault: string,
  marker: MarkerRead,
): Promise<{ ok: true; shareRoot: string } | { ok: false; why: string }> {
  // The share may be reached through a symlink (a mount point's alias): resolved once, then never again below it.
  const shareRoot = await fs.realpath(shareDir).catch(() => undefined);
  const vaultLink = await firstSymlinkIn(requestedVault);
  if (shareRoot === undefined) return { ok: false, why: `the share ${shareDir} cannot be resolved` };
  if (vaultLink !== undefined) return { ok: false, why: `the vault path goes through a symlink (${vaultLink}): not followed` };
  if (marker.state === 'damaged') return { ok: false, why: `the vault's marker is damaged (${marker.problem})` };
  if (marker.state === 'absent') return { ok: false, why: 'not a vault (no .vault-meta/vault.json)' };
  return { ok: true, shareRoot };
}

/**
 * Runs `fn` over the items, `concurrency` at a time, each item once. A stop signal ends
 * the run between items; returns how many were never started.
 */
async function eachUntilStopped<T>(items: readonly T[], concurrency: number, signal: AbortSignal | undefined, fn: (item: T) => Promise<void>): Promise<number> {
  let next = 0;
  let notStarted = 0;
  const worker = async () => {
    while (next < items.length) {
      if (signal?.aborted) {
        notStarted = items.length - next;
        next = items.length;
        return;
      }
      await fn(items[next++]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return notStarted;
}

/** Looks at one wanted file once and decides: in place, skipped, unrecoverable, or linked back in. */
async function restoreOne(run: RestoreRun, { rel, ino }: Wanted): Promise<void> {
  const { layout, report } = run;
  const relDir = relDirOf(rel);
  // The vault side: reached without a symlink, a regular file, and the one the vault made.
  const vaultWalk = await run.walkOnce(layout.root, relDir);
  const kept = vaultWalk.ok ? await fs.lstat(layout.file(rel)).catch(() => null) : null;
  const keptOk = kept?.isFile() === true && kept.dev === run.vaultDev && (typeof ino !== 'number' || kept.ino === ino);
  // The share side: walked (not created yet) without following a symlink.
  const shareWalk = await run.walkOnce(run.shareRoot, relDir);
  if (!shareWalk.ok && !shareWalk.missing) {
    report.skipped.push({ path: rel, reason: `the share path is unsafe: ${shareWalk.reason}` });
    return;
  }
  const present = shareWalk.ok ? await fs.lstat(`${run.shareRoot}/${rel}`).catch(() => null) : null;
  if (present) return judgeInPlace(run, rel, present, kept);
  if (!keptOk) {
    report.unrecoverable.push({ path: rel, reason: whyNotTrusted(vaultWalk, kept) });
    return;
  }
  if (run.dryRun) {
    report.restored.push({ path: rel });
    return;
  }
  await linkIn(run, rel, kept);
}

/** Something is at the share path: counted in place when it is the vault's file (or has its content), else skipped with why. */
async function judgeInPlace(run: RestoreRun, rel: string, present: Stats, kept: Stats | null): Promise<void> {
  const odd = judgePresent(present);
  if (odd) run.report.skipped.push({ path: rel, reason: odd });
  else if (!kept?.isFile()) run.report.alreadyInPlace++;
  else if (
    (present.ino === kept.ino && present.dev === kept.dev) ||
    (present.size === kept.size && (await sameContent(`${run.shareRoot}/${rel}`, run.layout.file(rel)).catch(() => false)))
  )
    run.report.alreadyInPlace++;
  else
    run.report.skipped.push({ path: rel, reason: 'another file with different content is in place: not overwritten (move it away to restore the vault copy)' });
}

/** Why the vault's entry of a missing file cannot be put back. */
function whyNotTrusted(vaultWalk: Walk, kept: Stats | null): string {
  if (!vaultWalk.ok) return vaultWalk.missing ? 'missing from the share and not in the vault' : `the vault path is unsafe: ${vaultWalk.reason}`;
  if (!kept) return 'missing from the share and not in the vault';
  if (!kept.isFile()) return 'the vault entry is not a regular file (a symlink?): not followed';
  return 'the vault entry is not the file the vault made (replaced since): not trusted';
}

/**
 * Puts the vault's file back at its share path with one link(2) (reflink: a clone to a
 * temp name in the vault, linked in), after walking both sides again and re-checking
 * the parents right before it. Never replaces: EEXIST is judged once, never retried.
 */
async function linkIn(run: RestoreRun, rel: string, kept: Stats): Promise<void> {
  const { layout, report } = run;
  const relDir = relDirOf(rel);
  const original = `${run.shareRoot}/${rel}`;
  const made = await walkDirNoFollow(run.shareRoot, relDir, { create: true });
  const vaultAgain = await walkDirNoFollow(layout.root, relDir, { create: false });
  if (!vaultAgain.ok) {
    report.unrecoverable.push({ path: rel, reason: `the vault path is unsafe: ${vaultAgain.reason}` });
    return;
  }
  if (!made.ok) {
    report.skipped.push({ path: rel, reason: `the share path is unsafe: ${made.reason}` });
    return;
  }
  const held = layout.file(rel);
  if (!(await stillExactly(path.dirname(original))) || !(await stillExactly(path.dirname(held)))) {
    report.skipped.push({ path: rel, reason: 'a folder on the way became a symlink during the restore: not followed' });
    return;
  }
  try {
    if (run.mode === 'link') await run.vfs.link(held, original);
    else {
      const tmp = layout.tmpName();
      try {
        await run.vfs.reflink(held, tmp);
        await fs.link(tmp, original);
      } finally {
        await fs.rm(tmp, { force: true });
      }
    }
    report.restored.push({ path: rel });
  } catch (error) {
    if (codeOf(error) === 'EEXIST') {
      // Something appeared between the look and the link: judged once, never retried.
      const now = await fs.lstat(original).catch(() => null);
      if (now) return judgeInPlace(run, rel, now, kept);
      report.skipped.push({ path: rel, reason: 'something appeared at the path during the restore and went again: not retried' });
      return;
    }
    report.unrecoverable.push({ path: rel, reason: `restore failed (${codeOf(error)})${codeOf(error) === 'ENOENT' ? ': the vault entry vanished' : ''}` });
  }
}

export function formatRestoreReport(r: RestoreReport): string {
  const lines: string[] = [];
  const verb = r.dryRun ? 'would restore' : 'restored';
  lines.push(
    `${verb} ${r.restored.length} file(s) from the vault ${r.vaultDir} into ${r.shareDir}; ${r.alreadyInPlace} already in place; ${r.unrecoverable.length} unrecoverable; ${r.skipped.length} skipped`,
  );
  if (r.notAttempted) lines.push(`stopped: ${r.notAttempted} file(s) not looked at`);
  const list = (title: string, entries: RestoreEntry[]) => {
    if (!entries.length) return;
    lines.push('', `${title}:`);
    for (const e of entries.slice(0, 200)) lines.push(`  ${e.path}${e.reason ? ` — ${e.reason}` : ''}`);
    if (entries.length > 200) lines.push(`  … and ${entries.length - 200} more (see --json)`);
  };
  list(r.dryRun ? 'Would restore' : 'Restored', r.restored);
  list('Unrecoverable', r.unrecoverable);
  list('Skipped', r.skipped);
  if (r.damagedRecords.count) {
    lines.push('', `Damaged vault records (${r.damagedRecords.count}; their files cannot be verified or restored):`);
    for (const d of r.damagedRecords.sample.slice(0, 50)) lines.push(`  ${d.where} — ${d.problem}`);
  }
  return `${lines.join('\n')}\n`;
}
