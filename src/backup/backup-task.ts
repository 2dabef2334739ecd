/**
 * One backup of one share task, start to finish: CVAT exports, we download to a temp
 * name, verify, and only then move it in beside the older ones. Any failure leaves the
 * earlier backups exactly as they were.
 */
import fs from 'node:fs/promises';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { BackupOutcome } from '../domain.js';
import { describeError, WardenError } from '../errors.js';
import type { GuardTask } from '../guard/index.js';
import { BackupExportError, exportTaskBackup, type ExportOptions } from './cvat-export.js';
import { backupCapFor, shareMediaBytes } from './media-size.js';
import type { BackupStore, StoredBackup } from './store.js';
import { expectedMediaEntries, verifyBackup } from './verify.js';

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
  const base = { taskId: task.taskId };
  const older = async () => {
    const newest = await deps.store.newest(task.taskId);
    return newest ? { newestGood: newest } : {};
  };
  try {
    const options = await boundsFor(deps, task);
    const { bytes } = await exportTaskBackup(deps.client, deps.features, task.taskId, tmp, options);
    // Media (most of a backup) hardly compress; JSON does ~10:1, so 4× the download cap bounds the content.
    const verdict = await verifyBackup(tmp, expectedMediaEntries(mediaNamesOf(task), task.isVideo), { maxTotalBytes: 4 * options.maxBytes });
    if (!verdict.ok)
      return {
        ...base,
        outcome: 'invalid',
        message: `backup of task ${task.taskId} rejected: ${verdict.problem ?? 'failed verification'}; the older backup is kept`,
        ...(await older()),
      };
    const backup = await deps.store.commit(
      tmp,
      { taskId: task.taskId, at: (deps.now ?? Date.now)(), bytes, mediaFiles: verdict.mediaFiles, taskUpdatedDate },
      deps.keep,
    );
    return {
      ...base,
      outcome: 'done',
      message: `task ${task.taskId}: verified backup with ${verdict.mediaFiles} media file(s), ${bytes} bytes`,
      backup,
      newestGood: backup,
    };
  } catch (error) {
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
  }
}
