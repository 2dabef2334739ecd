/**
 * One backup of one share task, start to finish: CVAT exports, we download to a temp
 * name, verify, add the context images CVAT leaves out (context-images.ts), decide
 * whether this CVAT imports it (restorability.ts), and only then move it in beside the
 * older ones with its SHA-256. Any failure leaves the earlier backups exactly as they were.
 * A zip this CVAT would refuse is kept (it holds the media) but never counted good.
 */
import fs from 'node:fs/promises';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { BackupOutcome } from '../domain.js';
import { describeError, WardenError } from '../errors.js';
import type { GuardTask } from '../guard/index.js';
import { BackupExportError, exportTaskBackup, type ExportOptions } from './cvat-export.js';
import { contextImagesOf, framesWithContext } from './context-images.js';
import { backupCapFor, shareMediaBytes } from './media-size.js';
import { restorabilityOf, type Restorability } from './restorability.js';
import { rewriteBackup, RewriteRefused } from './rewrite.js';
import type { OwnedFile } from '../state/owned-file.js';
import type { BackupStore, StoredBackup } from './store.js';
import { expectedMediaEntries, expectedRelatedEntries, verifyBackup, type BackupVerdict, type VerifyLimits } from './verify.js';

export interface BackupResult {
  taskId: number;
  outcome: BackupOutcome;
  message: string;
  /** Share-relative file CVAT could not read (outcome missing_file). */
  missingFile?: string;
  backup?: StoredBackup;
  /** The newest good backup kept (the new one, or the older one a failure left in place). */
  newestGood?: StoredBackup;
}

export interface BackupTaskDeps {
  client: CvatClient;
  features: CvatFeatures;
  store: BackupStore;
  keep: number;
  exportOptions: ExportOptions;
  /**
   * Set when --backup-max-gib was not given and the share is readable here: each task's
   * cap is then its share media size plus headroom, up to exportOptions.maxBytes.
   */
  sizeFromShare?: string;
  /** The share on this host (--share-dir): where the context images CVAT leaves out are read from. */
  shareDir?: string;
  now?: () => number;
}

/** The frame names a backup of this task must hold (share-relative). */
export function mediaNamesOf(task: GuardTask): string[] {
  return (task.meta.frames ?? []).map((f) => f.name).filter((n) => n !== 'placeholder.jpg');
}

async function boundsFor(deps: BackupTaskDeps, task: GuardTask): Promise<ExportOptions> {
  if (deps.sizeFromShare === undefined) return deps.exportOptions;
  const names = mediaNamesOf(task);
  const media = await shareMediaBytes(deps.sizeFromShare, task.isVideo ? names.slice(0, 1) : [...new Set(names)]);
  return media === undefined ? deps.exportOptions : { ...deps.exportOptions, maxBytes: Math.min(deps.exportOptions.maxBytes, backupCapFor(media)) };
}

/**
 * A backup not counted good: backupTask adds the task and the older backup it leaves in
 * place (an unrestorable one is kept, so it carries `backup` too).
 */
type NotCountedGood = Omit<BackupResult, 'taskId' | 'newestGood'>;

/** A verified zip ready to go into the store: the export, or its copy completed with context images. */
interface VerifiedZip {
  file: OwnedFile;
  verdict: BackupVerdict;
  /** Context images added from the share. */
  related: number;
}

/** What the export and its verification produced, before the store sees it. */
interface VerifiedExport extends VerifiedZip {
  restorability: Restorability;
  /** Bytes downloaded from CVAT. */
  downloaded: number;
}

/** What the verifier needs to check a zip of this task (the same for the export and its completed copy). */
interface VerifyPlan {
  frames: string[];
  limits: VerifyLimits;
  maxBytes: number;
}

export async function backupTask(deps: BackupTaskDeps, task: GuardTask, taskUpdatedDate: string | null): Promise<BackupResult> {
  // Every temp file of this backup, discarded whatever happens: each is removed only while
  // its name still holds the file this backup created (src/state/owned-file.ts).
  const temps: OwnedFile[] = [];
  const notCountedGood = async (result: NotCountedGood): Promise<BackupResult> => {
    const newest = await deps.store.newestGood(task.taskId);
    return { taskId: task.taskId, ...result, ...(newest ? { newestGood: newest } : {}) };
  };
  try {
    const made = await exportAndVerify(deps, task, temps);
    if ('outcome' in made) return await notCountedGood(made);
    const backup = await commitVerified(deps, task, taskUpdatedDate, made);
    if (!made.restorability.restorable)
      return await notCountedGood({
        outcome: 'unrestorable',
        message: `task ${task.taskId}: backup made and kept (${made.verdict.mediaFiles} media file(s)) but not restorable on this CVAT: ${made.restorability.reason ?? ''}`,
        backup,
      });
    const related = made.related;
    return {
      taskId: task.taskId,
      outcome: 'done',
      message: `task ${task.taskId}: verified backup with ${made.verdict.mediaFiles} media file(s)${related ? ` and ${related} context image(s)` : ''}, ${made.downloaded} bytes from CVAT`,
      backup,
      newestGood: backup,
    };
  } catch (error) {
    return await notCountedGood(failureOf(error, task.taskId));
  } finally {
    for (const file of temps) await file.discard();
  }
}

