/**
 * Jobs of every task from one listing sorted by task (`sort=task_id,id`) instead of one
 * list per task: the records must be exactly those of the per-task lists, whatever the
 * listing does wrong. JobViewSet orders by `task_id` on 2.5, 2.14 and 2.73
 * (cvat/apps/engine/views.py `ordering_fields = list(filter_fields)`), and a task's
 * `jobs.count` is `Count("segment__job")` (cvat/apps/engine/models.py), so the count
 * vouches for a task's share of the listing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { CvatClient } from '../src/cvat/client.js';
import { collectTaskRecords, type InventoryIssue, type TaskRecord } from '../src/cvat/inventory.js';
import { defaultCvatBounds } from '../src/config/index.js';
import { startEmulator, syntheticDeployment, type Emulator } from '../src/emulator/index.js';
import { sendJson, startServer, type TestServer } from './support/http.js';

type Fault = 'none' | 'ignores-sort' | 'drops-a-job' | 'repeats-a-job' | 'fails' | 'unreadable-item' | 'counts-too-many';

const TASKS = 30;
const JOBS_PER_TASK = 3;
const FRAMES_PER_JOB = 10;

function taskJson(id: number, size = JOBS_PER_TASK * FRAMES_PER_JOB) {
  return {
    id,
    name: `task ${id}`,
    size,
    data: id,
    data_chunk_size: 5,
    mode: 'annotation',
    media_type: 'image',
    dimension: '2d',
    status: 'annotation',
    updated_date: '2026-11-01T00:00:00.000000Z',
    jobs: { count: JOBS_PER_TASK },
    project_id: null,
    organization: null,
    segment_size: FRAMES_PER_JOB,
    overlap: 0,
  };
}

function jobJson(id: number) {
  const taskId = Math.ceil(id / JOBS_PER_TASK);
  const k = (id - 1) % JOBS_PER_TASK;
  return {
    id,
    task_id: taskId,
    type: 'annotation',
    start_frame: k * FRAMES_PER_JOB,
    stop_frame: (k + 1) * FRAMES_PER_JOB - 1,
    frame_count: FRAMES_PER_JOB,
    data_chunk_size: 5,
    state: 'new',
    stage: 'annotation',
    status: 'annotation',
    updated_date: '2026-11-01T00:00:00.000000Z',
  };
}

function page(res: ServerResponse, items: unknown[], query: URLSearchParams) {
  const size = Number(query.get('page_size') ?? 10);
  const at = Number(query.get('page') ?? 1);
  const slice = items.slice((at - 1) * size, at * size);
  sendJson(res, 200, { count: items.length, next: at * size < items.length ? `/api/jobs?page=${at + 1}` : null, previous: null, results: slice });
}

/** A CVAT 2.73 of 30 tasks × 3 jobs whose all-jobs listing (no task_id) has `fault`; tasks claim `size` frames. */
async function startCvat(fault: Fault, size?: number): Promise<TestServer> {
  const allJobs = Array.from({ length: TASKS * JOBS_PER_TASK }, (_, i) => i + 1);
  return startServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname;
    if (p === '/api/server/about') {
      sendJson(res, 200, { name: 'Computer Vision Annotation Tool', version: '2.73.0' });
      return;
    }
    if (p === '/api/tasks') {
      page(
        res,
        Array.from({ length: TASKS }, (_, i) => taskJson(i + 1, size)),
        url.searchParams,
      );
      return;
    }
    const one = /^\/api\/tasks\/(\d+)$/.exec(p);
    if (one) {
      sendJson(res, 200, taskJson(Number(one[1]), size));
      return;
    }
    const meta = /^\/api\/tasks\/(\d+)\/data\/meta$/.exec(p);
    if (meta) {
      sendJson(res, 200, { chunk_size: 5, size: 30, start_frame: 0, stop_frame: 29, frame_filter: '', frames: [], storage: 'local' });
      return;
    }
    if (p === '/api/jobs') {
      const taskId = Number(url.searchParams.get('task_id'));
      // One task's jobs in JobViewSet's default order, `-id`.
      if (taskId) {
        page(
          res,
          allJobs
            .filter((j) => Math.ceil(j / JOBS_PER_TASK) === taskId)
            .reverse()
            .map(jobJson),
          url.searchParams,
        );
        return;
      }
      if (fault === 'fails') {
        sendJson(res, 400, { detail: 'listing refused' });
        return;
      }
      const sorted = url.searchParams.get('sort') === 'task_id,id' && fault !== 'ignores-sort';
      let items: unknown[] = (sorted ? allJobs : [...allJobs].reverse()).map(jobJson);
      // Task 11's second job lost at a page boundary; task 20's first job shown twice in its place.
      if (fault === 'drops-a-job') items = items.filter((j) => (j as { id: number }).id !== 32);
      if (fault === 'repeats-a-job') items = items.map((j) => ((j as { id: number }).id === 59 ? jobJson(58) : j));
      if (fault === 'unreadable-item') items = items.map((j) => ((j as { id: number }).id === 44 ? { id: 44, task_id: 'fifteen' } : j));
      // 1,000 jobs where the tasks listed count 90 (the rest of tasks the task list never showed):
      // 50 pages, within --max-list-pages but far beyond what the counts need.
      if (fault === 'counts-too-many') items = Array.from({ length: 1000 }, (_, i) => jobJson(i + 1));
      page(res, items, url.searchParams);
      return;
    }
    sendJson(res, 404, { detail: 'not found' });
  });
}

