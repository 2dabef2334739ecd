/**
 * CVAT's media-cache key names and lifetimes, as CVAT writes them (read in CVAT's source,
 * never guessed):
 *
 * 2.73.0 (`cvat/apps/engine/cache.py` at 7972cb4f2ad8, `MediaCache`):
 * - `_make_chunk_key`: `{prefix}_chunk_{chunk_number}_{quality}` with prefix `segment_{id}`,
 *   `task_{id}` or `job_{id}` (`_make_cache_key_prefix`) — the UI reads `segment_{seg}_chunk_{i}_{q}`;
 * - `_make_segment_task_chunk_key`: `segment_{id}_task_chunk_{n}_{q}`;
 * - `_make_preview_key`: `segment_{id}_preview` (a task's preview is the preview of the segment
 *   holding frame 0: `media_io/frame_provider.py` `TaskFrameProvider.get_preview_image`);
 * - `_make_frame_context_images_chunk_key`: `context_images_{data_id}_{frame}`;
 * - quality is `models.FrameQuality`, an IntEnum (COMPRESSED = 0, ORIGINAL = 100, `models.py`),
 *   which an f-string renders as its value on CVAT's Python (3.12).
 * - `_create_and_set_cache_item` calls `cache.set(key, item, timeout=ttl or default_timeout)`
 *   once; `_get_cache_item` only `get`s: a read never extends the expiry, so `PTTL` is exact.
 * - `cvat/settings/base.py`: `CACHES["media"]` is Django's `RedisCache` on
 *   `redis://:<CVAT_REDIS_ONDISK_PASSWORD>@<host>:<port, default 6666>` with
 *   `TIMEOUT: CVAT_CHUNK_CACHE_TTL` (`3600 * 24`) and no `KEY_PREFIX`/`VERSION`, so Django's
 *   `make_key` stores `:1:<key>`; previews use `CVAT_PREVIEW_CACHE_TTL` (`3600 * 24 * 7`).
 *
 * 2.14.4 (`cvat/apps/engine/cache.py` at opencv/cvat v2.14.4, `MediaCache`): task chunks
 * `{data_id}_{chunk_number}_{quality}`, ground-truth job chunks `job_{job_id}_{chunk_number}_{quality}`,
 * previews `data_{data_id}_{frame}_preview`, context images `context_image_{data_id}_{frame}`;
 * quality is the plain Enum `FrameProvider.Quality`, rendered `Quality.COMPRESSED` /
 * `Quality.ORIGINAL`; `CACHES["media"]["TIMEOUT"] = 3600 * 24` (`settings/base.py`), set once by
 * `self._cache.set(key, item)`.
 *
 * Values are pickles (`(BytesIO, mime, crc32[, datetime])`): the warden never reads a value,
 * only the key's existence, `PTTL` and `STRLEN`.
 */
import type { Quality } from '../domain.js';

/** Django's `make_key` with CACHES["media"] as CVAT sets it: key_prefix '' and version 1. */
export const DJANGO_KEY_PREFIX = ':1:';
/** CVAT_CHUNK_CACHE_TTL (2.73 `settings/base.py`; the same `3600 * 24` literal in 2.14). */
export const CHUNK_TTL_MS = 24 * 3_600_000;
/** CVAT_PREVIEW_CACHE_TTL (2.73; 2.14 previews live as long as chunks). */
export const PREVIEW_TTL_MS = 7 * 24 * 3_600_000;

/** Which key scheme the deployment writes: 2.20+ (segment keys) or 2.10.1–2.19 (data keys). */
export type KeyScheme = 'segment' | 'data';

export function keySchemeFor(indexChunks: boolean): KeyScheme {
  return indexChunks ? 'segment' : 'data';
}

function qualityToken(quality: Quality, scheme: KeyScheme): string {
  if (scheme === 'data') return quality === 'compressed' ? 'Quality.COMPRESSED' : 'Quality.ORIGINAL';
  return quality === 'compressed' ? '0' : '100';
}

export const segmentChunkKey = (segmentId: number, index: number, quality: Quality): string =>
  `${DJANGO_KEY_PREFIX}segment_${segmentId}_chunk_${index}_${qualityToken(quality, 'segment')}`;
export const segmentPreviewKey = (segmentId: number): string => `${DJANGO_KEY_PREFIX}segment_${segmentId}_preview`;
export const contextImagesKey = (dataId: number, frame: number): string => `${DJANGO_KEY_PREFIX}context_images_${dataId}_${frame}`;
export const legacyTaskChunkKey = (dataId: number, n: number, quality: Quality): string =>
  `${DJANGO_KEY_PREFIX}${dataId}_${n}_${qualityToken(quality, 'data')}`;
export const legacyGtChunkKey = (jobId: number, n: number, quality: Quality): string =>
  `${DJANGO_KEY_PREFIX}job_${jobId}_${n}_${qualityToken(quality, 'data')}`;
export const legacyContextKey = (dataId: number, frame: number): string => `${DJANGO_KEY_PREFIX}context_image_${dataId}_${frame}`;

