// Issues 4 and 21: does warming use CVAT's idle capacity, and does it starve annotators?
// On an emulated CVAT with K = 2 chunk workers (the emulator's FIFO `chunks` queue, like
// CVAT's cvat_worker_chunks: compose NUMPROCS 2, Helm 2 replicas) and a fixed build time:
// 1. idle: the real `cvat-warden warm --all` with default options over a cold backlog,
//    its pass time against the ideal chunks × build ÷ K;
// 2. a probe plays an annotator opening chunks (every PROBE_MS, alternating already-warm
//    and cold chunks of its own task), first with no warming, then while `cvat-warden run`
//    (default settings) warms a large cold backlog in another organization. The probe
//    runs longer than several of the controller's holds (30 s, then 60 s), so every
//    return to both workers while the annotator is there is in the figure.
// Times are scaled 1:4 from issue 4's (2 s between probe requests, ~1 s builds).
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
const SAMPLES = Number(process.env.ANNOTATOR_BENCH_SAMPLES ?? 200);
const IDLE_CHUNKS = Number(process.env.ANNOTATOR_BENCH_IDLE_CHUNKS ?? 400);
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;

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

/** `warm --all` with default options on an idle emulated CVAT: pass time against chunks × build ÷ K. */
export async function idleWarm() {
  const emulator = await startEmulatorChild({
    emulator: { buildTimeMs: BUILD_MS, chunkWorkers: 2, serverWaitMs: 50_000, auth: { users: [{ username: 'admin', isAdmin: true, accessTokens: [TOKEN] }] } },
    deployment: { tasks: 4, mediaType: 'video', targetChunks: IDLE_CHUNKS, segmentSize: 100, chunkSize: 36 },
  });
  const dir = mkdtempSync(join(tmpdir(), 'bench-idle-'));
  try {
    const child = spawn(process.execPath, [CLI, 'warm', '--all', '--json', '--state-dir', dir, '--log-level', 'info', '--log-format', 'json'], {
      env: { ...process.env, CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let logs = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (logs += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`warm exited ${code}: ${logs.slice(-2000)}`);
    const { result } = JSON.parse(out);
    const changes = logs.split('\n').filter((l) => l.includes('warm concurrency changed')).length;
    const idealMs = (result.warm * BUILD_MS) / 2;
    return { chunks: result.warm, seconds: result.durationMs / 1000, idealSeconds: idealMs / 1000, ratio: result.durationMs / idealMs, changes };
  } finally {
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  }
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
      { tasks: 10, targetChunks: 6000, organization: 'backlog', firstId: 1 },
      { tasks: 4, framesPerTask: 4000, segmentSize: 400, chunkSize: 36, organization: 'probe', firstId: 100 },
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

    run = spawn(process.execPath, [CLI, 'run', '--org', 'backlog', '--listen', '127.0.0.1:19464', '--state-dir', dir, '--log-level', 'warn'], {
      env: { ...process.env, CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: TOKEN },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const metricsUrl = 'http://127.0.0.1:19464';
    for (let i = 0; i < 100 && (await warmMetric(metricsUrl).catch(() => 0)) < 3; i++) await sleep(100);
    const before = await warmMetric(metricsUrl);
    const started = performance.now();
    const during = await probe(warm, cold);
    const warmed = (await warmMetric(metricsUrl)) - before;
    const seconds = (performance.now() - started) / 1000;
    const slow = (xs) => xs.filter((ms) => ms > 1.2 * percentile(baseline, 95)).length;
    return {
      samples: SAMPLES,
      slowBaseline: slow(baseline),
      slowWarming: slow(during),
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
  const idle = await idleWarm();
  const r = await measure();
  return [
    '### Idle capacity and annotator protection (issues 4 and 21)',
    '',
    `An emulated CVAT with K = 2 chunk workers (FIFO \`chunks\` queue) and ${BUILD_MS} ms builds (issue 4's ~1 s scaled 1:4), default options throughout (ceiling = --chunk-workers 2, adaptive). Idle: the real \`warm --all\` over ${idle.chunks} cold chunks, nobody else. Annotator: a probe opens one chunk every ${PROBE_MS} ms (alternating warm and cold chunks of its own tasks), ${r.samples} requests (${(r.samples * PROBE_MS) / 1000} s: longer than the controller's first holds of 30 s and 60 s), first alone, then while \`cvat-warden run\` warms a 6,000-chunk cold backlog in another organization.`,
    '',
    '| figure | cvat-warden | baseline | ratio | goal |',
    '|---|---|---|---|---|',
    `| warm time, no annotator, ${idle.chunks} cold chunks (pass time of \`warm --all --json\`; ${idle.changes} concurrency changes logged) | ${fmt(idle.seconds, 1)} s | ideal chunks × build ÷ K = ${fmt(idle.idealSeconds, 1)} s | ${fmt(idle.ratio, 3)} | ≤ 1.15 |`,
    `| annotator probe p95 latency while warming | ${fmt(r.warmingP95, 0)} ms | no warming: ${fmt(r.baselineP95, 0)} ms | ${fmt(r.ratio, 2)} | ≤ 1.2 |`,
    `| probe requests slower than 1.2 × the no-warming p95 | ${r.slowWarming} of ${r.samples} | no warming: ${r.slowBaseline} of ${r.samples} | — | — |`,
    `| probe p50 latency | ${fmt(r.warmingP50, 0)} ms | ${fmt(r.baselineP50, 0)} ms | ${fmt(r.warmingP50 / r.baselineP50, 2)} | — |`,
    `| warm throughput while the annotator reads | ${fmt(r.warmPerSecond, 2)} chunks/s | both workers, no annotators: ${fmt(r.idealPerSecond, 1)} chunks/s | ${fmt(r.warmPerSecond / r.idealPerSecond, 2)} | progressing (> 0) |`,
    '',
  ].join('\n');
}
