/**
 * Bounds on every CVAT answer: an overall deadline per request (headers *and* body —
 * undici's `bodyTimeout` is an idle timeout that a server dripping one byte every few
 * seconds never trips) and a byte cap on what is read, both sized per kind of request.
 * A CVAT that drips, loops or floods ends the operation with a clear error naming the
 * URL path and the kind, never a hang or an exhausted heap.
 */
import type { Dispatcher } from 'undici';
import { WardenError } from '../errors.js';

/** `about`: /api/server/about · `api`: one object or its metadata · `list`: one page of a list · `chunk`: media the warmer reads. */
export type RequestKind = 'about' | 'api' | 'list' | 'chunk';

export interface RequestLimit {
  /** Whole request, from sending it to the last body byte. */
  deadlineMs: number;
  /** Largest body read; a longer one is cut and reported. */
  maxBytes: number;
}

export type RequestLimits = Record<RequestKind, RequestLimit>;

const MiB = 1024 * 1024;

/** /api/server/about is tiny and answered without the database: it never needs more than this. */
const ABOUT_LIMIT: RequestLimit = { deadlineMs: 30_000, maxBytes: 1 * MiB };

/**
 * Chunk bodies are streamed and only counted; CVAT refuses to build chunks over
 * CVAT_CACHE_ITEM_MAX_SIZE (500 MiB, cvat/settings/base.py), so twice that is never a real chunk.
 */
const CHUNK_MAX_BYTES = 1024 * MiB;

/**
 * Limits from the knobs the configuration exposes (API/list deadline and size, chunk
 * deadline); their defaults live in the options table (config/options.ts) and reach
 * here through the parsed configuration. API answers are small (a 500-task page is about
 * 1 MB) but task metadata lists every frame (~100 bytes each); a chunk request may wait
 * CVAT's own 50 s (CVAT_CHUNK_CREATE_TIMEOUT, cvat/apps/engine/cache.py) before the 429.
 */
export function requestLimits(settings: { requestTimeoutMs: number; chunkTimeoutMs: number; maxResponseBytes: number }): RequestLimits {
  const api = settings.requestTimeoutMs;
  const bytes = settings.maxResponseBytes;
  return {
    about: { deadlineMs: Math.min(api, ABOUT_LIMIT.deadlineMs), maxBytes: Math.min(bytes, ABOUT_LIMIT.maxBytes) },
    api: { deadlineMs: api, maxBytes: bytes },
    list: { deadlineMs: api, maxBytes: bytes },
    chunk: { deadlineMs: settings.chunkTimeoutMs, maxBytes: CHUNK_MAX_BYTES },
  };
}

/** Which option sets each kind's deadline, for messages that tell the admin what to change. */
const DEADLINE_OPTION: Record<RequestKind, string> = {
  about: '--request-timeout',
  api: '--request-timeout',
  list: '--request-timeout',
  chunk: '--chunk-timeout',
};

export function deadlineError(kind: RequestKind, path: string, deadlineMs: number): WardenError {
  return new WardenError(
    'CVAT_TIMEOUT',
    `CVAT did not finish answering GET ${path} (${kind} request) within ${formatMs(deadlineMs)}, headers and body (${DEADLINE_OPTION[kind]}): CVAT or a proxy in front of it is overloaded or stalled`,
  );
}

export function tooLargeError(kind: RequestKind, path: string, maxBytes: number): WardenError {
  const hint = kind === 'chunk' ? 'no real chunk is that large' : 'raise --max-response-mib if CVAT really holds that much';
  return new WardenError(
    'CVAT_BAD_RESPONSE',
    `CVAT's answer to GET ${path} (${kind} request) is larger than ${formatBytes(maxBytes)}; it was cut off unread (${hint})`,
  );
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function formatBytes(bytes: number): string {
  return bytes >= MiB ? `${Math.round(bytes / MiB)} MiB` : `${bytes} bytes`;
}

/**
 * Forwards one long-lived signal (a run's stop signal) to many short-lived requests
 * with a single listener on it. Adding one listener per request to the same signal
 * is what made Node print MaxListenersExceededWarning once more than ten requests
 * or back-off sleeps were pending.
 */
const followers = new WeakMap<AbortSignal, Set<AbortController>>();

export function followSignal(parent: AbortSignal | undefined, child: AbortController): () => void {
  if (!parent) return () => undefined;
  if (parent.aborted) {
    child.abort(parent.reason);
    return () => undefined;
  }
  let set = followers.get(parent);
  if (!set) {
    const created = new Set<AbortController>();
    set = created;
    followers.set(parent, created);
    parent.addEventListener(
      'abort',
      () => {
        for (const c of created) c.abort(parent.reason);
        created.clear();
      },
      { once: true },
    );
  }
  set.add(child);
  const members = set;
  return () => members.delete(child);
}

/** Drops a body unread; undici reports the abort as an 'error' event nobody needs. */
export function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Reads a body to the end with a byte cap; over the cap the body is destroyed and `tooLarge` thrown. */
export async function readCapped(body: Dispatcher.ResponseData['body'], maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let length = 0;
  for await (const piece of body) {
    const buffer = piece as Buffer;
    length += buffer.length;
    if (length > maxBytes) {
      discard(body);
      throw tooLarge();
    }
    pieces.push(buffer);
  }
  // Most answers arrive in one piece (a task's data meta of 100 frames is ~10 KB): no copy then.
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, length);
}

/** Counts a body to the end without keeping it, with a byte cap. */
export async function countCapped(body: Dispatcher.ResponseData['body'], maxBytes: number, tooLarge: () => Error): Promise<number> {
  let length = 0;
  for await (const piece of body) {
    length += (piece as Buffer).length;
    if (length > maxBytes) {
      discard(body);
      throw tooLarge();
    }
  }
  return length;
}
