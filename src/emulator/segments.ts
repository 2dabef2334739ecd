/**
 * CVAT's frame arithmetic, re-implemented from its source (cvat-facts.md §1.3) and kept
 * independent of the warden's planner so the emulator can check the planner.
 *
 * Vocabulary: ABSOLUTE (data) frames are numbers in the source (`Data.start_frame`,
 * `stop_frame`, step from `frame_filter`); RELATIVE (task) frames are 0-based,
 * `rel = (abs - start) / step`. Segment start/stop are relative; frame sets are absolute.
 */
import type { MediaType, TaskMode } from './spec.js';

export interface FrameGeometry {
  /** First absolute data frame. */
  start: number;
  /** Last absolute data frame actually used (start + (size-1)·step). */
  stop: number;
  step: number;
  /** Number of task frames. */
  size: number;
}

export interface SegmentRange {
  /** Relative task frames, inclusive. */
  startFrame: number;
  stopFrame: number;
}

export interface SegmentPlan {
  segments: SegmentRange[];
  /** The overlap CVAT applied (after defaults and the segment_size // 2 cap). */
  overlap: number;
}

/** CVAT's default overlap: 5 in interpolation mode (videos), 0 otherwise. */
export function defaultOverlap(mode: TaskMode): number {
  return mode === 'interpolation' ? 5 : 0;
}

/**
 * `_generate_segment_params` (cvat/apps/engine/task.py): segment_size 0 (or larger than the task)
 * means one segment; overlap is capped at segment_size // 2; starts are
 * `range(0, size - overlap, segment_size - overlap)`, stop = min(start + segment_size - 1, size - 1).
 */
export function generateSegmentParams(size: number, segmentSize: number, overlap: number | undefined, mode: TaskMode): SegmentPlan {
  if (size <= 0) return { segments: [], overlap: 0 };
  const effectiveSize = segmentSize <= 0 || segmentSize > size ? size : segmentSize;
  const effectiveOverlap = Math.min(overlap ?? defaultOverlap(mode), Math.floor(effectiveSize / 2));
  const step = effectiveSize - effectiveOverlap;
  const segments: SegmentRange[] = [];
  for (let start = 0; start < size - effectiveOverlap; start += step) {
    segments.push({ startFrame: start, stopFrame: Math.min(start + effectiveSize - 1, size - 1) });
  }
  return { segments, overlap: effectiveOverlap };
}

export function relToAbs(g: FrameGeometry, rel: number): number {
  return g.start + rel * g.step;
}

/** Relative task frame of an absolute data frame, or null when the frame is not a task frame. */
export function absToRel(g: FrameGeometry, abs: number): number | null {
  const offset = abs - g.start;
  if (offset < 0 || offset % g.step !== 0) return null;
  const rel = offset / g.step;
  return rel < g.size ? rel : null;
}

/** `Segment.frame_set` of a RANGE segment: absolute frames, ascending. */
export function rangeFrameSet(g: FrameGeometry, seg: SegmentRange): number[] {
  const out: number[] = [];
  const last = Math.min(relToAbs(g, seg.stopFrame), g.stop);
  for (let abs = relToAbs(g, seg.startFrame); abs <= last; abs += g.step) out.push(abs);
  return out;
}

export function chunkCount(frameCount: number, chunkSize: number): number {
  return frameCount <= 0 ? 0 : Math.ceil(frameCount / chunkSize);
}

/** Job chunk `index` i = sorted(frame_set)[i·cs : (i+1)·cs] (2.20+). */
export function jobChunkFrames(frameSet: readonly number[], index: number, chunkSize: number): number[] {
  return frameSet.slice(index * chunkSize, (index + 1) * chunkSize);
}

/** Task chunk N = task frames [N·cs, (N+1)·cs - 1], as absolute frames (capped at the task's end). */
export function taskChunkFrames(g: FrameGeometry, n: number, chunkSize: number): number[] {
  const out: number[] = [];
  const lastRel = Math.min((n + 1) * chunkSize - 1, g.size - 1);
  for (let rel = n * chunkSize; rel <= lastRel; rel++) out.push(relToAbs(g, rel));
  return out;
}

/** Task chunk number of a relative frame (2.0–2.19 numbering, and the legacy `number` parameter). */
export function taskChunkOf(rel: number, chunkSize: number): number {
  return Math.floor(rel / chunkSize);
}

/** CVAT's default chunk size (task.py): images `max(2, min(72, 36·1920·1080 // (w·h)))`, otherwise 36. */
export function defaultChunkSize(mediaType: MediaType, width: number, height: number): number {
  if (mediaType !== 'image') return 36;
  const area = Math.max(1, width * height);
  return Math.max(2, Math.min(72, Math.floor((36 * 1920 * 1080) / area)));
}
