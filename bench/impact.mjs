#!/usr/bin/env node
/**
 * `impact` benchmark (issue 18) over a share of IMPACT_BENCH_FILES (default 1,000,000)
 * expected files in directories of 100, one share task per directory:
 *
 *   query        impactOf() on the guard's share index once it exists (built here from the
 *                tasks' data meta, as `run` and `impact` build it): one directory (100 files,
 *                median of 21), a top-level tenth of the share, and the whole share. Baseline
 *                in the same run: the same one-directory answer by a pass over every file slot
 *                (what a query without the index's directory map costs).
 *   process      `cvat-warden impact d42 --json` as a process against a fast fake CVAT in a
 *                child (fast-cvat.mjs) serving the same 1,000,000 frame names: the CLI streams
 *                every task's data meta from CVAT and indexes only the task that can read d42.
 *                Baseline: `impact --task <that task>` (one task fetched: the CLI's fixed cost).
 *
 * Nothing is stat-ed: the share directory is empty (impact answers from CVAT's data).
 * Usage: npm run build && node --expose-gc bench/impact.mjs   (IMPACT_BENCH_SKIP_PROCESS=1 for the query alone)
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '../dist');
const FILES = Number(process.env.IMPACT_BENCH_FILES ?? 1_000_000);
const PER_DIR = 100;
const DIRS = Math.max(1, Math.floor(FILES / PER_DIR));
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function taskFor(d) {
  const frames = Array.from({ length: PER_DIR }, (_, i) => ({ name: `top${d % 10}/d${d}/f${i}.jpg` }));
  return {
    taskId: d + 1,
    taskName: `task ${d + 1}`,
    storage: 'share',
    isVideo: false,
    meta: { chunk_size: 36, size: PER_DIR, start_frame: 0, stop_frame: PER_DIR - 1, frame_filter: '', frames },
    jobs: [{ id: d + 1, type: 'annotation', startFrame: 0, stopFrame: PER_DIR - 1, includedFrames: null, chunkSize: 36, state: 'new' }],
  };
}

async function measureQuery(root) {
  const guard = await import(pathToFileURL(path.join(dist, 'guard/index.js')).href);
  const resolver = new guard.ShareRootResolver(root, guard.nodeFs);
  const ctx = { fs: guard.nodeFs, resolver, lister: new guard.DirLister(guard.nodeFs, (rel) => resolver.abs(rel)), includeUnknownStorage: false };
  const index = new guard.ShareIndex();
  let t = performance.now();
  for (let d = 0; d < DIRS; d++) await guard.addTaskToIndex(index, taskFor(d), ctx);
  const buildMs = performance.now() - t;
  const dir = `top2/d${42 % DIRS}`;
  const one = [];
  let oneResult;
  for (let i = 0; i < 21; i++) {
    t = performance.now();
    oneResult = guard.impactOf(index, [dir]);
    one.push(performance.now() - t);
  }
  t = performance.now();
  const tenth = guard.impactOf(index, ['top3']);
  const tenthMs = performance.now() - t;
  t = performance.now();
  const all = guard.impactOf(index, ['']);
  const allMs = performance.now() - t;
  // Baseline: every slot's path tested against the directory.
  const scan = [];
  let scanned = 0;
  for (let i = 0; i < 5; i++) {
    t = performance.now();
    scanned = 0;
    for (let f = 0; f < index.slotCount; f++) if (index.names[f] !== undefined && guard.isUnder(index.relPath(f), dir)) scanned++;
    scan.push(performance.now() - t);
  }
  if (scanned !== oneResult.slots.length) throw new Error(`baseline found ${scanned} files, impact ${oneResult.slots.length}`);
  return {
    index,
    guard,
    files: index.liveFiles,
    buildSeconds: round(buildMs / 1000, 2),
    oneDirMs: round(median(one), 3),
    oneDirFiles: oneResult.slots.length,
    oneDirTasks: oneResult.tasks.length,
    tenthMs: round(tenthMs),
    tenthFiles: tenth.slots.length,
    tenthTasks: tenth.tasks.length,
    allMs: round(allMs),
    allTasks: all.tasks.length,
    baselineScanMs: round(median(scan), 1),
  };
}

function startFastCvat() {
  return new Promise((resolve, reject) => {
    const options = { tasks: 0, shareDirs: DIRS, filesPerDir: PER_DIR };
    const child = spawn(process.execPath, [path.join(here, 'fast-cvat.mjs'), JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /URL (\S+)/.exec(out);
      if (m) resolve({ url: m[1], stop: () => new Promise((r) => (child.once('exit', r), child.kill('SIGTERM'))) });
    });
    child.on('exit', (code) => reject(new Error(`fast-cvat exited ${code}`)));
  });
}

function timed(args, env) {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, [path.join(dist, 'cli.js'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, ms: performance.now() - started, stdout, stderr }));
  });
}

/**
 * The running service's GET /impact over the same index: the daemon's own query parser and
 * the guard's impactAnswer (what WardenService serves), hosted here so that the million-file
 * index need not be rebuilt inside a real service with a million files on disk.
 */
