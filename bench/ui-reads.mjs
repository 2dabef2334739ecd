// Issue 7 and issue 12 (discovery) benchmarks: UI coverage with context images against naive
// task-chunk warming; request cost of discovery per poll (2,000 tasks / 40,000 jobs beside
// 200 / 4,000); first discovery at 10,000 tasks with 10 ms per API call.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCvatBounds } from '../dist/config/index.js';
import { OPTIONS } from '../dist/config/options.js';
import { CvatClient } from '../dist/cvat/client.js';
import { collectTaskRecords } from '../dist/cvat/inventory.js';
import { Discovery } from '../dist/daemon/discovery.js';
import { startEmulator } from '../dist/emulator/index.js';
import { silentLogger } from '../dist/log.js';
import { createMetrics } from '../dist/metrics.js';
import { toPlanTask } from '../dist/plan/from-records.js';
import { planRequests, summarizePlan } from '../dist/plan/planner.js';
import { WarmEngine } from '../dist/warm/engine.js';
import { Ledger } from '../dist/warm/ledger.js';
import { fmt, startEmulatorChild } from './lib.mjs';

const SCOPE = { all: true, taskIds: [], projectIds: [], jobIds: [] };

/** Images with context images, GT jobs, replicas whose parent is completed, rejected jobs, deleted frames; 3D with context on every frame. */
function coverageTasks() {
  const tasks = [];
  for (let id = 1; id <= 8; id++) {
    tasks.push({
      id,
      size: 120,
      chunkSize: 12,
      segmentSize: 40,
      relatedFiles: Array.from({ length: 120 }, (_, f) => (f % 4 === 0 ? 1 : 0)),
      groundTruthFrames: [3, 50, 77, 101],
      deletedFrames: [0, 1],
      consensusReplicas: 2,
      jobStates: ['completed', 'rejected', 'in progress'],
      replicaStates: [['in progress', 'new']],
    });
  }
  for (let id = 9; id <= 12; id++)
    tasks.push({ id, mediaType: 'pointcloud', size: 30, chunkSize: 6, segmentSize: 10, relatedFiles: Array.from({ length: 30 }, () => 2) });
  return tasks;
}

