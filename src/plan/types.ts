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
  /** Absolute data frames of a ground-truth job (job meta `included_frames`); only needed before CVAT 2.20. */
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
  /** 0 for jobs annotators work on now (new / in progress), 1 for the rest. */
  tier: number;
}

export interface PlanOptions {
  qualities: readonly Quality[];
  previews: boolean;
  contextImages: boolean;
  /** CVAT ≥ 2.20 reads per-job chunks by `index`; older ones task chunks by `number`. */
  indexChunks: boolean;
  /** Leave out jobs whose state is `completed`. */
  skipCompleted: boolean;
}
