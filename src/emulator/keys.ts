/**
 * CVAT's media-cache key names (cvat-facts.md §4) and the set of keys the annotation UI
 * reads, computed from the emulator's own segment model (never from warden code).
 *
 * 2.73: `FrameQuality` is an IntEnum rendered as its value: compressed → 0, original → 100
 * (e.g. `segment_3_chunk_1_0`). 2.0–2.19: `FrameProvider.Quality` is a plain Enum, so an
 * f-string renders `Quality.COMPRESSED` (e.g. `22_0_Quality.COMPRESSED`).
 */
import type { Deployment, EmulatedTask } from './model.js';
import { absToRel, chunkCount, taskChunkOf } from './segments.js';

export type Quality = 'compressed' | 'original';

export function qualityToken(q: Quality, legacy: boolean): string {
  if (legacy) return q === 'compressed' ? 'Quality.COMPRESSED' : 'Quality.ORIGINAL';
  return q === 'compressed' ? '0' : '100';
}

/** 2.20+: job chunk by `index` — what the UI reads. */
export const segmentChunkKey = (segmentId: number, index: number, q: Quality): string => `segment_${segmentId}_chunk_${index}_${qualityToken(q, false)}`;
/** 2.20+: legacy `number` on the job endpoint (a task chunk trimmed to the job). */
export const segmentTaskChunkKey = (segmentId: number, n: number, q: Quality): string => `segment_${segmentId}_task_chunk_${n}_${qualityToken(q, false)}`;
/** 2.20+: `GET /api/tasks/{id}/data?type=chunk&number=N`. */
export const taskChunkKey = (taskId: number, n: number, q: Quality): string => `task_${taskId}_chunk_${n}_${qualityToken(q, false)}`;
export const segmentPreviewKey = (segmentId: number): string => `segment_${segmentId}_preview`;
export const contextImagesKey = (dataId: number, frame: number): string => `context_images_${dataId}_${frame}`;

/** 2.0–2.19: task chunk N, shared by every job whose range touches it. */
export const legacyChunkKey = (dataId: number, n: number, q: Quality): string => `${dataId}_${n}_${qualityToken(q, true)}`;
/** 2.9.2–2.19: ground-truth job chunk N (masked with placeholders). */
export const legacyGtChunkKey = (jobId: number, n: number, q: Quality): string => `job_${jobId}_${n}_${qualityToken(q, true)}`;
export const legacyPreviewKey = (dataId: number, frame: number): string => `data_${dataId}_${frame}_preview`;
export const legacyContextKey = (dataId: number, frame: number): string => `context_image_${dataId}_${frame}`;

/**
 * Keys the UI reads when an annotator opens every job of every task (compressed chunks only):
 * 2.20+: `index` 0 … ceil(frame_count / chunk_size) - 1 of annotation and ground-truth jobs
 * (replicas share their parent's segment, hence its keys).
 * Pre-2.20: task chunk numbers floor(start/cs) … floor(stop/cs) of annotation jobs (shared keys),
 * and for GT jobs the numbers of the chunks holding `included_frames` (separate keys).
 */
export function uiChunkKeys(deployment: Deployment, legacy: boolean): Set<string> {
  const keys = new Set<string>();
  for (const task of deployment.tasks.values()) {
    if (task.dataId === null) continue;
    for (const key of uiChunkKeysOfTask(deployment, task, legacy)) keys.add(key);
  }
  return keys;
}

export function uiChunkKeysOfTask(deployment: Deployment, task: EmulatedTask, legacy: boolean): string[] {
  const keys: string[] = [];
  const cs = task.chunkSize;
  for (const job of task.jobs) {
    if (job.type === 'consensus_replica') continue;
    const seg = deployment.segmentOf(job);
    if (!legacy) {
      const n = chunkCount(seg.frameSet.length, cs);
      for (let i = 0; i < n; i++) keys.push(segmentChunkKey(seg.id, i, 'compressed'));
    } else if (job.type === 'ground_truth') {
      const numbers = new Set<number>();
      for (const abs of seg.frameSet) {
        const rel = absToRel(task.geometry, abs);
        if (rel !== null) numbers.add(taskChunkOf(rel, cs));
      }
      for (const n of [...numbers].sort((a, b) => a - b)) keys.push(legacyGtChunkKey(job.id, n, 'compressed'));
    } else if (task.dataId !== null) {
      for (let n = taskChunkOf(seg.startFrame, cs); n <= taskChunkOf(seg.stopFrame, cs); n++) {
        keys.push(legacyChunkKey(task.dataId, n, 'compressed'));
      }
    }
  }
  return keys;
}

/** Job states whose jobs annotators open (a rejected job goes back to them). */
const OPEN_STATES = new Set(['new', 'in progress', 'rejected']);

/**
 * Every cache key the UI reads when annotators open the jobs — chunks (compressed) *and*
 * context images — from the emulator's own model: per segment (a parent and its replicas
 * share one), live when any job on it is new, in progress or rejected (`liveOnly`), and for
 * each frame of the segment whose `related_files > 0` the context-image key (cvat-ui
 * canvas-layout.tsx shows the context views whenever relatedFiles > 0, and each visited
 * frame fetches them: cvat/apps/engine/cache.py `context_images_{data_id}_{frame}`).
 */
export function uiReadKeys(deployment: Deployment, legacy: boolean, options: { liveOnly: boolean }): Set<string> {
  const keys = new Set<string>();
  for (const task of deployment.tasks.values()) {
    if (task.dataId === null) continue;
    const dataId = task.dataId;
    for (const seg of task.segments) {
      const jobs = task.jobs.filter((j) => j.segmentId === seg.id);
      const owner = jobs.find((j) => j.type !== 'consensus_replica') ?? jobs[0];
      if (!owner) continue;
      if (options.liveOnly && !jobs.some((j) => OPEN_STATES.has(j.state))) continue;
      const cs = task.chunkSize;
      if (!legacy) {
        const n = chunkCount(seg.frameSet.length, cs);
        for (let i = 0; i < n; i++) keys.add(segmentChunkKey(seg.id, i, 'compressed'));
      } else if (owner.type === 'ground_truth') {
        for (const abs of seg.frameSet) {
          const rel = absToRel(task.geometry, abs);
          if (rel !== null) keys.add(legacyGtChunkKey(owner.id, taskChunkOf(rel, cs), 'compressed'));
        }
      } else {
        for (let n = taskChunkOf(seg.startFrame, cs); n <= taskChunkOf(seg.stopFrame, cs); n++) keys.add(legacyChunkKey(dataId, n, 'compressed'));
      }
      for (const abs of seg.frameSet) {
        const rel = absToRel(task.geometry, abs);
        if (rel === null || (task.frames[rel]?.related ?? 0) === 0) continue;
        keys.add(legacy ? legacyContextKey(dataId, rel) : contextImagesKey(dataId, rel));
      }
    }
  }
  return keys;
}
