/**
 * Turns what the CVAT client read (task, jobs, task meta, GT job metas) into the
 * guard's input. Which tasks read the share at chunk time: `storage == "share"` from
 * data/meta on CVAT ≥ 2.44; before that the API cannot tell, so tasks named in
 * --share-tasks count as share tasks and the rest as 'unknown' (guarded only when
 * their frame names resolve under the share root).
 */
import type { CvatFeatures } from '../cvat/features.js';
import type { TaskRecord } from '../cvat/inventory.js';
import type { GuardTask } from './types.js';

export function toGuardTask(record: TaskRecord, features: CvatFeatures, shareTasks: ReadonlySet<number>): GuardTask | undefined {
  const { task, meta } = record;
  if (!meta) return undefined;
  const storage: GuardTask['storage'] = shareTasks.has(task.id) ? 'share' : features.storageInMeta ? (meta.storage ?? 'local') : 'unknown';
  const chunkType = (task as { data_original_chunk_type?: unknown }).data_original_chunk_type;
  // Video and audio tasks read one source file for every frame.
  const singleFile = chunkType === 'video' || chunkType === 'audio_mp3' || task.media_type === 'audio';
  const isVideo = singleFile || (task.media_type === 'video' && (meta.frames?.length ?? 0) <= 1);
  const taskChunkSize = task.data_chunk_size ?? meta.chunk_size ?? 1;
  return {
    taskId: task.id,
    ...(task.name !== undefined ? { taskName: task.name } : {}),
    storage,
    isVideo,
    ...(task.dimension ? { dimension: task.dimension } : {}),
    meta,
    chunkExpiry: features.chunkExpiry,
    jobs: record.jobs.map((job) => ({
      id: job.id,
      type: job.type,
      startFrame: job.start_frame,
      stopFrame: job.stop_frame,
      includedFrames: record.jobMetas.get(job.id)?.included_frames ?? null,
      chunkSize: job.data_chunk_size ?? taskChunkSize,
      ...(job.state !== undefined ? { state: job.state } : {}),
      ...(typeof job.parent_job_id === 'number' ? { parentJobId: job.parent_job_id } : {}),
    })),
  };
}

/**
 * The guard's input for a task on cloud storage (data meta `storage: "cloud_storage"`, CVAT ≥ 2.44),
 * or undefined for any other task. The storage id comes from data meta (`cloud_storage_id`) or,
 * where meta lacks it, the task's `data_cloud_storage_id`; a task with neither is detached.
 */
export function cloudGuardTask(record: TaskRecord, features: CvatFeatures): GuardTask | undefined {
  if (record.meta?.storage !== 'cloud_storage') return undefined;
  const task = toGuardTask(record, features, new Set());
  if (!task) return undefined;
  const storageId = record.meta.cloud_storage_id ?? record.task.data_cloud_storage_id ?? null;
  return { ...task, storage: 'cloud_storage', meta: { ...task.meta, cloud_storage_id: storageId } };
}
