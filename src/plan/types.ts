/** What the planner consumes (compact job/task records) and produces (one GET each). */
import type { Quality } from '../domain.js';

/** A job reduced to what chunk planning needs; built from `GET /api/jobs`. */
export interface PlanJob {
  id: number;
  taskId: number;
  type: string;
  /** Relative task frames, inclusive. */
  startFrame: number;
  stopFrame: number;
  frameCount: number;
  chunkSize: number;
  state: string;
  /** A consensus replica's parent: replicas read the parent's segment (one cache key). */
  parentJobId?: number;
  /**
   * Absolute data frames of a SPECIFIC_FRAMES segment (job meta `included_frames`, fetched
   * for every ground-truth job): its chunks, its context images and its first frame.
   */
  includedFrames?: readonly number[];
}

export interface PlanTask {
  id: number;
  chunkSize: number;
  /** Task meta `start_frame` (absolute) and frame step; only needed before CVAT 2.20. */
  startFrame: number;
  frameStep: number;
  /** Relative task frames whose `related_files > 0` (context images), when requested. */
  framesWithContext?: readonly number[];
  /** Relative task frames deleted in CVAT (meta `deleted_frames`): the UI opens a job on its first frame not deleted. */
  deletedFrames?: readonly number[];
  jobs: PlanJob[];
}

export type WarmKind = 'chunk' | 'context_image' | 'job_preview' | 'task_preview';

export interface WarmRequest {
  kind: WarmKind;
  taskId: number;
  jobId: number;
  quality: Quality;
  /** API path (without the base URL) and query, exactly as the CVAT UI sends them. */
  path: string;
  query: Record<string, string | number>;
  /** Ledger address: a series per job/quality (or per task for shared legacy chunks) and a slot. */
  series: string;
  slot: number;
  /** 0 for segments annotators work on now (a job new, in progress or rejected), 1 for the rest. */
  tier: number;
  /** Extra request headers, as the UI sends them (previews: `Prefer: handling=empty` on 2.67+). */
  headers?: Record<string, string>;
}

export interface PlanOptions {
  qualities: readonly Quality[];
  previews: boolean;
  contextImages: boolean;
  /** CVAT ≥ 2.20 reads per-job chunks by `index`; older ones task chunks by `number`. */
  indexChunks: boolean;
  /** Leave out segments whose every job (parent and replicas) is `completed`. */
  skipCompleted: boolean;
  /** CVAT ≥ 2.67 answers a preview request with `Prefer: handling=empty` by 204 when it has none (3D, audio). */
  emptyPreviews?: boolean;
}
