/**
 * A small CVAT 2.73 stand-in that counts: a real node:http server on port 0 serving many
 * tasks (most without data yet, as while an import script creates them; a few with one
 * 10-frame job), the task and job lists with the `filter` forms discovery sends
 * (`updated_date >=`, `id in [...]`), metas and chunks. It records every request's kind,
 * the peak of API requests in flight, and which task ids each list request covered,
 * so a test can tell what a flood of webhooks cost CVAT and that no task was skipped.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CountingCvat {
  url: string;
  /** Requests by kind: `full` (task list without filter), `since` (updated_date), `ids` (id in), `jobs`, `task` (GET one task), `meta`, `chunk`, `other`. */
  counts: Map<string, number>;
  /** Requests other than chunks (the ones discovery makes). */
  apiRequests: () => number;
  /** Most API requests in flight at once so far. */
  peakInFlight: () => number;
  /** Task ids named in `id in` filters, with how often. */
  idsLookedUp: Map<number, number>;
  /** Task ids some task list request showed or named since the last reset. */
  covered: Set<number>;
  /** Job lists asked for by task (`/api/jobs?task_id=`). */
  jobsOf: Map<number, number>;
  /** Holds every API answer until the returned function is called (a CVAT slow to answer). */
  hold(): () => void;
  /** Moves a task's updated_date (CVAT's `touch()`). */
  touch(taskId: number): void;
  /** Zeroes the counters (not the tasks). */
  reset(): void;
  close(): Promise<void>;
}

export interface CountingOptions {
  /** Tasks 1…n exist; only `withData` have data and a job. */
  tasks: number;
  withData: readonly number[];
  /** Each API answer waits this long, so requests overlap as on a real server. @default 1 */
  delayMs?: number;
}

const FRAMES = 10;

