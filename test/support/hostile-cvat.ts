/**
 * A hostile CVAT stand-in: a real node:http server on port 0 that serves a tiny,
 * well-formed CVAT 2.73 (about, task and job lists, data/meta, job chunks) and, per
 * request kind, one fault at a time: endless or looping `next`, a malformed `next`, a
 * body dripped one byte at a time, a giant page, a job claiming 10^9 frames, 401 from
 * some point on, HTML error pages, a redirect, a version string that echoes the
 * request's headers, Retry-After: 99999999. `faults` can be changed while it runs
 * (401 mid-run, then back). Every answer is bounded: dripping stops when the client
 * goes away, a giant page is streamed, not held.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Kind = 'about' | 'list' | 'api' | 'chunk';

export interface HostileFaults {
  /** `/api/tasks` pages never end: `next` always points to the following page, `count` stays `count`. */
  endlessNext?: { count: number; perPage: number };
  /** `/api/tasks` page 2's `next` points back to page 1. */
  loopingNext?: boolean;
  /** `/api/tasks` page 1's `next` is not a URL. */
  malformedNext?: string;
  /** Headers at once, then one byte every `intervalMs`, for requests of these kinds. */
  drip?: { kinds: Kind[]; intervalMs: number };
  /** `/api/tasks` answers with a JSON page of about this many bytes (streamed). */
  giantPageBytes?: number;
  /** Task 1 gets a second job claiming 10^9 frames. */
  absurdJob?: boolean;
  /**
   * Requests that carry credentials answer 401 (the token was revoked): all of them, or
   * those of these kinds. Real CVAT answers 401 even on /api/server/about then: DRF
   * authenticates before it checks AllowAny.
   */
  revoked?: boolean | Kind[];
  /** `/api/server/about` answers this status with an HTML body (a proxy's error page). */
  htmlAbout?: number;
  /** `/api/server/about` answers 301 to this Location. */
  redirectAbout?: string;
  /** The version string carries the request's Authorization header (a CVAT echoing headers). */
  echoHeaders?: boolean;
  /** Chunks answer 429 with this Retry-After. */
  retryAfter?: string;
  /** Each chunk answers 429 with this Retry-After the first time it is asked for, then 200. */
  retryAfterOnce?: string;
}

export interface HostileOptions {
  /** Well-formed tasks served (ids 1…n), one 10-frame job each (id 10·task). @default 2 */
  tasks?: number;
}

export interface HostileCvat {
  url: string;
  faults: HostileFaults;
  /** Requests received, per kind. */
  counts: Record<Kind, number>;
  /** Bytes written in answers. */
  bytesSent: () => number;
  close(): Promise<void>;
}

const FRAMES = 10;
const CHUNK_SIZE = 5;

function kindOf(path: string, query: URLSearchParams): Kind {
  if (path === '/api/server/about') return 'about';
  if (/^\/api\/jobs\/\d+\/data$/.test(path) && query.get('type') === 'chunk') return 'chunk';
  if (path === '/api/tasks' || path === '/api/jobs') return 'list';
  return 'api';
}

function task(id: number): Record<string, unknown> {
  return {
    id,
    name: `task ${id}`,
    size: FRAMES,
    data: id,
    data_chunk_size: CHUNK_SIZE,
    mode: 'annotation',
    media_type: 'image',
    dimension: '2d',
    status: 'annotation',
    updated_date: '2026-01-01T00:00:00.000000Z',
    jobs: { count: 1 },
    project_id: null,
    organization: null,
    segment_size: FRAMES,
    overlap: 0,
  };
}

function job(id: number, taskId: number, frames = { start: 0, stop: FRAMES - 1, count: FRAMES }): Record<string, unknown> {
  return {
    id,
    task_id: taskId,
    type: 'annotation',
    start_frame: frames.start,
    stop_frame: frames.stop,
    frame_count: frames.count,
    data_chunk_size: CHUNK_SIZE,
    state: 'new',
    stage: 'annotation',
    status: 'annotation',
    updated_date: '2026-01-01T00:00:00.000000Z',
  };
}

function meta(): Record<string, unknown> {
  return {
    chunk_size: CHUNK_SIZE,
    size: FRAMES,
    start_frame: 0,
    stop_frame: FRAMES - 1,
    frame_filter: '',
    frames: Array.from({ length: FRAMES }, (_, i) => ({ name: `images/frame_${i}.jpg`, width: 640, height: 480, related_files: 0 })),
    deleted_frames: [],
    storage: 'local',
    chunks_updated_date: '2026-01-01T00:00:00.000000Z',
  };
}

