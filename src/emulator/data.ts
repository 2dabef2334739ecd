/**
 * `GET /api/{jobs,tasks}/{id}/data` and `/preview`: CVAT's parameter checks and error texts
 * (views.py `_DataGetter`, `_JobDataGetter`, frame_provider.py), which item a request needs
 * (2.20+ job index / legacy number / task chunk, and the pre-2.20 numbering); serve.ts
 * obtains and writes it.
 *
 * Error body forms follow DRF: a ValidationError raised before the getter's try block is a
 * JSON list (`["…"]`); one caught by `_DataGetter` is `Response(data=msg)`, a JSON string.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  contextSpec,
  legacyChunkSpec,
  legacyPreviewSpec,
  previewSpec,
  segmentChunkSpec,
  segmentTaskChunkSpec,
  taskChunkSpec,
  type BuildContext,
} from './builds.js';
import { HttpError, send, ServerError, validationList, validationText } from './http.js';
import type { Quality } from './keys.js';
import type { EmulatedJob, EmulatedTask } from './model.js';
import { chunkCount, relToAbs, taskChunkFrames, taskChunkOf } from './segments.js';
import { ItemServer, matchingJobChunk, segmentOfFrame } from './serve.js';
import type { EmulatorState } from './state.js';

export interface DataServiceOptions {
  serverWaitMs: number;
  retryAfterSeconds: number;
  /** Serve job-number / task chunks from a matching segment chunk (CVAT's intent; its `find_matching_chunk` never matches). */
  matchingChunkShortcut: boolean;
}

const TYPES = ['chunk', 'frame', 'preview', 'context_image'];

function toInt(raw: string | null): number | null {
  if (raw === null) return null;
  if (!/^\s*[-+]?\d+\s*$/.test(raw)) throw new ServerError(`ValueError: invalid literal for int() with base 10: '${raw}'`);
  return Number(raw);
}

export class DataService {
  readonly #bc: BuildContext;
  readonly #io: ItemServer;
  readonly #opts: DataServiceOptions;

  constructor(bc: BuildContext, state: EmulatorState, opts: DataServiceOptions) {
    this.#bc = bc;
    this.#io = new ItemServer(bc, state, opts);
    this.#opts = opts;
  }

