/**
 * Jobs grouped by the segment they read. The segment is CVAT's cache key: an annotation
 * job and its consensus replicas share one (cvat/apps/engine/task.py
 * `_create_segments_and_jobs` creates the replicas on the parent's segment), while each
 * ground-truth job has its own. A segment is live when any job on it is one annotators
 * work in (new, in progress, or rejected — a rejected job goes back to them); its tier is
 * that of its most active job.
 */
import type { PlanJob, PlanOptions, PlanTask } from './types.js';

/** Job states whose reads annotators wait on now (`rejected` jobs return to them). */
export const LIVE_STATES: ReadonlySet<string> = new Set(['new', 'in progress', 'rejected']);

export function jobTier(job: PlanJob): number {
  return LIVE_STATES.has(job.state) ? 0 : 1;
}

export interface PlanSegment {
  task: PlanTask;
  /** The job requests go through: the segment's own (parent / GT) job when known, else its first replica. */
  via: PlanJob;
  /** Every job reading this segment (parent and replicas), ascending ids. */
  jobs: PlanJob[];
  tier: number;
}

/** The segment a job reads, named by its owning job: a replica's parent, else the job itself. */
export function segmentOwner(job: PlanJob): number {
  return job.type === 'consensus_replica' && job.parentJobId !== undefined ? job.parentJobId : job.id;
}

/** The task's segments in job order; all-completed segments left out under `skipCompleted`. */
export function taskSegments(task: PlanTask, options: Pick<PlanOptions, 'skipCompleted'>): PlanSegment[] {
  const groups = new Map<number, PlanJob[]>();
  for (const job of task.jobs) {
    const owner = segmentOwner(job);
    let list = groups.get(owner);
    if (!list) groups.set(owner, (list = []));
    list.push(job);
  }
  const segments: PlanSegment[] = [];
  for (const [owner, jobs] of groups) {
    jobs.sort((a, b) => a.id - b.id);
    const tier = Math.min(...jobs.map(jobTier));
    if (options.skipCompleted && tier > 0) continue;
    const via = jobs.find((j) => j.id === owner) ?? jobs[0];
    if (via) segments.push({ task, via, jobs, tier });
  }
  return segments.sort((a, b) => a.via.id - b.via.id);
}

/** Relative task frame of an absolute data frame (included_frames are absolute). */
export function relativeFrame(task: PlanTask, absolute: number): number {
  return Math.floor((absolute - task.startFrame) / task.frameStep);
}

/** Relative task frames the segment holds, ascending (SPECIFIC_FRAMES from included_frames, else the range). */
export function segmentFrames(segment: PlanSegment): { has: (frame: number) => boolean; list: () => number[] } {
  const job = segment.via;
  if (job.includedFrames && job.includedFrames.length > 0) {
    const frames = [...new Set(job.includedFrames.map((abs) => relativeFrame(segment.task, abs)))].sort((a, b) => a - b);
    const set = new Set(frames);
    return { has: (f) => set.has(f), list: () => frames };
  }
  return {
    has: (f) => f >= job.startFrame && f <= job.stopFrame,
    list: () => Array.from({ length: job.stopFrame - job.startFrame + 1 }, (_, k) => job.startFrame + k),
  };
}

/**
 * Position (0-based, in the segment's frame order) of the frame the UI opens first: the
 * job's first frame that is not deleted (cvat-ui opens a job on its start frame and skips
 * deleted ones). 0 when every frame is deleted or nothing is known.
 */
export function firstOpenedPosition(segment: PlanSegment): number {
  const deleted = segment.task.deletedFrames;
  if (!deleted || deleted.length === 0) return 0;
  const gone = new Set(deleted);
  const frames = segmentFrames(segment).list();
  const position = frames.findIndex((f) => !gone.has(f));
  return position < 0 ? 0 : position;
}

/**
 * Context-image frames per segment: each frame with related files is assigned to one live
 * segment that holds it (range segments before ground-truth ones, then lowest job id), so
 * it is requested once per data id and through a job CVAT accepts it for — a frame outside
 * the job's segment gets 400 (media_io/frame_provider.py `validate_frame_number`).
 */
export function contextFramesBySegment(task: PlanTask, segments: readonly PlanSegment[]): Map<PlanSegment, number[]> {
  const out = new Map<PlanSegment, number[]>();
  const frames = task.framesWithContext;
  if (!frames || frames.length === 0) return out;
  const candidates = segments
    .filter((s) => s.via.type !== 'ground_truth' || (s.via.includedFrames?.length ?? 0) > 0 || s.via.frameCount === s.via.stopFrame - s.via.startFrame + 1)
    .map((s) => ({ segment: s, frames: segmentFrames(s) }))
    .sort(
      (a, b) =>
        a.segment.tier - b.segment.tier ||
        Number(a.segment.via.type === 'ground_truth') - Number(b.segment.via.type === 'ground_truth') ||
        a.segment.via.id - b.segment.via.id,
    );
  for (const frame of frames) {
    const owner = candidates.find((c) => c.frames.has(frame));
    if (!owner) continue;
    let list = out.get(owner.segment);
    if (!list) out.set(owner.segment, (list = []));
    list.push(frame);
  }
  return out;
}
