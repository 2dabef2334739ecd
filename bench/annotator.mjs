// Issue 4 benchmark: does warming starve annotators? A probe plays an annotator opening
// chunks (every PROBE_MS, alternating already-warm and cold chunks of its own task) first
// with no warming, then while `cvat-warden run` (default settings) warms a large cold
// backlog on the same emulated CVAT (K = 2 chunk workers). Times are scaled 1:4 from
// the (2 s between probe requests, ~1 s builds) to keep the run short.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { fmt, percentile, startEmulatorChild } from './lib.mjs';

const TOKEN = 'bench-token-0123456789';
const BUILD_MS = 250;
const PROBE_MS = 500;
const SAMPLES = 40;

async function probeChunks(url) {
  const headers = { authorization: `Bearer ${TOKEN}` };
  const res = await request(`${url}/api/jobs?page_size=500&org=probe`, { headers });
  const jobs = (await res.body.json()).results.filter((j) => j.type === 'annotation');
  const chunks = [];
  for (const job of jobs)
    for (let i = 0; i < Math.ceil(job.frame_count / job.data_chunk_size); i++)
      chunks.push(`${url}/api/jobs/${job.id}/data?type=chunk&quality=compressed&index=${i}`);
  return chunks;
}

async function get(url) {
  const started = performance.now();
  const res = await request(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  await res.body.dump({ limit: 1 << 24 });
  return { ms: performance.now() - started, status: res.statusCode };
}

/** SAMPLES requests, one every PROBE_MS, alternating a warm chunk and a cold one. */
async function probe(warm, cold) {
  const latencies = [];
  for (let i = 0; i < SAMPLES; i++) {
    const next = i % 2 === 0 ? warm[(i / 2) % warm.length] : cold.shift();
    const tick = sleep(PROBE_MS);
    const { ms } = await get(next);
    latencies.push(ms);
    await tick;
  }
  return latencies;
}

async function warmMetric(url) {
  const text = await (await request(`${url}/metrics`)).body.text();
  const m = /^cvat_warden_chunk_requests_total\{quality="compressed",outcome="warm"\} (\S+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

export async function measure() {
  const emulator = await startEmulatorChild({
    emulator: {
      buildTimeMs: BUILD_MS,
      chunkWorkers: 2,
      serverWaitMs: 50_000,
      auth: { users: [{ username: 'admin', isAdmin: true, accessTokens: [TOKEN] }] },
      organizations: [
        { id: 1, slug: 'backlog' },
        { id: 2, slug: 'probe' },
      ],
    },
    deployments: [
      { tasks: 10, targetChunks: 3000, organization: 'backlog', firstId: 1 },
      { tasks: 2, framesPerTask: 4000, segmentSize: 400, chunkSize: 36, organization: 'probe', firstId: 100 },
    ],
  });
  const dir = mkdtempSync(join(tmpdir(), 'bench-annotator-'));
  let run;
  try {
    const chunks = await probeChunks(emulator.url);
    const warm = chunks.slice(0, 10);
    for (const c of warm) await get(c);
    const cold = chunks.slice(10);
    const baseline = await probe(warm, cold);

    run = spawn(
      process.execPath,
      [
        new URL('../dist/cli.js', import.meta.url).pathname,
        'run',
        '--org',
        'backlog',
        '--listen',
        '127.0.0.1:19464',
        '--state-dir',
        dir,
        '--log-level',
        'warn',
      ],
      {
        env: { ...process.env, CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: TOKEN },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const metricsUrl = 'http://127.0.0.1:19464';
    for (let i = 0; i < 100 && (await warmMetric(metricsUrl).catch(() => 0)) < 3; i++) await sleep(100);
    const before = await warmMetric(metricsUrl);
    const started = performance.now();
    const during = await probe(warm, cold);
    const warmed = (await warmMetric(metricsUrl)) - before;
    const seconds = (performance.now() - started) / 1000;
    return {
      baselineP95: percentile(baseline, 95),
      warmingP95: percentile(during, 95),
      baselineP50: percentile(baseline, 50),
      warmingP50: percentile(during, 50),
      ratio: percentile(during, 95) / percentile(baseline, 95),
      warmPerSecond: warmed / seconds,
      idealPerSecond: 2000 / BUILD_MS,
    };
  } finally {
    if (run)
      await new Promise((resolve) => {
        run.once('exit', resolve);
        run.kill('SIGTERM');
      });
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchmarkSection() {
  const r = await measure();
  return [
    '### Annotator protection (issue 4)',
    '',
    `An annotator probe opens one chunk every ${PROBE_MS} ms (alternating warm and cold chunks of its own tasks) against an emulated CVAT with K = 2 chunk workers and ${BUILD_MS} ms builds (the issue's 2 s / ~1 s scaled 1:4), first alone, then while \`cvat-warden run\` with default settings (concurrency 1, adaptive) warms a 3,000-chunk cold backlog in another organization.`,
    '',
    '| figure | while warming | no warming (baseline) | ratio | goal |',
    '|---|---|---|---|---|',
    `| probe p95 latency | ${fmt(r.warmingP95, 0)} ms | ${fmt(r.baselineP95, 0)} ms | ${fmt(r.ratio, 2)} | ≤ 1.5 |`,
    `| probe p50 latency | ${fmt(r.warmingP50, 0)} ms | ${fmt(r.baselineP50, 0)} ms | ${fmt(r.warmingP50 / r.baselineP50, 2)} | — |`,
    `| warm throughput during the probe | ${fmt(r.warmPerSecond, 2)} chunks/s | both workers, no annotators: ${fmt(r.idealPerSecond, 1)} chunks/s | ${fmt(r.warmPerSecond / r.idealPerSecond, 2)} | progressing (> 0) |`,
    '',
  ].join('\n');
}
