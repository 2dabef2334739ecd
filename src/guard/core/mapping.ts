/**
 * Frame → job → chunk mapping (cvat-facts §1.3, 2.20+ per-job chunks), computed on
 * demand when an alert is raised so the per-file index only stores (task, frame).
 *
 *  - annotation job: covers relative frames [startFrame, stopFrame];
 *    chunk = floor((rel - startFrame) / chunkSize)
 *  - ground_truth job with includedFrames (absolute): chunk =
 *    floor(sortedIndexOf(includedFrames, start_frame + rel*step) / chunkSize)
 *  - consensus_replica: same segment (frames, chunks) as its parent; listed under its own id,
 *    since annotators work in it, with the parent's warm times (the segment is warmed once)
 *  - video: every job and every chunk depends on the one file
 */
import { CHUNK_CACHE_TTL_MS, forecastExpiry, type ChunkExpiry } from '../../cvat/features.js';
import { frameStep } from '../../cvat/shapes.js';
import type { AffectedJob, AffectedTask, GuardJob, GuardTask } from '../types.js';

export { CHUNK_CACHE_TTL_MS };

export type LastWarmedAt = (jobId: number, chunkIndex: number) => number | undefined;

interface CompiledJob {
  id: number;
  /** Whose ledger entries tell when this job's chunks were built (a replica: its parent). */
  warmedAs: number;
  type: string;
  start: number;
  stop: number;
  chunkSize: number;
  /** Sorted absolute frames (ground-truth jobs). */
  included: Int32Array | null;
}

/** What the guard keeps of a task after indexing (no frame list). */
export interface TaskMapping {
  taskId: number;
  taskName?: string;
  isVideo: boolean;
  startFrame: number;
  step: number;
  jobs: CompiledJob[];
  /** Only when not the default 24 h TTL (2.10.1+). */
  chunkExpiry?: ChunkExpiry;
}

export function compileTask(task: GuardTask): TaskMapping {
  const fallbackChunk = task.meta.chunk_size && task.meta.chunk_size > 0 ? task.meta.chunk_size : 36;
  const jobs: CompiledJob[] = [];
  for (const job of task.jobs) jobs.push(compileJob(job, fallbackChunk));
  jobs.sort((a, b) => a.start - b.start || a.id - b.id);
  const mapping: TaskMapping = {
    taskId: task.taskId,
    isVideo: task.isVideo,
    startFrame: task.meta.start_frame,
    step: frameStep(task.meta.frame_filter),
    jobs,
  };
  if (task.taskName !== undefined) mapping.taskName = task.taskName;
  if (task.chunkExpiry && task.chunkExpiry.kind !== 'ttl') mapping.chunkExpiry = task.chunkExpiry;
  return mapping;
}

function compileJob(job: GuardJob, fallbackChunk: number): CompiledJob {
  const included = Array.isArray(job.includedFrames) && job.includedFrames.length > 0 ? Int32Array.from(job.includedFrames).sort() : null;
  return {
    id: job.id,
    warmedAs: job.type === 'consensus_replica' && job.parentJobId !== undefined ? job.parentJobId : job.id,
    type: job.type,
    start: job.startFrame,
    stop: job.stopFrame,
    chunkSize: Number.isInteger(job.chunkSize) && job.chunkSize > 0 ? job.chunkSize : fallbackChunk,
    included,
  };
}

