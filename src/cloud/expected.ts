/**
 * What a cloud-storage task reads from its bucket, from CVAT's API alone: data meta says
 * `storage: "cloud_storage"` and `cloud_storage_id` (CVAT ≥ 2.44); each `frames[].name` is an
 * object key; a frame with `related_files: n` reads n context images from the directory CVAT's
 * layout rules give (`utils/dataset_manifest/utils.py` `_detect_related_images_2D/_3D`; their
 * names are not in the API, so the expectation is "that directory holds at least n objects").
 * Every frame is mapped to the jobs and job chunks that read it, so a problem names them.
 */
import path from 'node:path';
import type { TaskRecord } from '../cvat/inventory.js';

export interface FrameUse {
  jobId: number;
  /** Job chunk index (CVAT ≥ 2.20 numbering: position in the job's frames / chunk size). */
  chunk: number;
}

/** One object a task needs, and who reads it. */
export interface ExpectedObject {
  key: string;
  /** Relative task frame. */
  frame: number;
  uses: FrameUse[];
}

/** A context-image directory: `minObjects` objects are expected in it (their names are not in the API). */
export interface ExpectedRelatedDir {
  /** Directory key, ending in "/". */
  dir: string;
  minObjects: number;
  frame: number;
  uses: FrameUse[];
}

export interface CloudTaskExpectation {
  taskId: number;
  taskName?: string;
  storageId: number;
  objects: ExpectedObject[];
  related: ExpectedRelatedDir[];
}

/** The directory key of an object key ("" for the bucket root), ending in "/". */
export function directoryOf(key: string): string {
  const slash = key.lastIndexOf('/');
  return slash < 0 ? '' : key.slice(0, slash + 1);
}

/** CVAT's context-image directory of a frame (2D `dir/related_images/img_png/`; Supervisely 3D `…/related_images/X_pcd/` beside `pointcloud/`). */
export function relatedDirOf(key: string): string {
  const dir = directoryOf(key);
  const underscored = path.posix.basename(key).replace(/\./g, '_');
  if (key.toLowerCase().endsWith('.pcd') && dir.endsWith('pointcloud/')) {
    return `${dir.slice(0, -'pointcloud/'.length)}related_images/${underscored}/`;
  }
  return `${dir}related_images/${underscored}/`;
}

/** The expectation of a cloud task, or undefined for any other task (or one whose storage is unknown). */
export function cloudExpectation(record: TaskRecord): CloudTaskExpectation | undefined {
  const meta = record.meta;
  if (meta?.storage !== 'cloud_storage') return undefined;
  const storageId = meta.cloud_storage_id ?? record.task.data_cloud_storage_id;
  if (typeof storageId !== 'number') return undefined; // detached (409): warming reports it
  const frames = meta.frames ?? [];
  const chunkSize = meta.chunk_size ?? record.task.data_chunk_size ?? 0;
  const uses = new Map<number, FrameUse[]>();
  for (const job of record.jobs) {
    if (job.type === 'consensus_replica') continue; // reads its parent's segment
    const size = job.data_chunk_size ?? chunkSize;
    if (size <= 0) continue;
    const included = record.jobMetas.get(job.id)?.included_frames;
    const jobFrames: number[] = [];
    if (included) {
      // SPECIFIC_FRAMES: absolute data frames → relative task frames.
      const step = frameStepOf(meta.frame_filter);
      for (const abs of included) jobFrames.push(Math.round((abs - meta.start_frame) / step));
    } else for (let f = job.start_frame; f <= job.stop_frame; f++) jobFrames.push(f);
    jobFrames.forEach((frame, position) => {
      const list = uses.get(frame) ?? [];
      list.push({ jobId: job.id, chunk: Math.floor(position / size) });
      uses.set(frame, list);
    });
  }
  const objects: ExpectedObject[] = [];
  const related: ExpectedRelatedDir[] = [];
  frames.forEach((f, frame) => {
    if (record.task.media_type === 'video') return;
    const frameUses = uses.get(frame) ?? [];
    objects.push({ key: f.name, frame, uses: frameUses });
    if ((f.related_files ?? 0) > 0) related.push({ dir: relatedDirOf(f.name), minObjects: f.related_files ?? 0, frame, uses: frameUses });
  });
  return {
    taskId: record.task.id,
    ...(record.task.name !== undefined ? { taskName: record.task.name } : {}),
    storageId,
    objects,
    related,
  };
}

function frameStepOf(filter: string | undefined): number {
  const m = /step\s*=\s*(\d+)/.exec(filter ?? '');
  const step = m ? Number(m[1]) : 1;
  return step > 0 ? step : 1;
}
