/**
 * Getting an item and writing it out: cache hit (with the 2.21+ stale check), or a build
 * with the 2.23+ wait → 429 (old mode: build in the request, proxy timeout → 504), failed
 * build → generic 500; chunk headers (X-Checksum, X-Updated-Date, Accept-Ranges) and Range.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BuildContext } from './builds.js';
import { itemBody, type BuildSpec, type CachedItem } from './cache.js';
import { cvatDate } from './clock.js';
import { renderBody } from './content.js';
import { HttpError, parseRange, send, sendEmpty, sendJson, ServerError, validationText } from './http.js';
import type { EmulatedSegment, EmulatedTask } from './model.js';
import { chunkCount, jobChunkFrames, relToAbs } from './segments.js';
import type { EmulatorState } from './state.js';

const GATEWAY_TIMEOUT_HTML =
  '<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

export interface Served {
  item: CachedItem;
  /** X-Updated-Date source; null = no chunk headers (old mode). */
  updatedMs: number | null;
  ranged: boolean;
}

export class ItemServer {
  readonly #bc: BuildContext;
  readonly #state: EmulatorState;
  readonly #opts: { serverWaitMs: number; retryAfterSeconds: number };

  constructor(bc: BuildContext, state: EmulatorState, opts: { serverWaitMs: number; retryAfterSeconds: number }) {
    this.#bc = bc;
    this.#state = state;
    this.#opts = opts;
  }

  /** The Range header to honour (2.66+), after rejecting malformed ones before any build. */
  rangeHeader(req: IncomingMessage): string | null {
    const header = req.headers.range;
    if (!this.#bc.features.rangeRequests || !header) return null;
    if (parseRange(header, Number.MAX_SAFE_INTEGER) === 'malformed') throw validationText('Invalid Range header');
    return header;
  }

  /**
   * The cached item, or a build: 2.23+ joins/enqueues and waits ≤ serverWaitMs, then 429 (the build
   * goes on); before, the request builds (no dedup) and a proxy timeout becomes a 504. A failed build → 500.
   * `updatedMs`: a cached item built before it is stale → 429 (CvatChunkTimestampMismatchError, 2.21+).
   */
  async obtain(spec: BuildSpec, updatedMs: number | null): Promise<CachedItem> {
    const { cache, features } = this.#bc;
    const cached = cache.get(spec.key);
    if (cached) {
      if (features.checksumHeaders && updatedMs !== null && cached.builtAt < updatedMs) throw this.#tooMany();
      return cached;
    }
    const done = cache.ensureBuild(spec, features.queue429);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#opts.serverWaitMs);
    });
    try {
      const outcome = await Promise.race([done, timeout]);
      if (outcome === 'timeout') {
        if (features.queue429) throw this.#tooMany();
        this.#state.sent504++;
        throw new HttpError(504, GATEWAY_TIMEOUT_HTML, { 'Content-Type': 'text/html' });
      }
      return outcome;
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw new ServerError(error instanceof Error ? error.message : String(error));
    } finally {
      clearTimeout(timer);
    }
  }

  #tooMany(): HttpError {
    this.#state.sent429++;
    return new HttpError(429, null, { 'Retry-After': String(this.#opts.retryAfterSeconds) });
  }

  sendChunk(req: IncomingMessage, res: ServerResponse, served: Served): void {
    const { item } = served;
    const { features } = this.#bc;
    const headers: Record<string, string> = { 'Content-Type': item.mime };
    if (features.checksumHeaders && served.updatedMs !== null) {
      headers['X-Checksum'] = item.checksum;
      headers['X-Updated-Date'] = cvatDate(served.updatedMs);
    }
    if (features.rangeRequests) headers['Accept-Ranges'] = 'bytes';
    const body = itemBody(item);
    const rangeHeader = served.ranged ? req.headers.range : undefined;
    if (rangeHeader) {
      const range = parseRange(rangeHeader, body.length);
      if (range === 'malformed') {
        sendJson(req, res, 400, 'Invalid Range header');
        return;
      }
      if (range === 'unsatisfiable') {
        sendEmpty(res, 416, { 'Content-Range': `bytes */${body.length}` });
        return;
      }
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${body.length}`;
      send(res, 206, body.subarray(range.start, range.end + 1), headers);
      return;
    }
    send(res, 200, body, headers);
  }

  sendPlain(res: ServerResponse, item: CachedItem): void {
    send(res, 200, itemBody(item), { 'Content-Type': item.mime });
  }

  async sendContext(res: ServerResponse, spec: BuildSpec): Promise<void> {
    const item = await this.obtain(spec, null);
    if (item.empty) {
      sendEmpty(res, 404);
      return;
    }
    this.sendPlain(res, item);
  }

  sendFrame(res: ServerResponse, task: EmulatedTask, frame: number): void {
    const png = task.mediaType === 'video';
    const body = renderBody({ format: png ? 'png' : 'jpeg', bytes: 2048, descriptor: `frame ${frame} of task ${task.id}`, entries: [] });
    send(res, 200, body, { 'Content-Type': png ? 'image/png' : 'image/jpeg' });
  }
}

/** The RANGE segment holding a relative frame (RANGE segments are preferred, like CVAT). */
export function segmentOfFrame(task: EmulatedTask, rel: number): EmulatedSegment | undefined {
  const abs = relToAbs(task.geometry, rel);
  const sorted = [...task.segments].sort((a, b) => Number(a.type !== 'range') - Number(b.type !== 'range'));
  return sorted.find((s) => s.frameSet.includes(abs));
}

/** Index of the job chunk with exactly these frames, or null. */
export function matchingJobChunk(task: EmulatedTask, seg: EmulatedSegment, frames: readonly number[]): number | null {
  const n = chunkCount(seg.frameSet.length, task.chunkSize);
  for (let i = 0; i < n; i++) {
    const chunk = jobChunkFrames(seg.frameSet, i, task.chunkSize);
    if (chunk.length === frames.length && chunk.every((f, k) => f === frames[k])) return i;
  }
  return null;
}
