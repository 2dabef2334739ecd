/**
 * Cloud-storage tasks in the guard's index. A task on cloud storage (data meta `storage:
 * "cloud_storage"`, `cloud_storage_id`, CVAT ≥ 2.44: `DataMetaReadSerializer` in
 * cvat/apps/engine/serializers.py of 2.73; `Data.cloud_storage` is SET_NULL in models.py, so a
 * task whose storage was deleted keeps `storage` with a null id) reads each `frames[].name` as an object key
 * of that storage, and `related_files: n` context images from the directory CVAT's layout rules
 * give (src/cloud/expected.ts `relatedDirOf`). The index holds them like share files, under a
 * path `<storageId>/<key>`; a context-image directory is one slot whose path is the directory
 * key itself (`<storageId>/<dir>/`, ending in "/", role `related`): "that directory holds at
 * least n objects" (their names are not in the API). Jobs and chunks come from the same
 * mapping as the share's (core/mapping.ts), so a problem names them the same way.
 */
import { relatedDirOf } from '../../cloud/expected.js';
import { compileTask } from '../core/mapping.js';
import type { DirRecord, ShareIndex } from '../core/share-index.js';
import type { FileTracker } from '../core/tracker.js';
import type { GuardTask } from '../types.js';
import { taskSignature } from './task-files.js';

/** The index path of an object (or context-image directory key) of a storage. */
export function cloudPath(storageId: number, key: string): string {
  return `${storageId}/${key}`;
}

/** An index path back to its storage and key. */
export function cloudKeyOf(path: string): { storageId: number; key: string } {
  const slash = path.indexOf('/');
  return { storageId: Number(path.slice(0, slash)), key: path.slice(slash + 1) };
}

/** The storage and listing prefix ("" or ending in "/") an index directory stands for. */
export function listingOf(dirRel: string): { storageId: number; prefix: string } {
  const slash = dirRel.indexOf('/');
  if (slash < 0) return { storageId: Number(dirRel), prefix: '' };
  return { storageId: Number(dirRel.slice(0, slash)), prefix: `${dirRel.slice(slash + 1)}/` };
}

/** The storage a task reads, or why it is not a cloud task the guard can follow. */
export function storageOf(task: GuardTask): { storageId: number } | { skipped: string } {
  if (task.storage !== 'cloud_storage') return { skipped: `storage is ${task.storage}` };
  const id = task.meta.cloud_storage_id;
  // Detached (CVAT answers its chunks 409): warming reports it, there is no bucket to list.
  if (typeof id !== 'number') return { skipped: 'not connected to a cloud storage' };
  return { storageId: id };
}

export interface CloudTaskSet {
  index: ShareIndex;
  tracker: FileTracker;
  /** taskId → why it is not guarded. */
  skipped: Map<number, string>;
  /** Context-image slot → objects expected in its directory (the largest any task asks). */
  minObjects: Map<number, number>;
}

/** Applies removals and upserts; returns the new slots and the directories that lost their last one. */
export function applyCloudTasks(set: CloudTaskSet, remove: readonly number[], upsert: readonly GuardTask[]): { created: number[]; emptied: DirRecord[] } {
  const { index, tracker, skipped, minObjects } = set;
  const created: number[] = [];
  const emptied: DirRecord[] = [];
  const drop = (taskId: number) => {
    for (const dir of index.removeTask(taskId, (f) => (tracker.forgetFile(f), minObjects.delete(f)))) emptied.push(dir);
    tracker.forgetTask(taskId);
  };
  for (const taskId of remove) {
    drop(taskId);
    skipped.delete(taskId);
  }
  for (const task of upsert) {
    const storage = storageOf(task);
    const existing = index.tasks.get(task.taskId);
    if ('skipped' in storage) {
      if (existing) drop(task.taskId);
      skipped.set(task.taskId, storage.skipped);
      continue;
    }
    skipped.delete(task.taskId);
    const signature = `${storage.storageId}|${taskSignature(task)}`;
    if (existing?.signature === signature) {
      existing.mapping = compileTask(task);
      continue;
    }
    if (existing) drop(task.taskId);
    created.push(...indexTask(set, task, storage.storageId, signature));
    tracker.recountTask(task.taskId);
  }
  return { created, emptied };
}

function indexTask(set: CloudTaskSet, task: GuardTask, storageId: number, signature: string): number[] {
  const { index, minObjects } = set;
  const created: number[] = [];
  const fileIds: number[] = [];
  const frames: number[] = [];
  const add = (key: string, frame: number, role: 'frame' | 'related') => {
    const ref = index.addRef(cloudPath(storageId, key), task.taskId, frame, role);
    if (ref.created) created.push(ref.f);
    fileIds.push(ref.f);
    frames.push(frame);
    return ref.f;
  };
  // Video tasks: CVAT's API names no object per frame (the manifest is not readable through it).
  const list = task.isVideo ? [] : (task.meta.frames ?? []);
  list.forEach((frame, i) => {
    add(frame.name, i, 'frame');
    const n = frame.related_files ?? 0;
    if (n > 0) {
      const f = add(relatedDirOf(frame.name), i, 'related');
      minObjects.set(f, Math.max(n, minObjects.get(f) ?? 0));
    }
  });
  index.tasks.set(task.taskId, {
    mapping: compileTask(task),
    signature,
    fileIds: Int32Array.from(fileIds),
    frames: Int32Array.from(frames),
    distinctFiles: new Set(fileIds).size,
    rejected: [],
    warnings: [],
  });
  return created;
}
