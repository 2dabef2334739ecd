/** Turns an inventory record into the planner's compact task (the pure half of planning). */
import { frameStep } from '../cvat/shapes.js';
import type { InventoryIssue, TaskRecord } from '../cvat/inventory.js';
import type { PlanJob, PlanTask } from './types.js';

/** Reduces a record to what the planner needs; undefined (with an issue) when it cannot be planned. */
export function toPlanTask(record: TaskRecord, options: { contextImages: boolean; onIssue: (issue: InventoryIssue) => void }): PlanTask | undefined {
  const { task, meta } = record;
  const taskChunkSize = task.data_chunk_size ?? meta?.chunk_size ?? undefined;
  const jobs: PlanJob[] = [];
  for (const job of record.jobs) {
    const chunkSize = job.data_chunk_size ?? taskChunkSize;
    if (!chunkSize) {
      options.onIssue({ taskId: task.id, jobId: job.id, severity: 'problem', message: `job ${job.id} has no chunk size` });
      continue;
    }
    const includedFrames = record.jobMetas.get(job.id)?.included_frames ?? undefined;
    jobs.push({
      id: job.id,
      taskId: task.id,
      type: job.type,
      startFrame: job.start_frame,
      stopFrame: job.stop_frame,
      frameCount: job.frame_count ?? job.stop_frame - job.start_frame + 1,
      chunkSize,
      state: job.state ?? 'new',
      ...(typeof job.parent_job_id === 'number' ? { parentJobId: job.parent_job_id } : {}),
      ...(includedFrames ? { includedFrames } : {}),
    });
  }
  if (jobs.length === 0 || !taskChunkSize) return undefined;
  const framesWithContext: number[] = [];
  // Audio has no context images (CVAT answers 400 for them: views.py `_DataGetter`).
  if (options.contextImages && meta?.frames && task.media_type !== 'audio') {
    meta.frames.forEach((frame, index) => {
      if ((frame.related_files ?? 0) > 0) framesWithContext.push(index);
    });
  }
  return {
    id: task.id,
    chunkSize: taskChunkSize,
    startFrame: meta?.start_frame ?? 0,
    frameStep: frameStep(meta?.frame_filter),
    ...(framesWithContext.length ? { framesWithContext } : {}),
    ...(meta?.deleted_frames.length ? { deletedFrames: meta.deleted_frames } : {}),
    jobs,
  };
}
