/**
 * A task's media from its spec: frame geometry (start/stop/step → size) and per-frame info
 * (names, sizes read from share files, context images given or found by CVAT's layout rules).
 */
import path from 'node:path';
import type { EmulatedTask } from './model.js';
import { relToAbs, type FrameGeometry } from './segments.js';
import { detectRelatedFiles, readImageSize } from './share.js';
import type { TaskSpec } from './spec.js';

export function fillMedia(task: EmulatedTask, spec: TaskSpec, shareDir: string | undefined): void {
  const g = task.geometry;
  if (task.mediaType === 'video' || task.mediaType === 'audio') {
    const videoPath = spec.video ?? (task.mediaType === 'audio' ? `audio/task_${task.id}.mp3` : `videos/task_${task.id}.mp4`);
    task.video = { path: videoPath, width: spec.frameWidth ?? 1280, height: spec.frameHeight ?? 720 };
    return;
  }
  const ext = task.mediaType === 'pointcloud' ? 'pcd' : 'jpg';
  const dir = task.mediaType === 'pointcloud' ? 'pointcloud' : 'images';
  const defaultWidth = spec.frameWidth ?? 1920;
  const defaultHeight = spec.frameHeight ?? 1080;
  const related = spec.relatedFiles;
  if (related === 'detect' && task.storage !== 'share') throw new Error(`task ${task.id}: relatedFiles 'detect' needs share storage`);
  for (let rel = 0; rel < g.size; rel++) {
    const abs = relToAbs(g, rel);
    const name = spec.frames?.[abs] ?? `${dir}/frame_${String(abs).padStart(6, '0')}.${ext}`;
    let width = defaultWidth;
    let height = defaultHeight;
    if (task.storage === 'share' && shareDir && task.mediaType === 'image' && spec.frameWidth === undefined) {
      const size = readImageSize(path.join(shareDir, name));
      if (size) ({ width, height } = size);
    }
    let relatedPaths: string[] = [];
    let relatedCount = 0;
    if (related === 'detect' && shareDir) {
      relatedPaths = detectRelatedFiles(shareDir, name);
      relatedCount = relatedPaths.length;
    } else if (Array.isArray(related)) {
      const entry = related[rel];
      if (typeof entry === 'number') relatedCount = entry;
      else if (Array.isArray(entry)) {
        relatedPaths = [...entry];
        relatedCount = entry.length;
      }
    }
    task.frames.push({ name, width, height, relatedPaths, related: relatedCount });
  }
}

export function resolveGeometry(id: number, spec: TaskSpec): FrameGeometry {
  const start = spec.startFrame ?? 0;
  const step = spec.frameStep ?? 1;
  if (!Number.isInteger(start) || start < 0) throw new Error(`task ${id}: startFrame must be a non-negative integer`);
  if (!Number.isInteger(step) || step < 1) throw new Error(`task ${id}: frameStep must be a positive integer`);
  let size: number;
  if (spec.frames) {
    const last = Math.min(spec.stopFrame ?? spec.frames.length - 1, spec.frames.length - 1);
    size = last < start ? 0 : Math.floor((last - start) / step) + 1;
    if (spec.size !== undefined && spec.size !== size) {
      throw new Error(`task ${id}: size ${spec.size} does not match the ${size} task frames selected from frames[]`);
    }
  } else if (spec.size !== undefined) {
    size = spec.size;
    if (spec.stopFrame !== undefined) size = Math.min(size, Math.floor((spec.stopFrame - start) / step) + 1);
  } else if (spec.stopFrame !== undefined) {
    size = Math.floor((spec.stopFrame - start) / step) + 1;
  } else {
    throw new Error(`task ${id}: give size, frames or stopFrame (or noData: true)`);
  }
  if (!Number.isInteger(size) || size < 1) throw new Error(`task ${id}: a task with data needs at least one frame`);
  return { start, stop: start + (size - 1) * step, step, size };
}
