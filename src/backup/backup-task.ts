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
import { restorabilityOf } from './restorability.js';
import { rewriteBackup, RewriteRefused } from './rewrite.js';
import type { BackupStore, StoredBackup } from './store.js';
import { expectedMediaEntries, expectedRelatedEntries, verifyBackup } from './verify.js';

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

export async function backupTask(deps: BackupTaskDeps, task: GuardTask, taskUpdatedDate: string | null): Promise<BackupResult> {
  const tmp = await deps.store.tempFile();
  let withContext: string | undefined;
  const base = { taskId: task.taskId };
  const older = async () => {
    const newest = await deps.store.newestGood(task.taskId);
    return newest ? { newestGood: newest } : {};
  };
  try {
    const options = await boundsFor(deps, task);
    const { bytes } = await exportTaskBackup(deps.client, deps.features, task.taskId, tmp, options);
    // Media (most of a backup) hardly compress; JSON does ~10:1, so 4× the download cap bounds the content.
    const frames = expectedMediaEntries(mediaNamesOf(task), task.isVideo);
    const limits = { maxTotalBytes: 4 * options.maxBytes };
    let verdict = await verifyBackup(tmp, frames, limits);
    if (!verdict.ok)
      return {
        ...base,
        outcome: 'invalid',
        message: `backup of task ${task.taskId} rejected: ${verdict.problem ?? 'failed verification'}; the older backup is kept`,
        ...(await older()),
      };
    const version = deps.features.version;
    const verdictOn = verdict.facts ? restorabilityOf(verdict.facts, version) : { restorable: false, repairable: false, reason: 'task.json unreadable' };
    let file = tmp;
    let related = 0;
    const contextFrames = framesWithContext(task);
    if (verdictOn.restorable && contextFrames > 0) {
      // Only a zip CVAT imports is worth completing: adding files to a refused one proves nothing.
      if (deps.shareDir === undefined)
        return {
          ...base,
          outcome: 'incomplete',
          message: `backup of task ${task.taskId} not kept: ${contextFrames} frame(s) have context images, which CVAT leaves out of share-task backups (cvat#9978); set --share-dir so the warden adds them`,
          ...(await older()),
        };
      const ctx = await contextImagesOf(task, deps.shareDir);
      if (ctx.short.length > 0) {
        const s0 = ctx.short[0]!;
        return {
          ...base,
          outcome: 'incomplete',
          message: `backup of task ${task.taskId} not kept: context images of ${ctx.short.length} frame(s) are not on the share, e.g. ${s0.frame} shows ${s0.expected}, ${s0.found} found`,
          ...(await older()),
        };
      }
      withContext = await deps.store.tempFile();
      await rewriteBackup(tmp, withContext, { addFromShare: { shareDir: deps.shareDir, paths: ctx.paths }, maxAddedBytes: options.maxBytes });
      verdict = await verifyBackup(withContext, frames, limits, expectedRelatedEntries(ctx.paths));
      if (!verdict.ok)
        return {
          ...base,
          outcome: 'invalid',
          message: `backup of task ${task.taskId} rejected after adding context images: ${verdict.problem ?? 'failed verification'}`,
          ...(await older()),
        };
      file = withContext;
      related = verdict.relatedFiles;
    }
    const size = (await fs.stat(file)).size;
    const backup = await deps.store.commit(
      file,
      {
        taskId: task.taskId,
        at: (deps.now ?? Date.now)(),
        bytes: size,
        mediaFiles: verdict.mediaFiles,
        taskUpdatedDate,
        restorable: verdictOn.restorable,
        ...(verdictOn.reason !== undefined ? { restoreNote: verdictOn.reason } : {}),
        relatedFiles: related,
        cvatVersion: version.raw,
        ...(verdict.facts ? { facts: verdict.facts } : {}),
      },
      deps.keep,
    );
    if (!verdictOn.restorable)
      return {
        ...base,
        outcome: 'unrestorable',
        message: `task ${task.taskId}: backup made and kept (${verdict.mediaFiles} media file(s)) but not restorable on this CVAT: ${verdictOn.reason ?? ''}`,
        backup,
        ...(await older()),
      };
    return {
      ...base,
      outcome: 'done',
      message: `task ${task.taskId}: verified backup with ${verdict.mediaFiles} media file(s)${related ? ` and ${related} context image(s)` : ''}, ${bytes} bytes from CVAT`,
      backup,
      newestGood: backup,
    };
  } catch (error) {
    if (error instanceof RewriteRefused)
      return { ...base, outcome: 'incomplete', message: `backup of task ${task.taskId} not kept: ${error.message}`, ...(await older()) };
    if (error instanceof WardenError && error.code !== 'CVAT_HTTP' && error.code !== 'CVAT_BAD_RESPONSE') throw error;
    if (error instanceof BackupExportError && error.kind === 'missing_file') {
      return {
        ...base,
        outcome: 'missing_file',
        message: error.message,
        ...(error.missingFile !== undefined ? { missingFile: error.missingFile } : {}),
        ...(await older()),
      };
    }
    return { ...base, outcome: 'failed', message: `backup of task ${task.taskId} failed: ${describeError(error)}`, ...(await older()) };
  } finally {
    await fs.rm(tmp, { force: true });
    if (withContext !== undefined) await fs.rm(withContext, { force: true });
  }
}