let server: TestServer | undefined;
let client: CvatClient | undefined;
let emulator: Emulator | undefined;
afterEach(async () => {
  await client?.close();
  await server?.close();
  await emulator?.close();
  server = client = emulator = undefined;
});

async function collect(
  url: string,
  all: boolean,
  taskIds: number[] = [],
  maxPages = defaultCvatBounds().maxPages,
): Promise<{ records: TaskRecord[]; issues: InventoryIssue[] }> {
  client = new CvatClient({ ...defaultCvatBounds(), baseUrl: url, pageSize: 20, maxPages });
  const features = await client.features();
  const records: TaskRecord[] = [];
  const issues: InventoryIssue[] = [];
  const scope = { all, taskIds, projectIds: [], jobIds: [] };
  for await (const record of collectTaskRecords(client, scope, { features, withMeta: true, onIssue: (i) => issues.push(i) })) records.push(record);
  await client.close();
  client = undefined;
  return { records, issues };
}

const jobIdsOf = (records: TaskRecord[]) => records.map((r) => [r.task.id, r.jobs.map((j) => j.id)]);
const perTaskLists = (s: TestServer) => s.requests.filter((r) => /^\/api\/jobs\?.*task_id=/.test(r.url)).length;
const listings = (s: TestServer) => s.requests.filter((r) => r.url.startsWith('/api/jobs?') && !r.url.includes('task_id=')).length;

