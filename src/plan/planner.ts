/**
 * Which chunk URLs the annotation UI will read, per CVAT version (cvat-facts §1.2, §1.3,
 * "Implications B"). A generator: requests are produced one at a time, so planning a
 * million chunks holds the job list, never a million request objects.
 *
 * Order: jobs annotators work on now (state new / in progress) before the rest; within
 * each tier, chunk 0 of every job before any later chunk, so whoever opens a job first
 * sees frames at once.
 */
import type { Quality } from '../domain.js';
import type { PlanJob, PlanOptions, PlanTask, WarmRequest } from './types.js';

const ACTIVE_STATES = new Set(['new', 'in progress']);

export function jobTier(job: PlanJob): number {
  return ACTIVE_STATES.has(job.state) ? 0 : 1;
}

/** Jobs whose chunks are read through their own segment; replicas share the parent's. */
export function plannableJobs(task: PlanTask, options: Pick<PlanOptions, 'skipCompleted'>): PlanJob[] {
  return task.jobs.filter((job) => job.type !== 'consensus_replica' && !(options.skipCompleted && job.state === 'completed'));
}

/** Number of job-relative chunks: `ceil(frame_count / chunk_size)` (2.20+). */
export function jobChunkCount(job: PlanJob): number {
  return job.frameCount > 0 ? Math.ceil(job.frameCount / job.chunkSize) : 0;
}

/**
 * Task chunk numbers a job's UI reads before 2.20: `floor(rel / cs)` over its frames.
 * Ground-truth jobs read only the chunks holding their included frames.
 */
export function legacyChunkNumbers(task: PlanTask, job: PlanJob): number[] {
  const cs = task.chunkSize;
  if (job.type === 'ground_truth' && job.includedFrames && job.includedFrames.length > 0) {
    const numbers = new Set<number>();
    for (const absolute of job.includedFrames) {
      const relative = Math.floor((absolute - task.startFrame) / task.frameStep);
      if (relative >= 0) numbers.add(Math.floor(relative / cs));
    }
    return [...numbers].sort((a, b) => a - b);
  }
  const first = Math.floor(job.startFrame / cs);
  const last = Math.floor(job.stopFrame / cs);
  const numbers: number[] = [];
  for (let n = first; n <= last; n++) numbers.push(n);
  return numbers;
}

function chunkRequest(task: PlanTask, job: PlanJob, quality: Quality, slot: number, options: PlanOptions): WarmRequest {
  // 2.20+: job-relative `index`, one series per job. Before: task chunk `number`; annotation
  // jobs share task-level keys (border chunks), ground-truth jobs have their own.
  const legacySeries = job.type === 'ground_truth' ? `g${job.id}/${quality}` : `t${task.id}/${quality}`;
  return {
    kind: 'chunk',
    taskId: task.id,
    jobId: job.id,
    quality,
    path: `/api/jobs/${job.id}/data`,
    query: options.indexChunks ? { quality, type: 'chunk', index: slot } : { quality, type: 'chunk', number: slot },
    series: options.indexChunks ? `j${job.id}/${quality}` : legacySeries,
    slot,
    tier: jobTier(job),
  };
}

/** Chunk slots of a job in UI order (index or legacy number). */
function jobSlots(task: PlanTask, job: PlanJob, options: PlanOptions): number[] | { count: number } {
  return options.indexChunks ? { count: jobChunkCount(job) } : legacyChunkNumbers(task, job);
}

function slotAt(slots: number[] | { count: number }, position: number): number | undefined {
  if (Array.isArray(slots)) return slots[position];
  return position < slots.count ? position : undefined;
}

function slotCount(slots: number[] | { count: number }): number {
  return Array.isArray(slots) ? slots.length : slots.count;
}

/** Context-image frames of a job (relative task frames), for frames with related files. */
function jobContextFrames(task: PlanTask, job: PlanJob): number[] {
  const frames = task.framesWithContext ?? [];
  if (job.type === 'ground_truth' && job.includedFrames) {
    const wanted = new Set(job.includedFrames.map((abs) => Math.floor((abs - task.startFrame) / task.frameStep)));
    return frames.filter((f) => wanted.has(f));
  }
  return frames.filter((f) => f >= job.startFrame && f <= job.stopFrame);
}

