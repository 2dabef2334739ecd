// Issue 2 benchmarks: UI coverage, throughput against the ideal, client cost.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { defaultCvatBounds } from '../dist/config/index.js';
import { CvatClient } from '../dist/cvat/client.js';
import { startEmulator, syntheticDeployment } from '../dist/emulator/index.js';
import { silentLogger } from '../dist/log.js';
import { createMetrics } from '../dist/metrics.js';
import { collectTaskRecords } from '../dist/cvat/inventory.js';
import { toPlanTask } from '../dist/plan/from-records.js';
import { planRequests, summarizePlan } from '../dist/plan/planner.js';
import { WarmEngine } from '../dist/warm/engine.js';
import { Ledger } from '../dist/warm/ledger.js';
import { fmt, startEmulatorChild } from './lib.mjs';

const PLAN = { qualities: ['compressed'], previews: false, contextImages: false, skipCompleted: false };
const SCOPE = { all: true, taskIds: [], projectIds: [], jobIds: [] };

async function inventory(client, features) {
  const tasks = [];
  for await (const record of collectTaskRecords(client, SCOPE, { features, withMeta: false, onIssue: () => {} })) {
    const t = toPlanTask(record, { contextImages: false, onIssue: () => {} });
    if (t) tasks.push(t);
  }
  return tasks;
}

async function warmOnce(url, { concurrency, stateDir, maxAgeMs = 3_600_000 }) {
  const client = new CvatClient({ ...defaultCvatBounds(), baseUrl: url, connections: 16 });
  const features = await client.features();
  const tasks = await inventory(client, features);
  const ledger = await Ledger.open(stateDir, { durable: false });
  const plan = { ...PLAN, indexChunks: features.indexChunks };
  const engine = new WarmEngine({
    client,
    features,
    ledger,
    metrics: createMetrics({ buildInfo: { version: 'bench' } }),
    logger: silentLogger(),
    concurrency,
    maxAgeMs,
    coldThresholdMs: 250,
  });
  const started = performance.now();
  const result = await engine.run(planRequests(tasks, plan), summarizePlan(tasks, plan).requests);
  const seconds = (performance.now() - started) / 1000;
  await ledger.close();
  await client.close();
  return { result, seconds };
}

const COVERAGE_DEPLOYMENT = {
  tasks: 6,
  mediaType: 'video',
  framesPerTask: 437,
  chunkSize: 36,
  segmentSize: 100,
  overlap: 5,
  groundTruthFrames: 30,
  consensusReplicas: 2,
};

export async function coverage() {
  // cvat-warden
  let emulator = await startEmulator({ tasks: syntheticDeployment(COVERAGE_DEPLOYMENT), buildTimeMs: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'bench-cov-'));
  await warmOnce(emulator.url, { concurrency: 2, stateDir: dir });
  const ui = emulator.state.uiChunkKeys().size;
  const wardenCold = emulator.state.coldUiChunkKeys().size;
  await emulator.close();
  rmSync(dir, { recursive: true, force: true });
  // naive: every task chunk number through the task endpoint
  emulator = await startEmulator({ tasks: syntheticDeployment(COVERAGE_DEPLOYMENT), buildTimeMs: 0 });
  const client = new CvatClient({ ...defaultCvatBounds(), baseUrl: emulator.url });
  let naiveRequests = 0;
  for await (const t of client.tasks()) {
    if (!t.ok) continue;
    const n = Math.ceil((t.value.size ?? 0) / (t.value.data_chunk_size ?? 36));
    for (let i = 0; i < n; i++) {
      const r = await client.raw(`/api/tasks/${t.value.id}/data`, { query: { type: 'chunk', number: i, quality: 'compressed' } });
      await r.body.dump();
      naiveRequests++;
    }
  }
  const naiveCold = emulator.state.coldUiChunkKeys().size;
  await client.close();
  await emulator.close();
  return { uiChunks: ui, wardenColdFraction: wardenCold / ui, naiveColdFraction: naiveCold / ui, naiveRequests };
}

// 50 ms builds: the emulator's timers overshoot by ~1 ms, which at 20 ms alone is 5 % of the ideal.
export async function throughput({ chunks = 2000, buildTimeMs = 50, workers = 2 } = {}) {
  const out = {};
  for (const [concurrency, count] of [
    [2, chunks],
    [1, chunks / 4],
  ]) {
    const emulator = await startEmulatorChild({
      emulator: { buildTimeMs, chunkWorkers: workers, serverWaitMs: 50_000 },
      deployment: { tasks: 10, mediaType: 'video', targetChunks: count, segmentSize: 100, chunkSize: 36 },
    });
    const dir = mkdtempSync(join(tmpdir(), 'bench-tp-'));
    const { result, seconds } = await warmOnce(emulator.url, { concurrency, stateDir: dir });
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
    const ideal = (result.warm * buildTimeMs) / 1000 / workers;
    out[`c${concurrency}`] = { chunks: result.warm, seconds, idealSeconds: ideal, ratio: seconds / ideal, buildTimeMs };
  }
  return out;
}