describe('jobs of every task from one listing', () => {
  const truth = Array.from({ length: TASKS }, (_, t) => [t + 1, Array.from({ length: JOBS_PER_TASK }, (_, k) => (t + 1) * JOBS_PER_TASK - k)]);

  it('asks a page per 20 jobs instead of a list per task, and finds every job', async () => {
    server = await startCvat('none');
    const { records, issues } = await collect(server.url, true);
    expect(jobIdsOf(records)).toEqual(truth);
    expect(issues).toEqual([]);
    expect(perTaskLists(server)).toBe(0);
    expect(listings(server)).toBe(Math.ceil((TASKS * JOBS_PER_TASK) / 20));
  });

  it('is bounded by what the tasks count, not by --max-list-pages (5 pages of 20 with a cap of 2)', async () => {
    server = await startCvat('none');
    const { records, issues } = await collect(server.url, true, [], 2);
    expect(jobIdsOf(records)).toEqual(truth);
    expect(issues).toEqual([]);
    expect(perTaskLists(server)).toBe(0);
    expect(listings(server)).toBe(5);
  });

  it('lists per task when the scope is named tasks (the listing would cover all of CVAT)', async () => {
    server = await startCvat('none');
    const { records } = await collect(server.url, false, [3, 4]);
    expect(jobIdsOf(records)).toEqual(truth.slice(2, 4));
    expect(listings(server)).toBe(0);
    expect(perTaskLists(server)).toBe(2);
  });

  it.each<[Fault, number[]]>([
    // Descending order: the first item is of task 30, the second breaks the order; every task falls back.
    ['ignores-sort', Array.from({ length: TASKS }, (_, t) => t + 1)],
    // Two jobs where task 11 counts three.
    ['drops-a-job', [11]],
    // Job 58 twice, 59 missing: the count matches but the repeat gives it away.
    ['repeats-a-job', [20]],
    // Job 44's item fails its schema: task 15 is one short.
    ['unreadable-item', [15]],
    // Nothing listed at all.
    ['fails', Array.from({ length: TASKS }, (_, t) => t + 1)],
    // 50 pages where the tasks' counts need 5: the walk refuses it after its first page.
    ['counts-too-many', Array.from({ length: TASKS }, (_, t) => t + 1)],
  ])('a listing that %s: the tasks it cannot vouch for list their own jobs, and every record is exact', async (fault, fellBack) => {
    server = await startCvat(fault);
    const { records, issues } = await collect(server.url, true);
    expect(jobIdsOf(records)).toEqual(truth);
    expect(issues).toEqual([]);
    const listed = server.requests.filter((r) => /task_id=/.test(r.url)).map((r) => Number(/task_id=(\d+)/.exec(r.url)![1]));
    expect(listed.sort((a, b) => a - b)).toEqual(fellBack);
    if (fault === 'counts-too-many') expect(listings(server)).toBe(1);
  });
});

describe('the emulator agrees with CVAT on the sorted listing', () => {
  it('gives the same records with ground-truth jobs and consensus replicas, listed all at once or per task', async () => {
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 5, framesPerTask: 300, groundTruthFrames: 12, consensusReplicas: 2 }) });
    const ids = [1, 2, 3, 4, 5];
    const all = await collect(emulator.url, true);
    const perTask = await collect(emulator.url, false, ids);
    expect(all.records.map((r) => r.task.id)).toEqual(ids);
    // In the same order too: newest first, as CVAT lists one task's jobs (`-id`).
    expect(all.records.map((r) => r.jobs)).toEqual(perTask.records.map((r) => r.jobs));
    expect(all.records.every((r) => r.jobs.some((j) => j.type === 'ground_truth') && r.jobs.some((j) => j.type === 'consensus_replica'))).toBe(true);
  });
});

describe('records fetched ahead of the consumer (inventory.ts readAhead)', () => {
  const metas = (s: TestServer) => s.requests.filter((r) => r.url.includes('/data/meta')).length;

  /** Meta requests made while the consumer holds the first record and asks for nothing more. */
  async function aheadOfPausedConsumer(size: number): Promise<number> {
    server = await startCvat('none', size);
    client = new CvatClient({ ...defaultCvatBounds(), baseUrl: server.url, pageSize: 20 });
    const features = await client.features();
    const scope = { all: true, taskIds: [], projectIds: [], jobIds: [] };
    const records = collectTaskRecords(client, scope, { features, withMeta: true, concurrency: 2, onIssue: () => undefined });
    const first = await records.next();
    expect(first.done).toBe(false);
    // The lookups already handed out finish on their own; nothing new starts while the consumer waits.
    let seen = -1;
    for (let quiet = 0; quiet < 5;) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      quiet = metas(server) === seen ? quiet + 1 : 0;
      seen = metas(server);
    }
    await records.return(undefined);
    return seen;
  }

  it('reads up to 8 tasks a request slot ahead when the tasks are small', async () => {
    // concurrency 2: at most 16 ahead, of the 30 tasks.
    expect(await aheadOfPausedConsumer(30)).toBe(16);
  });

  it('reads only 2 tasks a slot ahead when their frames would exceed the budget (20,000)', async () => {
    expect(await aheadOfPausedConsumer(10_000)).toBe(4);
  });

  it('fills the budget with tasks between the two', async () => {
    // 4 tasks always; then 2,500-frame tasks while the frames ahead stay ≤ 20,000: 8 in all.
    expect(await aheadOfPausedConsumer(2_500)).toBe(8);
  });
});
