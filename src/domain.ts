/**
 * The warden's domain words: closed sets of values shared by the planner, engine,
 * guard, webhook receiver and the metrics that count them. They live here, not in
 * metrics.ts, so that domain code never imports the metrics layer for a type.
 */
export const CHUNK_STATES = ['warm', 'pending', 'failed', 'stuck'] as const;
export type ChunkState = (typeof CHUNK_STATES)[number];

export const CHUNK_OUTCOMES = [
  'warm', // 200/206
  'retry_after', // 429, will retry
  'server_error', // 500
  'unavailable', // 502/503/504 or network error
  'client_error', // 400/404/409
  'auth_error', // 401/403
  'stuck', // gave up after too many 429s
  'failed', // gave up after retries
] as const;
export type ChunkOutcome = (typeof CHUNK_OUTCOMES)[number];

export const QUALITIES = ['compressed', 'original'] as const;
export type Quality = (typeof QUALITIES)[number];

/** `path_escape`: a share directory now resolves outside the share (swapped for a symlink); its files count as gone. */
export const SHARE_EVENT_KINDS = ['deleted', 'moved', 'modified', 'restored', 'share_unavailable', 'share_restored', 'watcher_error', 'path_escape'] as const;
export type ShareEventKind = (typeof SHARE_EVENT_KINDS)[number];

export const WEBHOOK_OUTCOMES = [
  'accepted', // signed, recognised, handed on
  'duplicate', // seen before (CVAT >= 2.65 retries deliveries): 200, not handed on
  'rejected_signature', // missing or wrong X-Signature-256: 401
  'rejected_size', // body over 1 MiB: 413
  'rejected_busy', // the bodies being read at once already fill their overall bound: 503, CVAT >= 2.65 retries
  'rejected_malformed', // not JSON or not a CVAT payload: 400
  'ignored', // valid event the warden does not use: 200
] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

/** `degraded`: inotify, but some directories have no watch (limit reached, EACCES…) and are scanned on a schedule. */
export const WATCH_MODES = ['inotify', 'scan_only', 'polling', 'degraded'] as const;
export type WatchMode = (typeof WATCH_MODES)[number];

/** How the vault keeps a share file: a hard link (no extra space) or a reflink copy (copy-on-write). */
export const VAULT_MODES = ['link', 'reflink'] as const;
export type VaultMode = (typeof VAULT_MODES)[number];

/** What became of one file `restore` was asked for. */
export const RESTORE_OUTCOMES = ['restored', 'unrecoverable', 'skipped'] as const;
export type RestoreOutcome = (typeof RESTORE_OUTCOMES)[number];

/** Result of one CVAT task backup: `missing_file` = CVAT's export failed on a missing share file. */
/** unrestorable: made and kept, but the CVAT that made it refuses to import it (restorability.ts); incomplete: context images could not be added. */
export const BACKUP_OUTCOMES = ['done', 'failed', 'missing_file', 'invalid', 'unrestorable', 'incomplete'] as const;
export type BackupOutcome = (typeof BACKUP_OUTCOMES)[number];

/** Cloud-storage causes CVAT names in a chunk answer (warm/cloud-errors.ts reads them). */
export const CLOUD_FAILURE_CAUSES = ['bucket_forbidden', 'bucket_missing', 'object_missing', 'object_forbidden', 'storage_detached'] as const;
export type CloudFailureCause = (typeof CLOUD_FAILURE_CAUSES)[number];

/** What CVAT's `GET /api/cloudstorages/{id}/status` answers (`unknown`: no usable answer). */
export const CLOUD_STORAGE_STATUSES = ['AVAILABLE', 'NOT_FOUND', 'FORBIDDEN', 'unknown'] as const;
export type CloudStorageStatus = (typeof CLOUD_STORAGE_STATUSES)[number];
