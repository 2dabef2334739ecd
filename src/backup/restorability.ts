/**
 * Whether CVAT imports a share task's backup, decided from CVAT's source per version
 * (read at github:Christanding/cvat-yolo26-annotation-tool, upstream history to 2.73.0):
 *
 * - Export, before 2.52.0: `TaskExporter._write_manifest` copies `data.storage` as is, so a
 *   share task's `task.json` says `"storage": "share"`. 2.52.0 (commit 30e252aca, cvat#9972)
 *   writes `"local"` for share tasks, and writes a manifest filtered to the frames it copies
 *   (`_write_filtered_media_manifest`).
 * - Import, 2.49.0 and later (commit cace87718): `_import_task` accepts `local` and
 *   `cloud_storage` only — anything else raises "Unexpected storage type in the backup files".
 *   Before 2.49 `storage: "share"` went to `create_thread` as a share task, which looks for the
 *   manifest under the share root and fails on `<share>/manifest.jsonl` (cvat#9972's text).
 *   CVAT's CHANGELOG for 2.52.0: backups of share tasks "created by previous versions of CVAT
 *   still cannot be imported".
 *
 * So a share-task backup imports only when its `task.json` says `local`, and we count that
 * as proven only on CVAT ≥ 2.52, where CVAT's own test
 * (tests/python/rest_api/test_tasks.py `test_can_export_and_import_backup_task_with_mounted_share`)
 * exports such a task and imports it back.
 *
 * Repair: a pre-2.52 zip differs from what 2.52 writes for the same task only in
 * `data.storage` and, for an image task with a frame range, in the manifest's extra entries.
 * When every manifest entry's image is in the zip and the range starts at 0 with step 1
 * (2.52's filter would drop nothing), rewriting `storage` to `local` gives exactly the 2.52
 * form; we repair only then, and only for a CVAT ≥ 2.52 import.
 */
import type { CvatVersion } from '../cvat/features.js';

export const SHARE_BACKUP_FIX = { major: 2, minor: 52, raw: '2.52.0' } as const;

export function importsShareBackups(version: Pick<CvatVersion, 'major' | 'minor'>): boolean {
  return version.major > 2 || (version.major === 2 && version.minor >= SHARE_BACKUP_FIX.minor);
}

/** What a backup's task.json and entries say, for the decision (verify.ts reads them). */
export interface BackupFacts {
  /** `task.json` data.storage, or undefined when absent. */
  storage: string | undefined;
  startFrame: number | undefined;
  frameFilter: string | undefined;
  /** Lines of data/manifest.jsonl after its two header lines; undefined without a manifest. */
  manifestEntries: number | undefined;
  /** Media entries under data/ (not the manifest, not context images). */
  mediaEntries: number;
  isVideo: boolean;
}

export interface Restorability {
  restorable: boolean;
  /** Set when the zip as it is would be refused but the repaired form imports (storage → local). */
  repairable: boolean;
  /** Why not, in words an admin can act on; undefined when restorable. */
  reason?: string;
}

const refusal = (version: string) =>
  `CVAT ${version} cannot restore it: its task.json says storage "share", which CVAT's importer refuses on every version ` +
  `(2.49+: "Unexpected storage type in the backup files"; before: it looks for <share>/manifest.jsonl). CVAT 2.52.0 fixed the export (cvat#9972)`;

/** Whether CVAT `version` imports this share-task backup, as it is or repaired. */
export function restorabilityOf(facts: BackupFacts, version: Pick<CvatVersion, 'major' | 'minor' | 'raw'>): Restorability {
  const fixed = importsShareBackups(version);
  if (facts.storage === 'local') {
    if (fixed) return { restorable: true, repairable: false };
    return {
      restorable: false,
      repairable: false,
      reason: `not proven on CVAT ${version.raw}: only CVAT ${SHARE_BACKUP_FIX.raw}+ is shown by its own tests to import a share task's backup`,
    };
  }
  if (facts.storage !== 'share')
    return {
      restorable: false,
      repairable: false,
      reason: `task.json says storage ${JSON.stringify(facts.storage ?? null)}: not a share-task backup CVAT imports`,
    };
  if (!fixed) return { restorable: false, repairable: false, reason: `${refusal(version.raw)}; upgrade to ${SHARE_BACKUP_FIX.raw}+ to restore it` };
  const unfiltered =
    facts.isVideo ||
    ((facts.startFrame ?? 0) === 0 && (facts.frameFilter ?? '') === '' && facts.manifestEntries !== undefined && facts.manifestEntries === facts.mediaEntries);
  if (unfiltered)
    return {
      restorable: false,
      repairable: true,
      reason: `${refusal(version.raw)}; repairable: with storage "local" it is what ${SHARE_BACKUP_FIX.raw}+ writes`,
    };
  return {
    restorable: false,
    repairable: false,
    reason: `${refusal(version.raw)}; not repairable: the task has a frame range, so its manifest lists frames the zip does not hold (cvat#10004)`,
  };
}

/** `check`'s backup-risk wording for this CVAT version: what CVAT's own backups of share tasks are worth there. */
export function shareBackupNote(version: Pick<CvatVersion, 'major' | 'minor' | 'raw'>): string {
  if (importsShareBackups(version))
    return `CVAT ${version.raw} makes restorable backups of share tasks, but without their context images (cvat#9978): \`backup --share-dir\` adds them`;
  if (version.major === 2 && version.minor < 16) return `CVAT ${version.raw} has no backup export the warden drives (2.16+)`;
  return `CVAT ${version.raw}'s backups of share tasks cannot be restored on any CVAT until repaired after an upgrade to ${SHARE_BACKUP_FIX.raw}+ (cvat#9972)`;
}