async function wardenWarm(url, contextImages) {
  const client = new CvatClient({ ...defaultCvatBounds(), baseUrl: url, connections: 8 });
  const features = await client.features();
  const tasks = [];
  for await (const record of collectTaskRecords(client, SCOPE, { features, withMeta: true, onIssue: () => {} })) {
    const t = toPlanTask(record, { contextImages, onIssue: () => {} });
    if (t) tasks.push(t);
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-ui-'));
  const ledger = await Ledger.open(dir, { durable: false });
  const plan = { qualities: ['compressed'], previews: false, contextImages, skipCompleted: false, indexChunks: features.indexChunks };
  const engine = new WarmEngine({
    client,
    features,
    ledger,
    metrics: createMetrics({ buildInfo: { version: 'bench' } }),
    logger: silentLogger(),
    concurrency: 2,
    maxAgeMs: 3_600_000,
  });
  const result = await engine.run(planRequests(tasks, plan), summarizePlan(tasks, plan).requests);
  await ledger.close();
  await client.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

function readStats(emulator) {
  const reads = emulator.state.uiReadKeys();
  const cold = emulator.state.coldUiReadKeys().size;
  const built = Object.keys(emulator.state.buildsByKey()).filter((k) => !reads.has(k)).length;
  const rejected = emulator.state.requestLog.filter((r) => r.status >= 400 && r.status < 500).length;
  const context = [...reads].filter((k) => k.startsWith('context_images_')).length;
  return { reads: reads.size, context, covered: 1 - cold / reads.size, unread: built, rejected };
}

export async function coverage() {
  const out = {};
  for (const [name, contextImages] of [
    ['warden', true],
    ['wardenNoContext', false],
  ]) {
    const emulator = await startEmulator({ tasks: coverageTasks(), buildTimeMs: 0 });
    await wardenWarm(emulator.url, contextImages);
    out[name] = readStats(emulator);
    await emulator.close();
  }
  // Naive: every task chunk number through the task endpoint (what scripts do).
  const emulator = await startEmulator({ tasks: coverageTasks(), buildTimeMs: 0 });
  const client = new CvatClient({ ...defaultCvatBounds(), baseUrl: emulator.url });
  for await (const t of client.tasks()) {
    if (!t.ok) continue;
    const n = Math.ceil((t.value.size ?? 0) / (t.value.data_chunk_size ?? 36));
    for (let i = 0; i < n; i++)
      await (await client.raw(`/api/tasks/${t.value.id}/data`, { query: { type: 'chunk', number: i, quality: 'compressed' } })).body.dump();
  }
  out.naive = readStats(emulator);
  await client.close();
  await emulator.close();
  return out;
}

/** Requests per discovery poll against `tasks` video tasks of `jobsPerTask` jobs each. */
async function pollCost(tasks, jobsPerTask) {
  const emulator = await startEmulatorChild({
    emulator: { buildTimeMs: 0 },
    deployment: { tasks, mediaType: 'video', framesPerTask: jobsPerTask * 10, segmentSize: 10, overlap: 0, chunkSize: 10 },
  });
  const counting = await countingClient(emulator.url);
  const features = await counting.client.features();
  const discovery = new Discovery({ client: counting.client, features, logger: silentLogger(), fullEvery: 3, onRecord: () => {}, onRemoved: () => {} });
  const passes = [];
  for (let i = 0; i < 4; i++) {
    counting.reset();
    const started = performance.now();
    const pass = await discovery.pass();
    passes.push({ full: pass.full, requests: counting.count(), seconds: (performance.now() - started) / 1000 });
  }
  await counting.client.close();
  await emulator.stop();
  return { tasks, jobs: tasks * jobsPerTask, first: passes[0], incremental: passes[1], full: passes[3] };
}

/** A CvatClient whose requests are counted (through its dispatcher). */
async function countingClient(url) {
  const { Agent } = await import('undici');
  let n = 0;
  const agent = new Agent({ connections: 16 });
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    n++;
    return dispatch(opts, handler);
  });
  const client = new CvatClient({ ...defaultCvatBounds(), baseUrl: url, dispatcher });
  return { client, count: () => n, reset: () => (n = 0) };
}

export async function discoveryCost() {
  return { small: await pollCost(200, 20), large: await pollCost(2000, 20) };
}

/** `--discovery-concurrency`'s default, from the options table (the one place it is written). */
const DEFAULT_DISCOVERY_CONCURRENCY = OPTIONS.find((o) => o.name === 'discovery-concurrency').default;

/** First discovery of 10,000 tasks (2 jobs each, a GT job on every tenth) at 10 ms per API call: serial, the default, twice the default. */
export async function firstDiscovery({ tasks = 10_000, latencyMs = 10 } = {}) {
  const rows = [];
  const deployments = [
    { tasks: tasks * 0.9, mediaType: 'video', framesPerTask: 20, segmentSize: 10, overlap: 0, chunkSize: 10 },
    { tasks: tasks * 0.1, mediaType: 'video', framesPerTask: 20, segmentSize: 10, overlap: 0, chunkSize: 10, groundTruthFrames: 2, firstId: tasks * 0.9 + 1 },
  ];
  const emulator = await startEmulatorChild({ emulator: { buildTimeMs: 0, latencyMs }, deployments });
  for (const concurrency of [1, DEFAULT_DISCOVERY_CONCURRENCY, 2 * DEFAULT_DISCOVERY_CONCURRENCY]) {
    // Serial at 1,000 tasks only (it would take minutes at 10,000): the per-task cost is the same.
    const counting = await countingClient(emulator.url);
    const features = await counting.client.features();
    let records = 0;
    const limit = concurrency === 1 ? tasks / 10 : Infinity;
    const stop = new AbortController();
    const discovery = new Discovery({
      client: counting.client,
      features,
      logger: silentLogger(),
      concurrency,
      onRecord: () => {
        if (++records >= limit) stop.abort();
      },
      onRemoved: () => {},
    });
    const started = performance.now();
    await discovery.pass(stop.signal).catch(() => undefined);
    const seconds = (performance.now() - started) / 1000;
    rows.push({ concurrency, tasks: Math.min(records, tasks), seconds, requests: counting.count(), projected: (seconds * tasks) / Math.min(records, tasks) });
    await counting.client.close();
  }
  await emulator.stop();
  return { tasks, latencyMs, rows };
}