/** What the database says about one job: its segment and its task's data. */
export interface JobSegment {
  jobId: number;
  segmentId: number;
  taskId: number;
  dataId: number | null;
  /** Segment type (`range` or `specific_frames`) and frame range (task-relative). */
  segmentType: string;
  startFrame: number;
  stopFrame: number;
}

/** The parts of a warm request a key is derived from (structurally a WarmRequest). */
export interface KeyedRequest {
  kind: 'chunk' | 'context_image' | 'job_preview' | 'task_preview';
  taskId: number;
  jobId: number;
  quality: Quality;
  slot: number;
}

export interface SegmentMap {
  job(jobId: number): JobSegment | undefined;
  /** The segment holding the task's frame 0 (its preview is the task's). */
  previewSegmentOf(taskId: number): number | undefined;
}

/**
 * The cache key CVAT stores a request's answer under, or undefined when it cannot be known
 * (job not in the database yet, a preview on the 2.14 scheme): the caller then keeps
 * inferring for that request, as in shallow mode.
 */
export function cacheKeyOf(request: KeyedRequest, segments: SegmentMap, scheme: KeyScheme): string | undefined {
  const job = segments.job(request.jobId);
  if (!job) return undefined;
  if (scheme === 'segment') {
    switch (request.kind) {
      case 'chunk':
        return segmentChunkKey(job.segmentId, request.slot, request.quality);
      case 'context_image':
        return job.dataId === null ? undefined : contextImagesKey(job.dataId, request.slot);
      case 'job_preview':
        return segmentPreviewKey(job.segmentId);
      case 'task_preview': {
        const seg = segments.previewSegmentOf(request.taskId);
        return seg === undefined ? undefined : segmentPreviewKey(seg);
      }
    }
  }
  switch (request.kind) {
    case 'chunk':
      if (job.segmentType === 'specific_frames') return legacyGtChunkKey(job.jobId, request.slot, request.quality);
      return job.dataId === null ? undefined : legacyTaskChunkKey(job.dataId, request.slot, request.quality);
    case 'context_image':
      return job.dataId === null ? undefined : legacyContextKey(job.dataId, request.slot);
    default:
      return undefined; // 2.14 previews are per data frame; not mapped
  }
}

/** How long CVAT keeps what a request builds. */
export function ttlOf(kind: KeyedRequest['kind'], scheme: KeyScheme): number {
  return scheme === 'segment' && (kind === 'job_preview' || kind === 'task_preview') ? PREVIEW_TTL_MS : CHUNK_TTL_MS;
}

/** Owner of a key found by SCAN, for the per-task byte gauge: segment or data id, by scheme. */
export type KeyOwner = { by: 'segment'; id: number } | { by: 'task'; id: number } | { by: 'data'; id: number } | { by: 'job'; id: number };

const SEGMENT_KEY = /^:1:segment_(\d+)_/;
const TASK_KEY = /^:1:task_(\d+)_chunk_/;
const JOB_KEY = /^:1:job_(\d+)_/;
const CONTEXT_KEY = /^:1:context_images?_(\d+)_\d+$/;
const LEGACY_DATA_KEY = /^:1:(?:data_)?(\d+)_\d+_(?:Quality\.\w+|preview)$/;

/** Which CVAT object a media-cache key belongs to; undefined for keys of other kinds (cloud previews, foreign keys). */
export function ownerOfKey(key: string): KeyOwner | undefined {
  let m = SEGMENT_KEY.exec(key);
  if (m) return { by: 'segment', id: Number(m[1]) };
  if ((m = TASK_KEY.exec(key))) return { by: 'task', id: Number(m[1]) };
  if ((m = JOB_KEY.exec(key))) return { by: 'job', id: Number(m[1]) };
  if ((m = CONTEXT_KEY.exec(key))) return { by: 'data', id: Number(m[1]) };
  if ((m = LEGACY_DATA_KEY.exec(key))) return { by: 'data', id: Number(m[1]) };
  return undefined;
}

/** Keys 2.20+ writes (`segment_…`, `task_…_chunk_…`, `job_…_chunk_…`, `context_images_…`), quality as 0/100. */
const SEGMENT_SCHEME_KEY =
  /^:1:(?:segment_\d+_(?:chunk_\d+_(?:0|100)|task_chunk_\d+_(?:0|100)|preview)|(?:task|job)_\d+_chunk_\d+_(?:0|100)|context_images_\d+_\d+)$/;
/** Keys 2.10.1–2.19 writes (`{data}_{n}_Quality.X`, `job_{j}_{n}_Quality.X`, `data_…_preview`, `context_image_…`). */
const DATA_SCHEME_KEY = /^:1:(?:(?:job_)?\d+_\d+_Quality\.(?:COMPRESSED|ORIGINAL)|data_\d+_\d+_preview|context_image_\d+_\d+)$/;

/** Which CVAT version's scheme a media-cache key is in (doctor's "key format matches"); undefined: not a chunk/preview key. */
export function schemeOfKey(key: string): KeyScheme | undefined {
  if (SEGMENT_SCHEME_KEY.test(key)) return 'segment';
  if (DATA_SCHEME_KEY.test(key)) return 'data';
  return undefined;
}