async function startIndexService(index, guard) {
  const { parseImpactQuery } = await import(pathToFileURL(path.join(dist, 'daemon/impact-route.js')).href);
  const server = http.createServer((req, res) => {
    const query = parseImpactQuery(req.url);
    if ('errors' in query) return void res.writeHead(400).end(JSON.stringify({ error: query.errors.join('; ') }));
    const answer = guard.impactAnswer(index, query.paths, undefined, query.taskIds.length ? new Set(query.taskIds) : undefined);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ paths: query.paths, ...answer }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { listen: `127.0.0.1:${server.address().port}`, stop: () => new Promise((r) => server.close(r)) };
}

async function measureProcess(root, q) {
  const cvat = await startFastCvat();
  const service = await startIndexService(q.index, q.guard);
  try {
    const share = path.join(root, 'share');
    fs.mkdirSync(share, { recursive: true });
    const env = { CVAT_URL: cvat.url, CVAT_ACCESS_TOKEN: 'bench-token', CVAT_WARDEN_STATE_DIR: path.join(root, 'state'), LOG_LEVEL: 'warn' };
    const d = 42 % DIRS;
    const noService = ['--listen', '127.0.0.1:1'];
    const one = await timed(['impact', '--task', String(d + 1), '--share-dir', share, '--json', ...noService], env);
    const dir = await timed(['impact', `d${d}`, '--share-dir', share, '--json', ...noService], env);
    const parsed = JSON.parse(dir.stdout);
    if (parsed.files !== PER_DIR || parsed.tasks.length !== 1 || parsed.answeredBy !== 'cvat')
      throw new Error(`impact d${d}: ${parsed.files} files, ${parsed.tasks.length} tasks (${dir.stderr})`);
    const served = [];
    let viaService;
    for (let i = 0; i < 5; i++) {
      viaService = await timed(['impact', `top2/d${d}`, '--share-dir', share, '--json', '--listen', service.listen], env);
      served.push(viaService.ms);
    }
    const fromService = JSON.parse(viaService.stdout);
    if (fromService.answeredBy !== 'service' || fromService.files !== PER_DIR || fromService.tasks.length !== 1)
      throw new Error(`impact via the service: ${viaService.stdout.slice(0, 300)} ${viaService.stderr}`);
    return {
      dirMs: Math.round(dir.ms),
      dirExit: dir.code,
      tasksConsidered: parsed.tasksConsidered,
      oneTaskMs: Math.round(one.ms),
      serviceMs: Math.round(median(served)),
    };
  } finally {
    await service.stop();
    await cvat.stop();
  }
}

export async function benchmarkSection() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-bench-'));
  try {
    const q = await measureQuery(root);
    const p = process.env.IMPACT_BENCH_SKIP_PROCESS ? undefined : await measureProcess(root, q);
    const lines = [
      '### Impact: what breaks if I delete this (issue 18)',
      '',
      `${q.files.toLocaleString('en')} expected share files in directories of ${PER_DIR}, one share task each; nothing stat-ed (impact answers from CVAT's task data). \`node bench/impact.mjs\`.`,
      '',
      '| Measure | Result | Baseline (same run) | Goal |',
      '|---|---|---|---|',
      `| \`impact DIR\` once the share index exists: one directory (${q.oneDirFiles} files, ${q.oneDirTasks} task), median of 21 | ${q.oneDirMs} ms | ${q.baselineScanMs} ms for a pass over every file slot (×${round(q.baselineScanMs / Math.max(q.oneDirMs, 0.001), 0)}) | < 2 s: ${q.oneDirMs < 2000 ? 'met' : 'NOT met'} |`,
      `| the same, a top-level directory (${q.tenthFiles.toLocaleString('en')} files, ${q.tenthTasks} tasks) | ${q.tenthMs} ms | | < 2 s: ${q.tenthMs < 2000 ? 'met' : 'NOT met'} |`,
      `| the same, the whole share (${q.allTasks} tasks) | ${q.allMs} ms | | |`,
      `| building that index from the tasks' data meta (what \`run\` holds already) | ${q.buildSeconds} s | | |`,
    ];
    if (p)
      lines.push(
        `| \`cvat-warden impact DIR --json\` as a process beside a running service (its GET /impact over this index; job states of the 1 task from the fake CVAT), median of 5 | ${p.serviceMs} ms | the same without a service (below): ${p.dirMs} ms (×${round(p.dirMs / Math.max(p.serviceMs, 1), 1)}) | < 2 s: ${p.serviceMs < 2000 ? 'met' : 'NOT met'} |`,
        `| \`cvat-warden impact DIR --json\` as a process against a fake CVAT child serving the ${q.files.toLocaleString('en')} frame names (${p.tasksConsidered} tasks' meta streamed, one indexed) | ${p.dirMs} ms, exit ${p.dirExit} | \`impact --task ID\` (one task fetched, the CLI's fixed cost): ${p.oneTaskMs} ms | (CVAT's meta listing dominates) |`,
      );
    return `${lines.join('\n')}\n`;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) console.log(await benchmarkSection());