export function report({ coverage: c, discovery: d, first: f }) {
  const pct = (x) => `${fmt(100 * x, 1)} %`;
  const row = (name, s) => `| ${name} | ${pct(s.covered)} | ${s.reads} (${s.context} context images) | ${s.unread} | ${s.rejected} |`;
  const poll = (p) =>
    `| ${p.tasks.toLocaleString('en')} / ${p.jobs.toLocaleString('en')} | ${p.first.requests} (${fmt(p.first.seconds, 1)} s) | ${p.incremental.requests} | ${p.full.requests} |`;
  const serial = f.rows.find((r) => r.concurrency === 1);
  return `## UI reads and discovery (issues 7 and 12)

UI coverage: share of every key the annotation UI reads (compressed chunks of every segment and the context images of every frame with \`related_files > 0\`; the emulator's own oracle \`state.uiReadKeys()\`) warm after one pass, over 8 image tasks (context images on every fourth frame, a GT job, deleted frames, parents completed with live replicas, rejected jobs) and 4 point-cloud tasks (context images on every frame). Baseline: naive warming of every task chunk number through \`/api/tasks/{id}/data\`.

| warmer | UI reads warm (goal 100 %) | UI reads | built but never read | 4xx answers |
|---|---|---|---|---|
${row('cvat-warden (context images on, the default)', c.warden)}
${row('cvat-warden --no-context-images', c.wardenNoContext)}
${row('naive task chunks (baseline)', c.naive)}

Discovery: requests per poll (tasks and jobs listed 500 a page; video tasks of 20 jobs). The first poll reads every task's jobs from one listing sorted by task (a request per 500 jobs) and fetches each task's meta; an incremental poll with nothing changed asks for tasks and jobs updated since the last one; the periodic full listing (every \`fullEvery\` polls) lists all tasks, and through \`jobs.count\` sees jobs added or deleted without any date moving.

| tasks / jobs | first poll | poll, nothing changed (goal: independent of jobs) | full listing, nothing changed |
|---|---|---|---|
${poll(d.small)}
${poll(d.large)}

First discovery at ${f.tasks.toLocaleString('en')} tasks with ${f.latencyMs} ms per API call (every request delayed in the emulator; task objects taken from the list, jobs from one listing sorted by task, meta and GT job meta per task at the given concurrency; goal ≤ 60 s at the default ${DEFAULT_DISCOVERY_CONCURRENCY}). Baseline: serial (concurrency 1), measured over the first ${serial.tasks.toLocaleString('en')} tasks and projected.

| concurrency | seconds | requests | ratio to serial |
|---|---|---|---|
${f.rows.map((r) => `| ${r.concurrency}${r.concurrency === DEFAULT_DISCOVERY_CONCURRENCY ? ' (default)' : ''} | ${r.concurrency === 1 ? `${fmt(r.seconds, 1)} for ${r.tasks.toLocaleString('en')} tasks → ${fmt(r.projected, 0)} projected` : fmt(r.seconds, 1)} | ${r.requests.toLocaleString('en')} | ${fmt(r.projected / serial.projected, 2)}x |`).join('\n')}

`;
}