function sortedIndexOf(sorted: Int32Array, value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid]!;
    if (v === value) return mid;
    if (v < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

function chunkCount(job: CompiledJob): number {
  const frames = job.included ? job.included.length : job.stop - job.start + 1;
  return Math.max(1, Math.ceil(frames / job.chunkSize));
}

/** Chunk of `job` holding relative task frame `rel`, or -1. */
export function chunkOf(task: TaskMapping, job: CompiledJob, rel: number): number {
  if (job.included) {
    const index = sortedIndexOf(job.included, task.startFrame + rel * task.step);
    return index < 0 ? -1 : Math.floor(index / job.chunkSize);
  }
  if (rel < job.start || rel > job.stop) return -1;
  return Math.floor((rel - job.start) / job.chunkSize);
}

function expiry(jobId: number, chunks: number[], lastWarmedAt: LastWarmedAt | undefined, model: ChunkExpiry): number | 'unknown' {
  if (!lastWarmedAt || model.kind === 'none') return 'unknown';
  let earliest = Infinity;
  for (const chunk of chunks) {
    let warmed: number | undefined;
    try {
      warmed = lastWarmedAt(jobId, chunk);
    } catch {
      warmed = undefined;
    }
    if (typeof warmed === 'number' && Number.isFinite(warmed)) {
      const forecast = forecastExpiry(model, warmed);
      if (forecast.at !== null) earliest = Math.min(earliest, forecast.at);
    }
  }
  return earliest === Infinity ? 'unknown' : earliest;
}

const DEFAULT_EXPIRY: ChunkExpiry = { kind: 'ttl', ttlMs: CHUNK_CACHE_TTL_MS };

/** Why a forecast is not an exact date, per the version's cache (undefined when it is). */
function expiryNote(model: ChunkExpiry): string | undefined {
  if (model.kind === 'none') return 'no expiry date: CVAT ≤ 2.6.1 keeps chunks in diskcache without expiry';
  if (model.kind === 'ttl-lfu') return 'at the latest: CVAT 2.6.2–2.10.0 (KeyDB, maxmemory 5G, allkeys-lfu) may evict a chunk before its 24 h TTL';
  return undefined;
}

function earliestOf(values: Array<number | 'unknown'>): number | 'unknown' {
  let earliest = Infinity;
  for (const v of values) if (v !== 'unknown') earliest = Math.min(earliest, v);
  return earliest === Infinity ? 'unknown' : earliest;
}

/**
 * Jobs and chunks of one task that read a file referenced by `frames`
 * (relative frames; ignored for a video, where everything depends on the file).
 */
export function affectedTask(task: TaskMapping, frames: readonly number[], lastWarmedAt?: LastWarmedAt): AffectedTask {
  const jobs: AffectedJob[] = [];
  for (const job of task.jobs) {
    let chunks: number[];
    if (task.isVideo) {
      chunks = Array.from({ length: chunkCount(job) }, (_, i) => i);
    } else {
      const set = new Set<number>();
      for (const rel of frames) {
        const chunk = chunkOf(task, job, rel);
        if (chunk >= 0) set.add(chunk);
      }
      if (set.size === 0) continue;
      chunks = [...set].sort((a, b) => a - b);
    }
    jobs.push({ jobId: job.id, type: job.type, chunks, expiresAt: expiry(job.warmedAs, chunks, lastWarmedAt, task.chunkExpiry ?? DEFAULT_EXPIRY) });
  }
  jobs.sort((a, b) => a.jobId - b.jobId);
  const result: AffectedTask = {
    taskId: task.taskId,
    frames: task.isVideo ? [] : [...new Set(frames)].sort((a, b) => a - b),
    jobs,
    expiresAt: earliestOf(jobs.map((j) => j.expiresAt)),
  };
  if (task.taskName !== undefined) result.taskName = task.taskName;
  const note = expiryNote(task.chunkExpiry ?? DEFAULT_EXPIRY);
  if (note) result.expiryNote = note;
  return result;
}

/** Merge the jobs of several alerts of one task (check report, coalesced logs). */
export function mergeJobs(lists: Iterable<AffectedJob[]>): AffectedJob[] {
  const byJob = new Map<number, { type: string; chunks: Set<number>; expiresAt: Array<number | 'unknown'> }>();
  for (const list of lists) {
    for (const job of list) {
      let entry = byJob.get(job.jobId);
      if (!entry) byJob.set(job.jobId, (entry = { type: job.type, chunks: new Set(), expiresAt: [] }));
      for (const c of job.chunks) entry.chunks.add(c);
      entry.expiresAt.push(job.expiresAt);
    }
  }
  return [...byJob.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([jobId, e]) => ({ jobId, type: e.type, chunks: [...e.chunks].sort((a, b) => a - b), expiresAt: earliestOf(e.expiresAt) }));
}

export { earliestOf };
