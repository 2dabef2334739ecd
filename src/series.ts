/**
 * The chunk ledger's series names, built here and nowhere else: the planner names what it
 * warms, freshness re-dates, the scheduler forgets, and `check`/`run` read expiry through
 * these. A name missed when a task or job goes away would leak its entries for good, so
 * the names a task or job owns are listed here beside the ones that build them.
 *
 *   j<job>/<quality>   job chunks by index (CVAT 2.20+), one series per segment
 *   t<task>/<quality>  legacy task chunks by number (annotation jobs share them)
 *   g<job>/<quality>   legacy chunks of a ground-truth job
 *   t<task>/context    context images by frame
 *   j<job>/preview     a job's preview (slot 0);  t<task>/preview: the task's
 *   t<task>/dates      the task's chunks_updated_date marker (no entries)
 */
import { QUALITIES, type Quality } from './domain.js';

export const series = {
  /** Job chunks addressed by job-relative index (CVAT 2.20+). */
  jobChunks: (jobId: number, quality: Quality): string => `j${jobId}/${quality}`,
  /** Task chunks addressed by task chunk number (before 2.20), shared by annotation jobs. */
  taskChunks: (taskId: number, quality: Quality): string => `t${taskId}/${quality}`,
  /** Chunks of a ground-truth job before 2.20 (its own keys). */
  groundTruthChunks: (jobId: number, quality: Quality): string => `g${jobId}/${quality}`,
  contextImages: (taskId: number): string => `t${taskId}/context`,
  jobPreview: (jobId: number): string => `j${jobId}/preview`,
  taskPreview: (taskId: number): string => `t${taskId}/preview`,
  /** The task's chunks_updated_date marker. */
  taskDates: (taskId: number): string => `t${taskId}/dates`,
} as const;

/** Whether `name` is a job's chunk series (its slots are job-relative chunk indexes). */
export function isJobChunks(name: string): boolean {
  const slash = name.indexOf('/');
  return /^j\d+$/.test(name.slice(0, slash)) && (QUALITIES as readonly string[]).includes(name.slice(slash + 1));
}

/** Every series a task owns (forgotten when the task goes away). */
export function taskSeries(taskId: number): string[] {
  return [...QUALITIES.map((q) => series.taskChunks(taskId, q)), series.contextImages(taskId), series.taskPreview(taskId), series.taskDates(taskId)];
}

/** Every series a job owns (forgotten when the job goes away). */
export function jobSeries(jobId: number): string[] {
  return [...QUALITIES.flatMap((q) => [series.jobChunks(jobId, q), series.groundTruthChunks(jobId, q)]), series.jobPreview(jobId)];
}