export async function clientCost({ chunks = 20_000 } = {}) {
  const emulator = await startEmulatorChild({
    emulator: { buildTimeMs: 0, chunkWorkers: 4 },
    deployment: { tasks: 20, mediaType: 'video', targetChunks: chunks, segmentSize: 500, chunkSize: 36 },
  });
  const dir = mkdtempSync(join(tmpdir(), 'bench-cost-'));
  await warmOnce(emulator.url, { concurrency: 8, stateDir: dir });
  // Already-warm checks: max-age 0 forces every chunk to be asked again; all are cache hits.
  const cpu0 = process.cpuUsage();
  const { result, seconds } = await warmOnce(emulator.url, { concurrency: 8, stateDir: dir, maxAgeMs: 0 });
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  // Baseline in the same run: a bare undici GET loop on the same URLs, same concurrency.
  const client = new CvatClient({ ...defaultCvatBounds(), baseUrl: emulator.url, connections: 16 });
  const features = await client.features();
  const tasks = await inventory(client, features);
  const urls = [...planRequests(tasks, { ...PLAN, indexChunks: true })].map(
    (r) => `${emulator.url}${r.path}?${new URLSearchParams(Object.entries(r.query).map(([k, v]) => [k, String(v)]))}`,
  );
  await client.close();
  const bcpu0 = process.cpuUsage();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < urls.length) {
        const res = await request(urls[next++], { headers: { range: 'bytes=0-0' } });
        await res.body.dump();
      }
    }),
  );
  const bcpu = process.cpuUsage(bcpu0);
  const baselineCpuSeconds = (bcpu.user + bcpu.system) / 1e6;
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
  return {
    checks: result.warm,
    wallSeconds: seconds,
    checksPerCpuSecond: result.warm / cpuSeconds,
    baselineChecksPerCpuSecond: urls.length / baselineCpuSeconds,
    ratioToBaseline: result.warm / cpuSeconds / (urls.length / baselineCpuSeconds),
  };
}

export function report(results) {
  const { coverage: c, throughput: t, clientCost: k, planMemory: m } = results;
  return [
    '### Warming (issue 2)',
    '',
    '| figure | cvat-warden | baseline | ratio | goal |',
    '|---|---|---|---|---|',
    `| UI chunk reads cold after warming (${c.uiChunks} UI chunks; video, overlap 5, segment 100 / chunk 36, GT jobs, consensus replicas) | ${fmt(c.wardenColdFraction * 100, 1)} % | naive task-chunk warming: ${fmt(c.naiveColdFraction * 100, 1)} % (${c.naiveRequests} requests) | — | 0 % |`,
    `| warm time, ${t.c2.chunks} cold chunks, K = 2 workers, ${t.c2.buildTimeMs} ms build, concurrency 2 | ${fmt(t.c2.seconds)} s | ideal chunks × build / K = ${fmt(t.c2.idealSeconds)} s | ${fmt(t.c2.ratio, 3)} | ≤ 1.10 |`,
    `| ${t.c1.chunks} cold chunks at concurrency 1 (an admin ceiling of 1; the default since issue 21 is the chunk-worker count, see the annotator section) | ${fmt(t.c1.seconds)} s | ${fmt(t.c1.idealSeconds)} s | ${fmt(t.c1.ratio, 3)} | (≈ 2 by design) |`,
    `| already-warm chunk checks per CPU-second (client process only; emulator in its own process) | ${fmt(k.checksPerCpuSecond, 0)} /s | bare undici GET loop: ${fmt(k.baselineChecksPerCpuSecond, 0)} /s | ${fmt(k.ratioToBaseline, 2)} | ≥ 3,000 /s |`,
    `| peak RSS planning and ledger-checking ${m.chunks.toLocaleString('en')} chunks | ${fmt(m.streamingPeakRssMB, 0)} MB | the same plan as an array: ${fmt(m.arrayPeakRssMB, 0)} MB | ${fmt(m.streamingPeakRssMB / m.arrayPeakRssMB, 2)} | ≤ 150 MB |`,
    '',
  ].join('\n');
}