export async function startHostileCvat(faults: HostileFaults = {}, options: HostileOptions = {}): Promise<HostileCvat> {
  const TASKS = Array.from({ length: options.tasks ?? 2 }, (_, i) => i + 1);
  const askedOnce = new Set<string>();
  const counts: Record<Kind, number> = { about: 0, list: 0, api: 0, chunk: 0 };
  let sent = 0;
  const timers = new Set<NodeJS.Timeout>();
  const state: { faults: HostileFaults } = { faults };

  const write = (res: ServerResponse, text: string | Buffer) => {
    sent += Buffer.byteLength(text);
    res.write(text);
  };
  const send = (req: IncomingMessage, res: ServerResponse, kind: Kind, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const drip = state.faults.drip;
    if (drip && drip.kinds.includes(kind)) {
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
      let at = 0;
      const timer = setInterval(() => {
        if (at >= text.length || res.destroyed) {
          clearInterval(timer);
          timers.delete(timer);
          if (!res.destroyed) res.end();
          return;
        }
        write(res, text[at++]!);
      }, drip.intervalMs);
      timers.add(timer);
      req.on('close', () => {
        clearInterval(timer);
        timers.delete(timer);
      });
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    sent += Buffer.byteLength(text);
    res.end(text);
  };

  const tasksPage = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => {
    const page = Number(query.get('page') ?? '1');
    const f = state.faults;
    const base = `http://internal-cvat:8080/api/tasks?page_size=${query.get('page_size') ?? 10}`;
    if (f.endlessNext) {
      const results = Array.from({ length: f.endlessNext.perPage }, (_, i) => task(1000 + page * f.endlessNext!.perPage + i));
      send(req, res, 'list', 200, { count: f.endlessNext.count, next: `${base}&page=${page + 1}`, previous: null, results });
      return;
    }
    if (f.loopingNext) {
      send(req, res, 'list', 200, { count: 4, next: `${base}&page=${page === 1 ? 2 : 1}`, previous: null, results: [task(page === 1 ? 1 : 2)] });
      return;
    }
    if (f.malformedNext !== undefined) {
      send(req, res, 'list', 200, { count: 4, next: f.malformedNext, previous: null, results: [task(1)] });
      return;
    }
    if (f.giantPageBytes) {
      // Streamed in 1 MiB pieces, never held whole; the client must cut it off.
      res.writeHead(200, { 'content-type': 'application/json' });
      const filler = Buffer.alloc(1024 * 1024, 0x20);
      let left = f.giantPageBytes;
      write(res, '{"count":1,"next":null,"results":[');
      const pump = () => {
        while (left > 0 && !res.destroyed) {
          left -= filler.length;
          sent += filler.length;
          if (!res.write(filler)) return void res.once('drain', pump);
        }
        if (!res.destroyed) res.end(']}');
      };
      pump();
      return;
    }
    send(req, res, 'list', 200, { count: TASKS.length, next: null, previous: null, results: TASKS.map(task) });
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://cvat');
    const path = url.pathname;
    const kind = kindOf(path, url.searchParams);
    counts[kind]++;
    const f = state.faults;
    if (req.headers.authorization && (f.revoked === true || (Array.isArray(f.revoked) && f.revoked.includes(kind)))) {
      send(req, res, kind, 401, { detail: 'Invalid token.' });
      return;
    }
    if (kind === 'about') {
      if (f.htmlAbout) {
        res.writeHead(f.htmlAbout, { 'content-type': 'text/html' });
        res.end('<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>');
        return;
      }
      if (f.redirectAbout) {
        res.writeHead(301, { location: f.redirectAbout, 'content-type': 'text/html' });
        res.end('<html>Moved</html>');
        return;
      }
      const version = f.echoHeaders ? `2.73.0 (${req.headers.authorization ?? ''}; ${req.headers['user-agent'] ?? ''})` : '2.73.0';
      send(req, res, kind, 200, { name: 'Computer Vision Annotation Tool', version, description: 'hostile stand-in' });
      return;
    }
    if (path === '/api/tasks') {
      tasksPage(req, res, url.searchParams);
      return;
    }
    if (path === '/api/jobs') {
      const taskId = Number(url.searchParams.get('task_id'));
      const jobs = TASKS.includes(taskId) ? [job(taskId * 10, taskId)] : [];
      if (f.absurdJob && taskId === 1) jobs.push(job(11, 1, { start: 0, stop: 999_999_999, count: 1_000_000_000 }));
      send(req, res, kind, 200, { count: jobs.length, next: null, previous: null, results: jobs });
      return;
    }
    const taskMatch = /^\/api\/tasks\/(\d+)(\/data\/meta)?$/.exec(path);
    if (taskMatch && TASKS.includes(Number(taskMatch[1]))) {
      send(req, res, kind, 200, taskMatch[2] ? meta() : task(Number(taskMatch[1])));
      return;
    }
    const jobMatch = /^\/api\/jobs\/(\d+)(\/data\/meta|\/data)?$/.exec(path);
    if (jobMatch && jobMatch[2] === '/data/meta') {
      send(req, res, kind, 200, meta());
      return;
    }
    if (jobMatch && kind === 'chunk') {
      if (f.retryAfter !== undefined) {
        send(req, res, kind, 429, { detail: 'chunk is being prepared' }, { 'retry-after': f.retryAfter });
        return;
      }
      if (f.retryAfterOnce !== undefined && !askedOnce.has(req.url ?? '')) {
        askedOnce.add(req.url ?? '');
        send(req, res, kind, 429, { detail: 'chunk is being prepared' }, { 'retry-after': f.retryAfterOnce });
        return;
      }
      const range = req.headers.range !== undefined;
      send(req, res, kind, range ? 206 : 200, range ? 'x' : 'x'.repeat(1000), {
        'content-type': 'application/zip',
        'x-checksum': '12345',
        'x-updated-date': '2026-01-01T00:00:00.000000Z',
        ...(range ? { 'content-range': 'bytes 0-0/1000' } : {}),
      });
      return;
    }
    if (path === '/api/users/self') {
      send(req, res, kind, 200, { id: 1, username: 'admin', is_superuser: true });
      return;
    }
    send(req, res, kind, 404, { detail: 'Not found.' });
  });
  server.keepAliveTimeout = 500;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get faults() {
      return state.faults;
    },
    set faults(value: HostileFaults) {
      state.faults = value;
    },
    counts,
    bytesSent: () => sent,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearInterval(timer);
        timers.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