/** Export the task into a temp file (added to `temps`), verify it, and complete it with context images where CVAT left them out. */
async function exportAndVerify(deps: BackupTaskDeps, task: GuardTask, temps: OwnedFile[]): Promise<VerifiedExport | NotCountedGood> {
  const options = await boundsFor(deps, task);
  const exported = await exportTaskBackup(deps.client, deps.features, task.taskId, await deps.store.tempFile(), options);
  temps.push(exported.file);
  const tmp = exported.file;
  const bytes = exported.bytes;
  // Media (most of a backup) hardly compress; JSON does ~10:1, so 4× the download cap bounds the content.
  const plan: VerifyPlan = {
    frames: expectedMediaEntries(mediaNamesOf(task), task.isVideo),
    limits: { maxTotalBytes: 4 * options.maxBytes },
    maxBytes: options.maxBytes,
  };
  const verdict = await verifyBackup(tmp.path, plan.frames, plan.limits);
  if (!verdict.ok)
    return { outcome: 'invalid', message: `backup of task ${task.taskId} rejected: ${verdict.problem ?? 'failed verification'}; the older backup is kept` };
  const restorability = verdict.facts
    ? restorabilityOf(verdict.facts, deps.features.version)
    : { restorable: false, repairable: false, reason: 'task.json unreadable' };
  let zip: VerifiedZip | NotCountedGood = { file: tmp, verdict, related: 0 };
  // Only a zip CVAT imports is worth completing: adding files to a refused one proves nothing.
  if (restorability.restorable && framesWithContext(task) > 0) zip = await withContextImages(deps, task, tmp, plan, temps);
  return 'outcome' in zip ? zip : { ...zip, restorability, downloaded: bytes };
}

/** A copy of the export with the context images CVAT leaves out of share-task backups (cvat#9978), verified again. */
async function withContextImages(
  deps: BackupTaskDeps,
  task: GuardTask,
  exported: OwnedFile,
  plan: VerifyPlan,
  temps: OwnedFile[],
): Promise<VerifiedZip | NotCountedGood> {
  if (deps.shareDir === undefined)
    return {
      outcome: 'incomplete',
      message: `backup of task ${task.taskId} not kept: ${framesWithContext(task)} frame(s) have context images, which CVAT leaves out of share-task backups (cvat#9978); set --share-dir so the warden adds them`,
    };
  const ctx = await contextImagesOf(task, deps.shareDir);
  if (ctx.short.length > 0) {
    const s0 = ctx.short[0]!;
    return {
      outcome: 'incomplete',
      message: `backup of task ${task.taskId} not kept: context images of ${ctx.short.length} frame(s) are not on the share, e.g. ${s0.frame} shows ${s0.expected}, ${s0.found} found`,
    };
  }
  const { file: completed } = await rewriteBackup(exported.path, await deps.store.tempFile(), {
    addFromShare: { shareDir: deps.shareDir, paths: ctx.paths },
    maxAddedBytes: plan.maxBytes,
  });
  temps.push(completed);
  const verdict = await verifyBackup(completed.path, plan.frames, plan.limits, expectedRelatedEntries(ctx.paths));
  if (!verdict.ok)
    return { outcome: 'invalid', message: `backup of task ${task.taskId} rejected after adding context images: ${verdict.problem ?? 'failed verification'}` };
  return { file: completed, verdict, related: verdict.relatedFiles };
}

/** Move the verified zip in beside the older backups, with what decides its restore. */
async function commitVerified(deps: BackupTaskDeps, task: GuardTask, taskUpdatedDate: string | null, made: VerifiedExport): Promise<StoredBackup> {
  const { verdict, restorability } = made;
  const size = (await fs.stat(made.file.path)).size;
  return deps.store.commit(
    made.file,
    {
      taskId: task.taskId,
      at: (deps.now ?? Date.now)(),
      bytes: size,
      mediaFiles: verdict.mediaFiles,
      taskUpdatedDate,
      restorable: restorability.restorable,
      ...(restorability.reason !== undefined ? { restoreNote: restorability.reason } : {}),
      relatedFiles: made.related,
      cvatVersion: deps.features.version.raw,
      ...(verdict.facts ? { facts: verdict.facts } : {}),
    },
    deps.keep,
  );
}

/** What a failed backup reports; errors that are not CVAT's answer (a bug, our disk) go up. */
function failureOf(error: unknown, taskId: number): NotCountedGood {
  if (error instanceof RewriteRefused) return { outcome: 'incomplete', message: `backup of task ${taskId} not kept: ${error.message}` };
  if (error instanceof WardenError && error.code !== 'CVAT_HTTP' && error.code !== 'CVAT_BAD_RESPONSE') throw error;
  if (error instanceof BackupExportError && error.kind === 'missing_file')
    return { outcome: 'missing_file', message: error.message, ...(error.missingFile !== undefined ? { missingFile: error.missingFile } : {}) };
  return { outcome: 'failed', message: `backup of task ${taskId} failed: ${describeError(error)}` };
}