/**
 * All requests for the given tasks, in warm order. Legacy task-level chunk numbers
 * shared by neighbouring jobs are requested once per task.
 */
export function* planRequests(tasks: readonly PlanTask[], options: PlanOptions): Generator<WarmRequest> {
  for (const quality of options.qualities) {
    for (const tier of [0, 1]) {
      const seenLegacy = new Map<number, Set<number>>(); // taskId → task chunk numbers already planned
      const wanted = (task: PlanTask, job: PlanJob, slot: number): boolean => {
        if (options.indexChunks || job.type === 'ground_truth') return true;
        let seen = seenLegacy.get(task.id);
        if (!seen) seenLegacy.set(task.id, (seen = new Set()));
        if (seen.has(slot)) return false;
        seen.add(slot);
        return true;
      };
      const jobs: Array<{ task: PlanTask; job: PlanJob; slots: number[] | { count: number } }> = [];
      for (const task of tasks) {
        for (const job of plannableJobs(task, options)) {
          if (jobTier(job) === tier) jobs.push({ task, job, slots: jobSlots(task, job, options) });
        }
      }
      // Pass 1: the first chunk of every job.
      for (const { task, job, slots } of jobs) {
        const first = slotAt(slots, 0);
        if (first !== undefined && wanted(task, job, first)) yield chunkRequest(task, job, quality, first, options);
      }
      if (options.previews && quality === options.qualities[0]) {
        const seenTasks = new Set<number>();
        for (const { task, job } of jobs) {
          yield { kind: 'job_preview', taskId: task.id, jobId: job.id, quality, path: `/api/jobs/${job.id}/preview`, query: {}, series: `j${job.id}/preview`, slot: 0, tier };
          if (!seenTasks.has(task.id)) {
            seenTasks.add(task.id);
            yield { kind: 'task_preview', taskId: task.id, jobId: job.id, quality, path: `/api/tasks/${task.id}/preview`, query: {}, series: `t${task.id}/preview`, slot: 0, tier };
          }
        }
      }
      // Pass 2: the remaining chunks, job by job, then that job's context images.
      const seenContext = new Map<number, Set<number>>();
      for (const { task, job, slots } of jobs) {
        const count = slotCount(slots);
        for (let position = 1; position < count; position++) {
          const slot = slotAt(slots, position)!;
          if (wanted(task, job, slot)) yield chunkRequest(task, job, quality, slot, options);
        }
        if (options.contextImages && quality === options.qualities[0]) {
          // Context images are cached per data and frame, so one request per frame of a task.
          let seen = seenContext.get(task.id);
          if (!seen) seenContext.set(task.id, (seen = new Set()));
          for (const frame of jobContextFrames(task, job)) {
            if (seen.has(frame)) continue;
            seen.add(frame);
            yield {
              kind: 'context_image',
              taskId: task.id,
              jobId: job.id,
              quality: 'original',
              path: `/api/jobs/${job.id}/data`,
              query: { quality: 'original', type: 'context_image', number: frame },
              series: `t${task.id}/context`,
              slot: frame,
              tier,
            };
          }
        }
      }
    }
  }
}

export interface PlanSummary {
  tasks: number;
  jobs: number;
  requests: number;
  byKind: Record<string, number>;
  byTier: [number, number];
}

/** Counts a plan without keeping it. */
export function summarizePlan(tasks: readonly PlanTask[], options: PlanOptions): PlanSummary {
  const summary: PlanSummary = { tasks: tasks.length, jobs: 0, requests: 0, byKind: {}, byTier: [0, 0] };
  for (const task of tasks) summary.jobs += plannableJobs(task, options).length;
  for (const request of planRequests(tasks, options)) {
    summary.requests++;
    summary.byKind[request.kind] = (summary.byKind[request.kind] ?? 0) + 1;
    summary.byTier[request.tier === 0 ? 0 : 1]++;
  }
  return summary;
}
