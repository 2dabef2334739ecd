/**
 * What each cache item is made of and how a worker builds it. Share-backed tasks open
 * their source files (frames, the video, related images) under the share at build time:
 * a missing file makes the build fail (CVAT: FileNotFoundError in the RQ job → generic
 * 500, nothing cached). Local tasks need no files.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { BuildSpec, MediaCache } from './cache.js';
import { HttpError } from './http.js';
import type { BodyDescriptor } from './content.js';
import type { EmulatorFeatures } from './features.js';
import {
  contextImagesKey,
  legacyChunkKey,
  legacyContextKey,
  legacyGtChunkKey,
  legacyPreviewKey,
  segmentChunkKey,
  segmentPreviewKey,
  segmentTaskChunkKey,
  taskChunkKey,
  type Quality,
} from './keys.js';
import type { Deployment, EmulatedJob, EmulatedSegment, EmulatedTask } from './model.js';
import { absToRel, jobChunkFrames, taskChunkFrames } from './segments.js';
import { resolveInShare } from './share.js';
import { workerWithoutShareError } from './worker-mount.js';
import type { CloudStorages } from './cloud.js';

export interface BuildContext {
  deployment: Deployment;
  /** Buckets of cloud-storage tasks (cloud.ts); absent = no cloud storages configured. */
  cloud?: CloudStorages;
  cache: MediaCache;
  features: EmulatorFeatures;
  shareDir: string | undefined;
  ttlMs: number;
  previewTtlMs: number;
  buildTimeMs: number;
  chunkBytes: number;
  /** The chunk worker has no share mount (worker-mount.ts): every share file read fails. */
  workerWithoutShare?: boolean;
}

const buildTime = (bc: BuildContext, task: EmulatedTask): number => task.buildTimeMs ?? bc.buildTimeMs;
const bytesOf = (bc: BuildContext, task: EmulatedTask): number => task.chunkBytes ?? bc.chunkBytes;

