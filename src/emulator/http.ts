/**
 * Small HTTP helpers: CVAT-shaped responses (DRF JSON with `application/vnd.cvat+json`,
 * Django's bare 500 page, empty 429), a typed error for handlers, and `Range` parsing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Django's response to an unhandled exception with DEBUG=False: no detail at all. */
export const SERVER_ERROR_HTML =
  '\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n';

/** What a handler throws to answer with an error. `body` is JSON-serialised (DRF style). */
export class HttpError extends Error {
  override name = 'HttpError';
  readonly status: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;

  constructor(status: number, body: unknown, headers: Record<string, string> = {}) {
    super(`HTTP ${status}: ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

export const notFound = (): HttpError => new HttpError(404, { detail: 'Not found.' });
export const forbidden = (): HttpError => new HttpError(403, { detail: 'You do not have permission to perform this action.' });
/** A DRF ValidationError raised outside a try block: the body is a list of messages. */
export const validationList = (message: string): HttpError => new HttpError(400, [message]);
/** A ValidationError caught by `_DataGetter` and returned as `Response(data=msg)`: a JSON string. */
export const validationText = (message: string): HttpError => new HttpError(400, message);

/** A generic Django 500 (an exception nobody handled). */
export class ServerError extends Error {
  override name = 'ServerError';
}

function jsonContentType(req: IncomingMessage): string {
  const accept = req.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('vnd.cvat') ? 'application/json' : 'application/vnd.cvat+json';
}

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = Buffer.from(JSON.stringify(body));
  send(res, status, payload, { 'Content-Type': jsonContentType(req), ...headers });
}

export function sendServerError(res: ServerResponse): void {
  send(res, 500, Buffer.from(SERVER_ERROR_HTML), { 'Content-Type': 'text/html; charset=utf-8' });
}

/** An empty body (e.g. DRF's `Response(status=429)`, or Django's HttpResponseNotFound()). */
export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  send(res, status, Buffer.alloc(0), { 'Content-Type': 'text/html; charset=utf-8', ...headers });
}

/** A fault applied to how the body is written (set by the fault injector for one response). */
export type BodyFault = { kind: 'slowBody'; delayMs: number } | { kind: 'truncate'; at: number | undefined };
const bodyFaults = new WeakMap<ServerResponse, BodyFault>();

export function setBodyFault(res: ServerResponse, fault: BodyFault): void {
  bodyFaults.set(res, fault);
}

export function send(res: ServerResponse, status: number, body: Buffer, headers: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { ...headers, 'Content-Length': String(body.length) });
  const fault = bodyFaults.get(res);
  if (!fault) {
    res.end(body);
    return;
  }
  if (fault.kind === 'slowBody') {
    const half = Math.floor(body.length / 2);
    res.write(body.subarray(0, half));
    const timer = setTimeout(() => {
      if (!res.destroyed) res.end(body.subarray(half));
    }, fault.delayMs);
    timer.unref();
    return;
  }
  const at = Math.max(0, Math.min(body.length - 1, fault.at ?? Math.floor(body.length / 2)));
  res.flushHeaders();
  res.write(body.subarray(0, at), () => res.destroy());
}

export type RangeResult = { start: number; end: number } | 'malformed' | 'unsatisfiable';

/**
 * `Range: bytes=a-b`, `bytes=a-`, `bytes=-n` (one range only). Malformed → 400 "Invalid Range
 * header"; a range starting beyond the end → 416. The end is clamped to the last byte.
 */
export function parseRange(header: string, total: number): RangeResult {
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header);
  if (!match) return 'malformed';
  const [, a = '', b = ''] = match;
  if (a === '' && b === '') return 'malformed';
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, total - suffix), end: total - 1 };
  }
  const start = Number(a);
  const end = b === '' ? total - 1 : Number(b);
  if (end < start) return 'malformed';
  if (start >= total) return 'unsatisfiable';
  return { start, end: Math.min(end, total - 1) };
}

export async function readJsonBody(req: IncomingMessage, limit = 1 << 20): Promise<unknown> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > limit) throw new HttpError(413, { detail: 'Request body too large.' });
    parts.push(part);
  }
  if (size === 0) return {};
  const text = Buffer.concat(parts).toString('utf8');
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(text));
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, { detail: `JSON parse error - ${text.slice(0, 40)}` });
  }
}
