/**
 * Jobs checked against their task before anything is planned or guarded from them. A
 * job is a window on its task's frames, so CVAT's own model bounds it
 * (cvat/apps/engine/models.py Segment, serializers.py JobReadSerializer, 2.73.0):
 * - `start_frame` ≤ `stop_frame` ≤ task `size` − 1 (segment bounds are task-relative);
 * - `frame_count` = len(frame_set) ≤ stop − start + 1 (fewer only for ground-truth
 *   jobs of specific frames);
 * - `data_chunk_size` is `segment.task.data.chunk_size`, the task's own.
 * A job that contradicts its task (a CVAT claiming 10^9 frames for a 10-frame task)
 * would make the planner walk a billion frames; it is reported with its id and
 * skipped, and the task's other jobs go on. Every job of CVAT's own test databases
 * (2.5, 2.14, 2.73) passes these rules (test/cvat-sanity.test.ts).
 */
import type { Job, Task } from './shapes.js';

export interface JobRejection {
  taskId: number;
  jobId: number;
  message: string;
}

/** Why `job` cannot belong to `task`, or undefined when it is consistent with it. */
export function jobContradiction(task: Task, job: Job): string | undefined {
  const span = job.stop_frame - job.start_frame + 1;
  const size = task.size ?? undefined;
  if (size !== undefined && size > 0 && job.stop_frame >= size) {
    return `frames ${job.start_frame}–${job.stop_frame} reach beyond the task's ${size} frames`;
  }
  if (job.frame_count !== undefined && job.frame_count > span) {
    return `frame_count ${job.frame_count} exceeds its frames ${job.start_frame}–${job.stop_frame} (${span})`;
  }
  if (size !== undefined && size > 0 && job.frame_count !== undefined && job.frame_count > size) {
    return `frame_count ${job.frame_count} exceeds the task's ${size} frames`;
  }
  const taskChunk = task.data_chunk_size ?? undefined;
  const jobChunk = job.data_chunk_size ?? undefined;
  if (taskChunk !== undefined && jobChunk !== undefined && taskChunk !== jobChunk) {
    return `chunk size ${jobChunk} differs from its task's ${taskChunk} (CVAT serves a job with its task's chunk size)`;
  }
  return undefined;
}

/** The jobs consistent with their task; each other one is passed to `reject` with its id. */
export function keepSaneJobs(task: Task, jobs: readonly Job[], reject: (rejection: JobRejection) => void): Job[] {
  const sane: Job[] = [];
  for (const job of jobs) {
    const problem = jobContradiction(task, job);
    if (problem === undefined) sane.push(job);
    else reject({ taskId: task.id, jobId: job.id, message: `job ${job.id} of task ${task.id} skipped: it contradicts its task: ${problem}` });
  }
  return sane;
}