/** Opens each share file (stat + first 4 KiB) and returns `name:size:crc` fingerprints; throws like Python on a missing file. */
async function readSources(bc: BuildContext, names: readonly string[]): Promise<string[]> {
  const shareDir = bc.shareDir;
  if (!shareDir) throw new Error('no share configured');
  const first = names[0];
  if (bc.workerWithoutShare && first !== undefined) throw workerWithoutShareError(first);
  const out: string[] = [];
  for (const name of new Set(names)) {
    const abs = resolveInShare(shareDir, name);
    if (!abs) throw new Error(`FileNotFoundError: [Errno 2] No such file or directory: '${name}'`);
    let handle: fs.promises.FileHandle | undefined;
    try {
      handle = await fs.promises.open(abs, 'r');
      const stat = await handle.stat();
      if (!stat.isFile()) throw new Error(`IsADirectoryError: '${name}'`);
      const head = Buffer.alloc(Math.min(4096, stat.size));
      await handle.read(head, 0, head.length, 0);
      out.push(`${name}:${stat.size}:${zlib.crc32(head)}`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new Error(`FileNotFoundError: [Errno 2] No such file or directory: '/home/django/share/${name}'`, { cause: error });
      throw error;
    } finally {
      await handle?.close();
    }
  }
  return out;
}

/**
 * The sources a build opens: share files, cloud objects (each failure answers as CVAT's
 * `validate_*_status` wrappers make it, see cloud.ts), or nothing for local tasks.
 */
async function sourcesOf(bc: BuildContext, task: EmulatedTask, names: readonly string[]): Promise<string[]> {
  if (task.storage === 'share') return readSources(bc, names);
  if (task.storage !== 'cloud_storage') return [];
  const out: string[] = [];
  // The worker downloads the chunk's objects in turn: the first failure ends the build.
  for (const key of new Set(names)) {
    if (!bc.cloud) throw new HttpError(409, 'Task is not connected to cloud storage');
    out.push(await bc.cloud.readObject(task.cloudStorageId, key));
  }
  return out;
}

/** Source files of the given absolute frames (the video file for video tasks). */
function sourceNames(task: EmulatedTask, frames: readonly number[]): string[] {
  if (task.video) return [task.video.path];
  const names: string[] = [];
  for (const abs of frames) {
    const rel = absToRel(task.geometry, abs);
    const f = rel === null ? undefined : task.frames[rel];
    if (f) names.push(f.name);
  }
  return names;
}

function entryName(task: EmulatedTask, abs: number, placeholder: boolean): string {
  const ext = task.mediaType === 'pointcloud' ? '.pcd' : task.frames[0] ? path.extname(task.frames[0].name) || '.jpg' : '.jpg';
  return placeholder ? `placeholder_${String(abs).padStart(6, '0')}.jpg` : `${String(abs).padStart(6, '0')}${ext}`;
}

function describe(key: string, version: number, frames: readonly number[], sources: readonly string[]): string {
  return ['cvat-warden CVAT emulator', `key: ${key}`, `version: ${version}`, `frames: ${frames.join(',')}`, `sources: ${sources.join(';')}`, ''].join('\n');
}

/** A chunk of the given frames; `placeholders` are frames shown as placeholders (masked GT chunks). */
function chunkSpec(
  bc: BuildContext,
  task: EmulatedTask,
  key: string,
  frames: readonly number[],
  version: number,
  q: Quality,
  placeholders: ReadonlySet<number> = new Set(),
  before?: () => Promise<void>,
): BuildSpec {
  return {
    key,
    ttlMs: bc.ttlMs,
    buildTimeMs: buildTime(bc, task),
    produce: async () => {
      if (before) await before();
      const real = frames.filter((f) => !placeholders.has(f));
      const sources = await sourcesOf(bc, task, sourceNames(task, real));
      const bytes = q === 'original' ? bytesOf(bc, task) * 2 : bytesOf(bc, task);
      const body: BodyDescriptor = task.video
        ? { format: 'mp4', bytes, descriptor: describe(key, version, frames, sources), entries: [] }
        : {
            format: 'zip',
            bytes,
            descriptor: describe(key, version, frames, sources),
            entries: frames.map((f) => entryName(task, f, placeholders.has(f))),
          };
      return { body };
    },
  };
}

/** 2.20+: job chunk `index`. */
export function segmentChunkSpec(bc: BuildContext, task: EmulatedTask, seg: EmulatedSegment, index: number, q: Quality): BuildSpec {
  const frames = jobChunkFrames(seg.frameSet, index, task.chunkSize);
  return chunkSpec(bc, task, segmentChunkKey(seg.id, index, q), frames, seg.chunksUpdatedMs, q);
}

/** 2.20+: legacy `number` on the job endpoint: task chunk N trimmed to the segment, read from the sources. */
export function segmentTaskChunkSpec(bc: BuildContext, task: EmulatedTask, seg: EmulatedSegment, n: number, q: Quality): BuildSpec {
  const chunk = taskChunkFrames(task.geometry, n, task.chunkSize);
  const inSegment = new Set(seg.frameSet);
  const frames = seg.type === 'specific_frames' ? chunk : chunk.filter((f) => inSegment.has(f));
  const placeholders = seg.type === 'specific_frames' ? new Set(chunk.filter((f) => !inSegment.has(f))) : new Set<number>();
  return chunkSpec(bc, task, segmentTaskChunkKey(seg.id, n, q), frames, seg.chunksUpdatedMs, q, placeholders);
}

/**
 * 2.20+: task chunk N (`task_{id}_chunk_{N}_{q}`), assembled from segment chunks: the build first
 * builds (inline, in the same worker, and caches) every segment chunk it needs that is not cached.
 */
export function taskChunkSpec(bc: BuildContext, task: EmulatedTask, n: number, q: Quality): BuildSpec {
  const frames = taskChunkFrames(task.geometry, n, task.chunkSize);
  const ranges = task.segments.filter((s) => s.type === 'range').sort((a, b) => a.startFrame - b.startFrame);
  const needed = new Map<string, { seg: EmulatedSegment; index: number }>();
  for (const abs of frames) {
    for (const seg of ranges) {
      const pos = seg.frameSet.indexOf(abs);
      if (pos < 0) continue;
      const index = Math.floor(pos / task.chunkSize);
      needed.set(segmentChunkKey(seg.id, index, q), { seg, index });
      break;
    }
  }
  const version = bc.deployment.taskChunksUpdatedMs(task);
  return chunkSpec(bc, task, taskChunkKey(task.id, n, q), frames, version, q, new Set(), async () => {
    for (const [key, { seg, index }] of needed) {
      if (!bc.cache.has(key)) await bc.cache.buildInline(segmentChunkSpec(bc, task, seg, index, q));
    }
  });
}

/** Preview of a segment (its first frame). */
export function previewSpec(bc: BuildContext, task: EmulatedTask, seg: EmulatedSegment, key = segmentPreviewKey(seg.id)): BuildSpec {
  const first = seg.frameSet[0] ?? task.geometry.start;
  return {
    key,
    ttlMs: bc.previewTtlMs,
    buildTimeMs: buildTime(bc, task),
    produce: async () => {
      const sources = await sourcesOf(bc, task, sourceNames(task, [first]));
      return { body: { format: 'jpeg', bytes: 4096, descriptor: describe(key, seg.chunksUpdatedMs, [first], sources), entries: [] } };
    },
  };
}

/** Context images of a task frame (`context_images_{data_id}_{frame}`); empty when the frame has none. */
export function contextSpec(bc: BuildContext, task: EmulatedTask, rel: number, key?: string): BuildSpec {
  const dataId = task.dataId ?? 0;
  const itemKey = key ?? (bc.features.legacy ? legacyContextKey(dataId, rel) : contextImagesKey(dataId, rel));
  const frame = task.frames[rel];
  return {
    key: itemKey,
    ttlMs: bc.ttlMs,
    buildTimeMs: buildTime(bc, task),
    produce: async () => {
      const paths = frame?.relatedPaths ?? [];
      const sources = paths.length ? await sourcesOf(bc, task, paths) : [];
      const names = paths.length ? paths.map((p) => path.posix.basename(p)) : Array.from({ length: frame?.related ?? 0 }, (_, k) => `related_${k}.jpg`);
      return {
        body: { format: 'zip', bytes: names.length * 2048, descriptor: describe(itemKey, 0, [rel], sources), entries: names },
        empty: names.length === 0,
      };
    },
  };
}

/** < 2.20: task chunk N (`{data_id}_{N}_Quality.X`) or, for a GT job, the masked `job_{id}_{N}_Quality.X`. */
export function legacyChunkSpec(bc: BuildContext, task: EmulatedTask, n: number, q: Quality, gtJob?: EmulatedJob): BuildSpec {
  const frames = taskChunkFrames(task.geometry, n, task.chunkSize);
  if (!gtJob) return chunkSpec(bc, task, legacyChunkKey(task.dataId ?? 0, n, q), frames, task.createdMs, q);
  const seg = bc.deployment.segmentOf(gtJob);
  const included = new Set(seg.frameSet);
  const placeholders = new Set(frames.filter((f) => !included.has(f)));
  return chunkSpec(bc, task, legacyGtChunkKey(gtJob.id, n, q), frames, seg.chunksUpdatedMs, q, placeholders);
}

export function legacyPreviewSpec(bc: BuildContext, task: EmulatedTask, seg: EmulatedSegment, rel: number): BuildSpec {
  return previewSpec(bc, task, seg, legacyPreviewKey(task.dataId ?? 0, rel));
}
