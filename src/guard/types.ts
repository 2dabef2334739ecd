/**
 * Types shared by the integrity guard: its input (tasks and jobs as the CVAT client
 * reads them), the alerts it emits (the typed event map is the seam between the core,
 * logs, metrics and tests) and the check report.
 */
import type { ChunkExpiry } from '../cvat/features.js';
import type { DataMeta } from '../cvat/shapes.js';
import type { ShareEventKind } from '../domain.js';

export type { ShareEventKind, WatchMode } from '../domain.js';

/** A job of a task, with the fields the frame → chunk mapping needs. */
export interface GuardJob {
  id: number;
  type: 'annotation' | 'ground_truth' | 'consensus_replica' | (string & {});
  /** Relative task frames, inclusive. */
  startFrame: number;
  stopFrame: number;
  /** ABSOLUTE data frames (ground-truth jobs); null/absent for range jobs. */
  includedFrames?: number[] | null;
  chunkSize: number;
  state?: string;
  /** A consensus replica's parent: it reads the parent's segment (same chunks, warmed under the parent's id). */
  parentJobId?: number;
}

/** A task whose media may be read from the share at chunk-build time. */
export interface GuardTask {
  taskId: number;
  taskName?: string;
  storage: 'share' | 'local' | 'cloud_storage' | 'unknown';
  /** true for single-file media (video, also audio): frames[0].name is the one file every chunk reads. */
  isVideo: boolean;
  /** "2d" | "3d" | "1d"; 3D is also inferred from .pcd/.bin frame names. */
  dimension?: string;
  /** Task data/meta: frames[].name (share-relative), related_files, start_frame, frame_filter, size, chunk_size. */
  meta: DataMeta;
  jobs: GuardJob[];
  /** How this CVAT version's cache lets chunks go (the `expiresAt` forecast); default a 24 h TTL. */
  chunkExpiry?: ChunkExpiry;
}

/** Why an expected file exists: a frame image, the task's single video, or a context image of a frame. */
export type FileRole = 'frame' | 'video' | 'related';

/** A problem kind that stays open until the file is back. */
export type ProblemKind = 'deleted' | 'moved' | 'modified';

export type FileEventKind = Extract<ShareEventKind, 'deleted' | 'moved' | 'modified' | 'restored'>;

/** Where a detection came from. */
export type DetectionSource = 'watch' | 'poll' | 'scan' | 'startup';

/** One job touched by a file problem, with the job-relative chunk indexes that contain the file. */
export interface AffectedJob {
  jobId: number;
  type: string;
  chunks: number[];
  /** Earliest `lastWarmedAt + 24 h` over those chunks (ms since epoch), or 'unknown'. */
  expiresAt: number | 'unknown';
}

export interface AffectedTask {
  taskId: number;
  taskName?: string;
  /** Relative task frames that read the file; empty for a video (every frame). */
  frames: number[];
  jobs: AffectedJob[];
  expiresAt: number | 'unknown';
  /**
   * What `expiresAt` means when it is not an exact date: diskcache (CVAT ≤ 2.6.1) never
   * expires, so there is no date; KeyDB (2.6.2–2.10.0) may evict before the TTL.
   */
  expiryNote?: string;
}

/** A stat snapshot: the baseline and the observed values. */
export interface FileStat {
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
}

export interface FileAlert {
  kind: FileEventKind;
  /** Share-relative path (posix separators). */
  path: string;
  /** For `moved`: where the same dev+inode showed up, share-relative. */
  newPath?: string;
  role: FileRole;
  source: DetectionSource;
  /** For `restored`: the problem that was resolved. For `modified` after missing: 'deleted'/'moved'. */
  previous?: ProblemKind;
  /** For `modified`: what changed against the baseline. */
  change?: { before: FileStat | null; after: FileStat };
  /** ms since epoch (guard clock). */
  at: number;
  taskIds: number[];
  tasks: AffectedTask[];
}

export interface ShareAlert {
  kind: 'share_unavailable' | 'share_restored';
  shareDir: string;
  reason: string;
  at: number;
  filesExpected: number;
}

/** A cloud storage CVAT reports not AVAILABLE (its objects cannot be listed; their verdicts stand), or AVAILABLE again. */
export interface CloudStorageAlert {
  kind: 'storage_unavailable' | 'storage_available';
  storageId: number;
  status: 'AVAILABLE' | 'NOT_FOUND' | 'FORBIDDEN' | 'unknown';
  reason?: string;
  at: number;
  /** Tasks reading it (first 100). */
  taskIds: number[];
}

export interface WatcherErrorAlert {
  kind: 'watcher_error';
  /** Share-relative directory whose watcher failed ('' = root); undefined for the root/polling watcher. */
  dir?: string;
  code: string;
  message: string;
  at: number;
}

/** A directory of expected files now resolves outside the share (swapped for a symlink while guarded). */
export interface PathEscapeAlert {
  kind: 'path_escape';
  /** Share-relative directory. */
  dir: string;
  /** Where it resolves now. */
  target: string;
  at: number;
  /** Tasks whose files live there (they are reported deleted: the share no longer holds them). */
  taskIds: number[];
}

export type GuardAlert = FileAlert | ShareAlert | WatcherErrorAlert | PathEscapeAlert | CloudStorageAlert;

export interface ScanResult {
  /** 'share_unavailable' when the root was not usable and nothing was stat-ed. */
  skipped?: 'share_unavailable' | 'closed' | undefined;
  startedAt: number;
  durationMs: number;
  filesChecked: number;
  present: number;
  missing: number;
  modified: number;
  /** stat errors other than ENOENT/ENOTDIR (EACCES, EIO…): the file's state is left as it was. */
  errors: number;
  /** Alerts emitted because of this scan. */
  alerts: number;
  reason: string;
}

/** Typed event map of `ShareGuard` (`guard.on('deleted', (a) => …)`). `alert` carries every alert. */
export interface ShareGuardEventMap {
  alert: [GuardAlert];
  deleted: [FileAlert];
  moved: [FileAlert];
  modified: [FileAlert];
  restored: [FileAlert];
  share_unavailable: [ShareAlert];
  share_restored: [ShareAlert];
  watcher_error: [WatcherErrorAlert];
  path_escape: [PathEscapeAlert];
  /** Cloud guard only: a storage's status changed. */
  storage_unavailable: [CloudStorageAlert];
  storage_available: [CloudStorageAlert];
  scan: [ScanResult];
  ready: [];
}

/** An open problem as stored: the affected jobs and chunks are recomputed from the live index. */
export type PersistedProblem = Omit<OpenProblem, 'tasks'>;

/** An open problem as returned by `problems()` and persisted across restarts. */
export interface OpenProblem {
  path: string;
  kind: ProblemKind;
  newPath?: string;
  role: FileRole;
  /** ms since epoch when it was first seen. */
  since: number;
  taskIds: number[];
  tasks: AffectedTask[];
}

/** A frame name refused by the path-safety rules; never stat-ed. */
export interface RejectedName {
  taskId: number;
  name: string;
  reason: 'empty' | 'absolute' | 'dot_dot' | 'nul' | 'symlink_escape' | 'backslash_escape';
}

/** Something worth a look that is not (yet) a missing file. */
export interface IndexWarning {
  taskId: number;
  kind: 'related_count_mismatch' | 'assumed_share' | 'task_skipped' | 'no_frames' | 'unreadable_dir';
  message: string;
  path?: string;
  expected?: number;
  found?: number;
}
