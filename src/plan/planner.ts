/**
 * Which chunk URLs the annotation UI will read, per CVAT version (cvat-facts §1.2, §1.3,
 * "Implications B"). A generator: requests are produced one at a time, so planning a
 * million chunks holds the job list, never a million request objects.
 *
 * The unit is a segment (the cache key), not a job: a parent and its consensus replicas
 * read one segment, which is warmed once — and kept warm while any job on it is live,
 * even when the parent is completed. Order: live segments (a job new, in progress or
 * rejected) before the rest; within each tier, the chunk holding every segment's first
 * opened frame before any later chunk, so whoever opens a job first sees frames at once.
 */
import type { Quality } from '../domain.js';
import { contextFramesBySegment, firstOpenedPosition, relativeFrame, taskSegments, type PlanSegment } from './segments.js';
import type { PlanJob, PlanOptions, PlanTask, WarmRequest } from './types.js';
import { series } from '../series.js';

export { jobTier, LIVE_STATES, taskSegments, type PlanSegment } from './segments.js';

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
      const relative = relativeFrame(task, absolute);
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

function chunkRequest(segment: PlanSegment, quality: Quality, slot: number, options: PlanOptions): WarmRequest {
  const { task, via: job } = segment;
  // 2.20+: job-relative `index`, one series per segment. Before: task chunk `number`; annotation
  // jobs share task-level keys (border chunks), ground-truth jobs have their own.
  const legacySeries = job.type === 'ground_truth' ? series.groundTruthChunks(job.id, quality) : series.taskChunks(task.id, quality);
  return {
    kind: 'chunk',
    taskId: task.id,
    jobId: job.id,
    quality,
    path: `/api/jobs/${job.id}/data`,
    query: options.indexChunks ? { quality, type: 'chunk', index: slot } : { quality, type: 'chunk', number: slot },
    series: options.indexChunks ? series.jobChunks(job.id, quality) : legacySeries,
    slot,
    tier: segment.tier,
  };
}

/** A segment's chunk slots in UI order, without materialising index ranges (a million chunks stay cheap). */
interface Slots {
  count: number;
  at(position: number): number;
}

/**
 * Chunk slots of a segment in UI order: the chunk holding the frame the UI opens first
 * (first non-deleted frame), then the rest ascending.
 */
function segmentSlots(segment: PlanSegment, options: PlanOptions): Slots {
  const { task, via: job } = segment;
  const position = firstOpenedPosition(segment);
  if (options.indexChunks) {
    const count = jobChunkCount(job);
    const first = Math.min(Math.floor(position / job.chunkSize), Math.max(0, count - 1));
    return { count, at: (p) => (p === 0 ? first : p - 1 < first ? p - 1 : p) };
  }
  const numbers = legacyChunkNumbers(task, job);
  const included = job.type === 'ground_truth' && job.includedFrames?.length ? [...job.includedFrames].sort((a, b) => a - b) : undefined;
  const opened = included ? (included[position] ?? included[0]) : undefined;
  const frame = opened !== undefined ? relativeFrame(task, opened) : job.startFrame + position;
  const at = numbers.indexOf(Math.floor(frame / task.chunkSize));
  const ordered = at > 0 ? [...numbers.slice(at, at + 1), ...numbers.slice(0, at), ...numbers.slice(at + 1)] : numbers;
  return { count: ordered.length, at: (p) => ordered[p] ?? 0 };
}

function contextRequest(segment: PlanSegment, frame: number): WarmRequest {
  const { task, via: job } = segment;
  return {
    kind: 'context_image',
    taskId: task.id,
    jobId: job.id,
    quality: 'original',
    path: `/api/jobs/${job.id}/data`,
    query: { quality: 'original', type: 'context_image', number: frame },
    series: series.contextImages(task.id),
    slot: frame,
    tier: segment.tier,
  };
}

/** One segment of a tier as a pass visits it. */
interface Unit {
  segment: PlanSegment;
  slots: Slots;
  context: readonly number[] | undefined;
}

/**
 * All requests for the given tasks, in warm order. Legacy task-level chunk numbers
 * shared by neighbouring jobs are requested once per task; context images once per
 * task frame, through a live segment that holds the frame.
 */
export function* planRequests(tasks: readonly PlanTask[], options: PlanOptions): Generator<WarmRequest> {
  for (const quality of options.qualities) {
    const withContext = options.contextImages && quality === options.qualities[0];
    for (const tier of [0, 1]) {
      const seenLegacy = new Map<number, Set<number>>(); // taskId → task chunk numbers already planned
      const wanted = (segment: PlanSegment, slot: number): boolean => {
        if (options.indexChunks || segment.via.type === 'ground_truth') return true;
        let seen = seenLegacy.get(segment.task.id);
        if (!seen) seenLegacy.set(segment.task.id, (seen = new Set()));
        if (seen.has(slot)) return false;
        seen.add(slot);
        return true;
      };
      // Each pass walks the tasks again rather than keeping every segment of the tier
      // (segment, slot cursor, context frames: ~250 bytes each, 10 MB at 40,000 jobs) for the
      // whole pass; taskSegments is cheap beside one request per chunk.
      const tierUnits = function* (): Generator<Unit> {
        for (const task of tasks) {
          const segments = taskSegments(task, options);
          const context = withContext ? contextFramesBySegment(task, segments) : undefined;
          for (const segment of segments) {
            if (segment.tier !== tier) continue;
            yield { segment, slots: segmentSlots(segment, options), context: context?.get(segment) };
          }
        }
      };
      // Pass 1: the chunk every segment is opened on.
      for (const { segment, slots } of tierUnits()) {
        if (slots.count > 0 && wanted(segment, slots.at(0))) yield chunkRequest(segment, quality, slots.at(0), options);
      }
      if (options.previews && quality === options.qualities[0]) {
        const headers = options.emptyPreviews ? { headers: { prefer: 'handling=empty' } } : {};
        const seenTasks = new Set<number>();
        for (const { segment } of tierUnits()) {
          const { task, via: job } = segment;
          yield {
            kind: 'job_preview',
            taskId: task.id,
            jobId: job.id,
            quality,
            path: `/api/jobs/${job.id}/preview`,
            query: {},
            series: series.jobPreview(job.id),
            slot: 0,
            tier,
            ...headers,
          };
          if (!seenTasks.has(task.id)) {
            seenTasks.add(task.id);
            yield {
              kind: 'task_preview',
              taskId: task.id,
              jobId: job.id,
              quality,
              path: `/api/tasks/${task.id}/preview`,
              query: {},
              series: series.taskPreview(task.id),
              slot: 0,
              tier,
              ...headers,
            };
          }
        }
      }
      // Pass 2: the remaining chunks, segment by segment, then that segment's context images.
      for (const { segment, slots, context } of tierUnits()) {
        for (let position = 1; position < slots.count; position++) {
          const slot = slots.at(position);
          if (wanted(segment, slot)) yield chunkRequest(segment, quality, slot, options);
        }
        for (const frame of context ?? []) yield contextRequest(segment, frame);
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
  for (const task of tasks) for (const segment of taskSegments(task, options)) summary.jobs += segment.jobs.length;
  for (const request of planRequests(tasks, options)) {
    summary.requests++;
    summary.byKind[request.kind] = (summary.byKind[request.kind] ?? 0) + 1;
    summary.byTier[request.tier === 0 ? 0 : 1]++;
  }
  return summary;
}