  async job(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, task: EmulatedTask, job: EmulatedJob): Promise<void> {
    const seg = this.#bc.deployment.segmentOf(job);
    const type = query.get('type');
    const qualityRaw = query.get('quality') ?? 'compressed';
    if (!type || !TYPES.includes(type)) throw validationList('Data type not specified or has wrong value');
    if (this.#bc.features.legacy) return this.#legacyData(req, res, query, task, type, seg.startFrame, seg.stopFrame, job);
    const numberRaw = query.get('number');
    const indexRaw = query.get('index');
    if (type === 'chunk') {
      if (numberRaw === null && indexRaw === null) throw validationList('Number or Index is not specified');
      if (numberRaw !== null && indexRaw !== null) throw validationList('Number and Index cannot be used together');
    } else if (type === 'frame' || type === 'preview') {
      if (numberRaw === null && type !== 'preview') throw validationList('Number is not specified');
      else if (qualityRaw !== 'compressed' && qualityRaw !== 'original') throw validationList('Wrong quality value');
    }
    const index = toInt(indexRaw);
    const number = toInt(numberRaw);
    if (type === 'context_image' && number === null) throw new ServerError("TypeError: '<' not supported between instances of 'NoneType' and 'int'");
    const q: Quality = qualityRaw === 'compressed' ? 'compressed' : 'original';
    if (task.dataId === null) throw new ServerError('task has no data');

    if (type === 'chunk') {
      const range = this.#io.rangeHeader(req);
      if (index !== null) {
        const last = chunkCount(seg.frameSet.length, task.chunkSize) - 1;
        if (index < 0 || index > last) {
          throw validationList(`Invalid chunk number '${index}'. The chunk number should be in the [0, ${last}] range`);
        }
        const item = await this.#io.obtain(segmentChunkSpec(this.#bc, task, seg, index, q), seg.chunksUpdatedMs);
        this.#io.sendChunk(req, res, { item, updatedMs: seg.chunksUpdatedMs, ranged: range !== null });
        return;
      }
      const n = number as number;
      const first = taskChunkOf(seg.startFrame, task.chunkSize);
      const lastN = taskChunkOf(seg.stopFrame, task.chunkSize);
      if (n < first || n > lastN) {
        throw validationList(`Invalid chunk number '${n}'. The chunk number should be in the [${first}, ${lastN}] range`);
      }
      const matching = this.#opts.matchingChunkShortcut ? matchingJobChunk(task, seg, taskChunkFrames(task.geometry, n, task.chunkSize)) : null;
      const spec = matching !== null ? segmentChunkSpec(this.#bc, task, seg, matching, q) : segmentTaskChunkSpec(this.#bc, task, seg, n, q);
      const item = await this.#io.obtain(spec, seg.chunksUpdatedMs);
      this.#io.sendChunk(req, res, { item, updatedMs: seg.chunksUpdatedMs, ranged: range !== null });
      return;
    }
    if (type === 'preview') {
      this.#io.sendPlain(res, await this.#io.obtain(previewSpec(this.#bc, task, seg), seg.chunksUpdatedMs));
      return;
    }
    // views.py _DataGetter: audio has neither frames nor context images.
    if (task.mediaType === 'audio')
      throw validationText(
        type === 'context_image' ? 'Context image requests are not available for this data' : 'Frame requests are not available for this data',
      );
    const frame = number as number;
    const pos = seg.frameSet.indexOf(relToAbs(task.geometry, frame));
    if (pos < 0) throw validationText(`Incorrect requested frame number: ${frame}`);
    if (type === 'context_image') return this.#io.sendContext(res, contextSpec(this.#bc, task, frame));
    const chunkIndex = Math.floor(pos / task.chunkSize);
    await this.#io.obtain(segmentChunkSpec(this.#bc, task, seg, chunkIndex, q), seg.chunksUpdatedMs);
    this.#io.sendFrame(res, task, frame);
  }

  async task(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, task: EmulatedTask): Promise<void> {
    const type = query.get('type');
    const qualityRaw = query.get('quality') ?? 'compressed';
    const numberRaw = query.get('number');
    if (!type || !TYPES.includes(type)) throw validationList('Data type not specified or has wrong value');
    if (this.#bc.features.legacy) {
      if (task.dataId === null) throw new HttpError(404, { detail: 'Cannot find requested data' });
      return this.#legacyData(req, res, query, task, type, task.geometry.start, task.geometry.stop, undefined);
    }
    if (type === 'chunk' || type === 'frame' || type === 'preview') {
      if (numberRaw === null && type !== 'preview') throw validationList('Number is not specified');
      if (qualityRaw !== 'compressed' && qualityRaw !== 'original') throw validationList('Wrong quality value');
    }
    const number = toInt(numberRaw);
    const q: Quality = qualityRaw === 'compressed' ? 'compressed' : 'original';
    if (task.dataId === null) throw new ServerError("'NoneType' object has no attribute 'size'");
    if (type === 'context_image' && number === null) throw new ServerError("TypeError: '<=' not supported between instances of 'int' and 'NoneType'");
    const g = task.geometry;
    const updatedMs = this.#bc.deployment.taskChunksUpdatedMs(task);
    if (type === 'chunk') {
      const n = number as number;
      const last = chunkCount(g.size, task.chunkSize) - 1;
      if (n < 0 || n > last) throw validationText(`Invalid chunk number '${n}'. The chunk number should be in the [0, ${last}] range`);
      const range = this.#io.rangeHeader(req);
      const frames = taskChunkFrames(g, n, task.chunkSize);
      if (this.#opts.matchingChunkShortcut) {
        const owners = task.segments.filter((s) => s.type === 'range' && frames.some((f) => s.frameSet.includes(f)));
        const only = owners.length === 1 ? owners[0] : undefined;
        const idx = only ? matchingJobChunk(task, only, frames) : null;
        if (only && idx !== null) {
          const item = await this.#io.obtain(segmentChunkSpec(this.#bc, task, only, idx, q), only.chunksUpdatedMs);
          this.#io.sendChunk(req, res, { item, updatedMs: only.chunksUpdatedMs, ranged: range !== null });
          return;
        }
      }
      const item = await this.#io.obtain(taskChunkSpec(this.#bc, task, n, q), updatedMs);
      this.#io.sendChunk(req, res, { item, updatedMs, ranged: range !== null });
      return;
    }
    const seg0 = segmentOfFrame(task, 0);
    if (type === 'preview') {
      if (!seg0) throw new ServerError('no segment');
      this.#io.sendPlain(res, await this.#io.obtain(previewSpec(this.#bc, task, seg0), seg0.chunksUpdatedMs));
      return;
    }
    const frame = number ?? -1;
    if (frame < 0 || frame >= g.size) throw validationText(`Invalid frame '${frame}'. The frame number should be in the [0, ${g.size}] range`);
    const seg = segmentOfFrame(task, frame);
    if (!seg) throw new ServerError('no segment');
    if (type === 'context_image') return this.#io.sendContext(res, contextSpec(this.#bc, task, frame));
    const chunkIndex = Math.floor(seg.frameSet.indexOf(relToAbs(g, frame)) / task.chunkSize);
    await this.#io.obtain(segmentChunkSpec(this.#bc, task, seg, chunkIndex, q), seg.chunksUpdatedMs);
    this.#io.sendFrame(res, task, frame);
  }

  /** `GET /api/tasks/{id}/preview` and `/api/jobs/{id}/preview`. */
  async preview(res: ServerResponse, task: EmulatedTask, job?: EmulatedJob): Promise<void> {
    if (task.dataId === null) {
      send(res, 404, Buffer.from('Task image preview not found'), { 'Content-Type': 'text/html; charset=utf-8' });
      return;
    }
    const seg = job ? this.#bc.deployment.segmentOf(job) : segmentOfFrame(task, 0);
    if (!seg) throw new ServerError('no segment');
    const spec = this.#bc.features.legacy ? legacyPreviewSpec(this.#bc, task, seg, seg.startFrame) : previewSpec(this.#bc, task, seg);
    this.#io.sendPlain(res, await this.#io.obtain(spec, seg.chunksUpdatedMs));
  }

  /** 2.0–2.19 `DataChunkGetter(request, start, stop, db_data)`: start/stop are relative for jobs, ABSOLUTE for tasks (CVAT's bug). */
  async #legacyData(
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
    task: EmulatedTask,
    type: string,
    start: number,
    stop: number,
    job: EmulatedJob | undefined,
  ): Promise<void> {
    const qualityRaw = query.get('quality') ?? 'compressed';
    const numberRaw = query.get('number');
    if (type === 'chunk' || type === 'frame' || type === 'preview') {
      if (numberRaw === null) throw validationList('Number is not specified');
      if (qualityRaw !== 'compressed' && qualityRaw !== 'original') throw validationList('Wrong quality value');
    }
    const parsed = toInt(numberRaw);
    const q: Quality = qualityRaw === 'compressed' ? 'compressed' : 'original';
    if (task.dataId === null) throw new HttpError(404, { detail: 'Cannot find requested data' });
    if (parsed === null) throw new ServerError("TypeError: '<=' not supported between instances of 'int' and 'NoneType'");
    const number = parsed;
    const cs = task.chunkSize;
    const gt = job?.type === 'ground_truth' ? job : undefined;
    if (type === 'chunk') {
      const first = taskChunkOf(start, cs);
      const last = taskChunkOf(stop, cs);
      if (number < first || number > last) throw validationText(`The chunk number should be in [${first}, ${last}] range`);
      if (number > chunkCount(task.geometry.size, cs) - 1) throw new ServerError('chunk beyond the task');
      const item = await this.#io.obtain(legacyChunkSpec(this.#bc, task, number, q, gt), null);
      this.#io.sendChunk(req, res, { item, updatedMs: null, ranged: false });
      return;
    }
    if (number < start || number > stop) throw validationText(`The frame number should be in [${start}, ${stop}] range`);
    const seg = job ? this.#bc.deployment.segmentOf(job) : segmentOfFrame(task, 0);
    if (!seg) throw new ServerError('no segment');
    if (type === 'preview') {
      this.#io.sendPlain(res, await this.#io.obtain(legacyPreviewSpec(this.#bc, task, seg, number), null));
      return;
    }
    if (number >= task.geometry.size) throw new ServerError('frame beyond the task');
    if (type === 'context_image') return this.#io.sendContext(res, contextSpec(this.#bc, task, number));
    await this.#io.obtain(legacyChunkSpec(this.#bc, task, taskChunkOf(number, cs), q, gt), null);
    this.#io.sendFrame(res, task, number);
  }
}
