/**
 * What a scenario author writes: tasks (`TaskSpec`), users (`EmulatorAuth`) and
 * organisations. Everything else (segments, jobs, ids, cache keys) is derived the way
 * CVAT derives it — see model.ts and segments.ts.
 */

export type MediaType = 'image' | 'video' | 'pointcloud' | 'audio';
export type TaskMode = 'annotation' | 'interpolation';
export type JobType = 'annotation' | 'ground_truth' | 'consensus_replica';
export type JobState = 'new' | 'in progress' | 'completed' | 'rejected';
export type JobStage = 'annotation' | 'validation' | 'acceptance';
export type OrgRole = 'owner' | 'maintainer' | 'supervisor' | 'worker';
export type StorageKind = 'local' | 'share' | 'cloud_storage';

export interface TaskSpec {
  /** Task id; the next free id when absent. */
  id?: number;
  /** Defaults to `task <id>`. */
  name?: string;
  /**
   * Default 'image'. 'video' → one source file and mp4 chunks; 'pointcloud' → 3D task (`media_type: point_cloud`);
   * 'audio' → one source file (`video` names it), `dimension: 1d`, and `size`/`chunkSize` are durations
   * (CVAT's fixture task 36: size 6914, chunk_size 6914), with no frames or context images (400).
   */
  mediaType?: MediaType;
  /** Default: 'interpolation' for video, 'annotation' otherwise (CVAT's defaults). Drives the default overlap. */
  mode?: TaskMode;
  /**
   * Number of TASK frames (after start/stop/step). Required unless `frames` or `stopFrame` gives it.
   * Must agree with `frames` when both are given.
   */
  size?: number;
  /**
   * Source file names of an image/point-cloud task, indexed by ABSOLUTE data frame (frames[k] is data
   * frame k); the task takes frames start, start+step, … ≤ stop. For `storage: 'share'` these are paths
   * relative to the share root and chunk builds read them. Default: synthetic `images/frame_000000.jpg` names.
   */
  frames?: string[];
  /** The video file of a video task (share-relative for share storage). Default `videos/task_<id>.mp4`. */
  video?: string;
  /** Frame size reported in meta when it cannot be read from a share file. Default 1920×1080 (video 1280×720). */
  frameWidth?: number;
  frameHeight?: number;
  /**
   * `data_chunk_size`. Default like CVAT: 36 for video; for images
   * `max(2, min(72, 36·1920·1080 // (w·h)))` from the first frame's size (36 for full HD).
   */
  chunkSize?: number;
  /** Frames per annotation job; 0 or absent = the whole task in one job. */
  segmentSize?: number;
  /**
   * Frames shared by neighbouring jobs. Default like CVAT: 5 in interpolation mode (video), 0 otherwise;
   * always capped at segmentSize // 2.
   */
  overlap?: number;
  /** First ABSOLUTE data frame (`Data.start_frame`). Default 0. */
  startFrame?: number;
  /** Last ABSOLUTE data frame to consider (`Data.stop_frame`). Default: derived from size/frames. */
  stopFrame?: number;
  /** `frame_filter: "step=N"`. Default 1 (no filter). */
  frameStep?: number;
  /** 'share' → `data/meta.storage == "share"` and chunk builds read the files under `shareDir`. Default 'local'. */
  storage?: StorageKind;
  /** With `storage: 'cloud_storage'`: the emulator's cloud storage (cloud.ts) whose bucket holds `frames` (object keys) and related files. */
  cloudStorageId?: number;
  /**
   * Context (related) images per TASK frame (index = task frame number). A number = that many synthetic
   * files (local storage); an array = share-relative paths that context-image builds read (share storage).
   * 'detect' (share only) = find them with CVAT's layout rules: `dir/related_images/<name>_<ext>/*`
   * for 2D images and `<root>/related_images/<name>_pcd/*` for `<root>/pointcloud/<name>.pcd`.
   */
  relatedFiles?: Array<number | string[]> | 'detect';
  /**
   * Adds one `ground_truth` job over these TASK frame numbers (relative, like the API's manual frame
   * selection). Its SPECIFIC_FRAMES segment stores them as absolute data frames (`included_frames`).
   */
  groundTruthFrames?: number[];
  /** Consensus replica jobs per annotation job (type `consensus_replica`, same segment as the parent). 2.73 only. */
  consensusReplicas?: number;
  /** State of annotation job k (in segment order); default 'new'. 'completed' also sets stage acceptance. */
  jobStates?: JobState[];
  /**
   * States of the consensus replicas of annotation job k (replica r gets `replicaStates[k][r]`); default
   * 'new'. Replicas keep their own state, independent of the parent's (CVAT's fixture: parent 42
   * completed, replicas 43 and 45 in progress, 44 new).
   */
  replicaStates?: Array<JobState[] | undefined>;
  /**
   * Honeypot validation (`validation_mode: "gt_pool"`, CVAT ≥ 2.24): the last `pool` task frames
   * form the ground-truth job's RANGE segment (as task 29 of CVAT's fixture: GT job on frames
   * 23–28); the last `perJob` frames of every annotation segment are placeholders showing a pool
   * frame (`is_placeholder`, `real_frame`): their chunks are built from the pool frame's file.
   */
  honeypots?: { pool: number; perJob: number };
  /** Deleted TASK frames (relative), as `deleted_frames` in data/meta. */
  deletedFrames?: number[];
  /** Assignee username of annotation job k (in segment order). */
  jobAssignees?: Array<string | null>;
  /** Organisation slug (must be declared in `organizations`); absent = personal sandbox. */
  organization?: string;
  projectId?: number;
  /** Owner username (must be a configured user when auth is configured). Default: the first admin. */
  owner?: string;
  /** Task assignee username. */
  assignee?: string;
  /** A task created without data (`data: null`, no jobs), as in CVAT right after `POST /api/tasks`. */
  noData?: boolean;
  /** Build time of each chunk of this task (overrides the emulator's buildTimeMs), e.g. a slow 4K video. */
  buildTimeMs?: number;
  /** Synthetic chunk size in bytes for this task (overrides the emulator's chunkBytes). */
  chunkBytes?: number;
  /** `image_quality`, default 70. */
  imageQuality?: number;
  /** Creation time (ms since epoch or ISO); default: the clock at addTask. */
  createdDate?: number | string;
  subset?: string;
}

export interface EmulatorUser {
  /** Default: position in the list + 1. */
  id?: number;
  username: string;
  /** Enables `POST /api/auth/login` and HTTP Basic. */
  password?: string;
  email?: string;
  firstName?: string;
  lastName?: string;
  /** Superuser: sees and reads everything, with or without an organisation. */
  isAdmin?: boolean;
  /** Personal access tokens (`Authorization: Bearer <token>`, 2.48+). */
  accessTokens?: string[];
  /** Legacy REST keys (`Authorization: Token <key>`). Login returns the first one (or a derived key). */
  legacyKeys?: string[];
  /** Organisation slug → role. */
  orgRoles?: Record<string, OrgRole>;
}

export interface EmulatorAuth {
  users: EmulatorUser[];
}

export interface OrganizationSpec {
  id: number;
  slug: string;
  name?: string;
  /** Owner username; default: a user with role 'owner' in it, else the first admin. */
  owner?: string;
}