export async function startCountingCvat(options: CountingOptions): Promise<CountingCvat> {
  const withData = new Set(options.withData);
  const delayMs = options.delayMs ?? 1;
  const dates = new Map<number, string>();
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const stamp = () => new Date((clock += 1000)).toISOString();
  const base = stamp();
  // Distinct dates, as on a real server: a poll for `updated_date >=` the newest lists one task.
  for (let id = 1; id <= options.tasks; id++) dates.set(id, stamp());
  const counts = new Map<string, number>();
  const idsLookedUp = new Map<number, number>();
  const covered = new Set<number>();
  const jobsOf = new Map<number, number>();
  let inFlight = 0;
  let peak = 0;
  let gate: Promise<void> | undefined;

  const task = (id: number) => {
    const data = withData.has(id);
    return {
      id,
      name: `task ${id}`,
      size: data ? FRAMES : 0,
      data: data ? id : null,
      data_chunk_size: 5,
      mode: data ? 'annotation' : '',
      media_type: data ? 'image' : '',
      dimension: '2d',
      status: 'annotation',
      updated_date: dates.get(id),
      jobs: { count: data ? 1 : 0 },
      project_id: null,
      organization: null,
      segment_size: FRAMES,
      overlap: 0,
    };
  };
  const job = (taskId: number) => ({
    id: taskId * 10,
    task_id: taskId,
    type: 'annotation',
    start_frame: 0,
    stop_frame: FRAMES - 1,
    frame_count: FRAMES,
    data_chunk_size: 5,
    state: 'new',
    stage: 'annotation',
    status: 'annotation',
    updated_date: base,
  });
  const meta = {
    chunk_size: 5,
    size: FRAMES,
    start_frame: 0,
    stop_frame: FRAMES - 1,
    frame_filter: '',
    frames: Array.from({ length: FRAMES }, (_, i) => ({ name: `f${i}.jpg`, width: 64, height: 48, related_files: 0 })),
    deleted_frames: [],
    storage: 'local',
    chunks_updated_date: base,
  };
  const page = (query: URLSearchParams, all: readonly unknown[]) => {
    const size = Number(query.get('page_size') ?? 10);
    const n = Number(query.get('page') ?? 1);
    const results = all.slice((n - 1) * size, n * size);
    for (const item of results) if (typeof item === 'object' && item !== null && 'jobs' in item && 'id' in item) covered.add(item.id as number);
    return { count: all.length, next: n * size < all.length ? `http://cvat/next?page=${n + 1}` : null, previous: null, results };
  };
  const count = (kind: string) => counts.set(kind, (counts.get(kind) ?? 0) + 1);

  const answer = (url: URL): { kind: string; status: number; body: unknown } => {
    const path = url.pathname;
    const query = url.searchParams;
    if (path === '/api/server/about') return { kind: 'other', status: 200, body: { name: 'Computer Vision Annotation Tool', version: '2.73.0' } };
    if (path === '/api/users/self') return { kind: 'other', status: 200, body: { id: 1, username: 'admin', is_superuser: true } };
    if (path === '/api/tasks') {
      const filter = query.get('filter');
      if (!filter) return { kind: 'full', status: 200, body: page(query, [...dates.keys()].map(task)) };
      const rule = JSON.parse(filter) as { in?: [unknown, number[]]; and?: Array<{ '>=': [unknown, string] }> };
      if (rule.in) {
        const ids = rule.in[1].filter((id) => dates.has(id));
        for (const id of rule.in[1]) {
          idsLookedUp.set(id, (idsLookedUp.get(id) ?? 0) + 1);
          covered.add(id);
        }
        return { kind: 'ids', status: 200, body: page(query, ids.map(task)) };
      }
      const since = rule.and?.[0]?.['>='][1] ?? '';
      return {
        kind: 'since',
        status: 200,
        body: page(
          query,
          [...dates].filter(([, d]) => d >= since).map(([id]) => task(id)),
        ),
      };
    }
    if (path === '/api/jobs') {
      const taskId = Number(query.get('task_id'));
      if (taskId) jobsOf.set(taskId, (jobsOf.get(taskId) ?? 0) + 1);
      const since = query.get('filter') ? (JSON.parse(query.get('filter')!) as { and: Array<{ '>=': [unknown, string] }> }).and[0]!['>='][1] : '';
      const jobs = [...withData].filter((id) => (taskId ? id === taskId : true)).map(job);
      return {
        kind: 'jobs',
        status: 200,
        body: page(
          query,
          jobs.filter((j) => j.updated_date >= since),
        ),
      };
    }
    if (/^\/api\/(tasks|jobs)\/\d+\/data\/meta$/.test(path)) return { kind: 'meta', status: 200, body: meta };
    const one = /^\/api\/tasks\/(\d+)$/.exec(path);
    if (one)
      return dates.has(Number(one[1]))
        ? { kind: 'task', status: 200, body: task(Number(one[1])) }
        : { kind: 'task', status: 404, body: { detail: 'Not found.' } };
    return { kind: 'other', status: 404, body: { detail: 'Not found.' } };
  };

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://cvat');
    if (url.pathname.endsWith('/data') && url.searchParams.get('type') === 'chunk') {
      count('chunk');
      send(res, 200, 'x'.repeat(200), { 'content-type': 'application/zip', 'x-checksum': '1', 'x-updated-date': base });
      return;
    }
    inFlight++;
    peak = Math.max(peak, inFlight);
    res.on('close', () => inFlight--);
    const { kind, status, body } = answer(url);
    count(kind);
    const reply = () => setTimeout(() => send(res, status, JSON.stringify(body)), delayMs);
    if (gate) void gate.then(reply);
    else reply();
  });
  server.keepAliveTimeout = 2_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    apiRequests: () => [...counts].reduce((sum, [kind, n]) => (kind === 'chunk' ? sum : sum + n), 0),
    peakInFlight: () => peak,
    idsLookedUp,
    covered,
    jobsOf,
    hold: () => {
      let release = () => {};
      gate = new Promise<void>((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
    touch: (taskId) => void dates.set(taskId, stamp()),
    reset: () => {
      counts.clear();
      idsLookedUp.clear();
      covered.clear();
      jobsOf.clear();
      peak = inFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
