// `npm run bench -- scale`: the service as users run it. A fast fake CVAT (fast-cvat.mjs)
// in a child process, the real CLI (`node dist/cli.js run`) as another, and this process
// probing /healthz, /readyz and /status from outside. Per size (100 k, 300 k, 1 M chunks in
// jobs of 25 chunks): cold start to ready and to all warm, restart to ready (and to every
// task evaluated), /healthz worst latency during both, chunks re-requested after the
// restart, steady-state CPU per minute, peak RSS (VmHWM); the real `warm --all` at the
// largest size under /usr/bin/time; and `run` with the guard over 1 M share files, beside
// the bare pipeline of guard-floor.mjs over the same files.
// SCALE_BENCH_SIZES=100000,300000 to shrink; SCALE_BENCH_STEADY_S (300) for the CPU window (SCALE_BENCH_SETTLE_S, 60, after all is warm);
// SCALE_BENCH_GUARD_FILES (1000000, 0 to skip) for the guard figure; SCALE_BENCH_PARTS
// (service,warm,guard; `big` = the largest size with the ledger made by `warm --all`, see
// bigRun) to measure only some parts (the others come from the last run).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fmt, machine } from './lib.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
// SCALE_BENCH_CLI: a copy of dist/cli.js to measure, so rebuilding meanwhile does not change it.
const CLI = process.env.SCALE_BENCH_CLI ?? path.resolve(here, '../dist/cli.js');
const TOKEN = 'bench-token-0123456789';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TICKS = 100; // clock ticks per second on Linux

function startFastCvat(options) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'fast-cvat.mjs'), JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      if (out === undefined) return;
      out += d;
      const m = /URL (\S+) chunks=(\d+)/.exec(out);
      if (!m) return;
      out = undefined;
      const cvat = { url: m[1], chunks: Number(m[2]), pid: child.pid, stop: () => new Promise((r) => (child.once('exit', r), child.kill('SIGTERM'))) };
      // This process's first fetch loads undici's fetch (~1 s on a busy machine): pay it here,
      // not in the first /healthz probe, which would charge it to the service.
      getJson(`${cvat.url}/__stats`).then(() => resolve(cvat), reject);
    });
    child.on('exit', (code) => reject(new Error(`fast-cvat exited ${code}`)));
  });
}

const getJson = async (url) => (await fetch(url, { signal: AbortSignal.timeout(30_000) })).json();

function procStatus(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return undefined;
  }
}

/** CPU-seconds of a process (every thread, exited ones included), or of one thread with `tid`. */
function cpuSeconds(pid, tid) {
  const stat = fs.readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS; // utime, stime (fields 14, 15)
}

/** `cvat-warden run` as a process; resolves once its HTTP URL is logged. */
function startRun(cvatUrl, stateDir, extra = []) {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [CLI, 'run', '--listen', '127.0.0.1:0', '--state-dir', stateDir, '--concurrency', '8', '--cold-threshold', '0ms', ...extra],
    {
      env: { ...process.env, CVAT_URL: cvatUrl, CVAT_ACCESS_TOKEN: TOKEN, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let tail = '';
  let peak = 0;
  const hwm = setInterval(() => (peak = Math.max(peak, procStatus(child.pid) ?? 0)), 200);
  const exited = new Promise((resolve) => child.on('exit', (code) => (clearInterval(hwm), resolve(code))));
  const url = new Promise((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d) => {
      tail = (tail + d).slice(-20_000);
      const m = /"url":"(http:\/\/[^"]+)"/.exec(tail);
      if (m) resolve(m[1]);
    });
    exited.then((code) => reject(new Error(`run exited ${code}: ${tail.slice(-2000)}`)));
  });
  return {
    child,
    started,
    url,
    exited,
    peakRssMB: () => Math.max(peak, procStatus(child.pid) ?? 0),
    cpu: () => cpuSeconds(child.pid),
    /** The main thread's share of cpu() (the rest: the stat thread, V8's GC helpers, libuv's pool). */
    mainThreadCpu: () => cpuSeconds(child.pid, child.pid),
    stop: async () => {
      peak = Math.max(peak, procStatus(child.pid) ?? 0);
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Probes /healthz back to back (100 ms apart) until stopped; returns the worst latency seen. */
function probeHealth(url) {
  let worst = 0;
  let probes = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t = performance.now();
      try {
        const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(30_000) });
        await r.arrayBuffer();
        worst = Math.max(worst, performance.now() - t);
        probes++;
      } catch {
        worst = Math.max(worst, performance.now() - t);
      }
      await sleep(100);
    }
  })();
  return { stop: async () => ((stopped = true), await loop, { worstMs: worst, probes }) };
}

async function until(what, probe, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const ready = async (url) => (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(30_000) })).status === 200;

/** Seconds the service is left alone before its steady-state CPU window (the after-start-up GCs and JIT settle). */
const SETTLE_S = Number(process.env.SCALE_BENCH_SETTLE_S ?? 60);

const allWarm = (cvat) => ({ what: 'all warm', probe: async () => (await getJson(`${cvat.url}/__stats`)).distinctChunks >= cvat.chunks });
const allEvaluated = (cvat) => ({ what: 'every task evaluated', probe: async (url) => (await getJson(`${url}/status`)).warm.chunks?.warm >= cvat.chunks });

/**
 * One `run` on `stateDir` (CVAT's counters zeroed first): seconds to ready and, with
 * `settled`, to that condition; /healthz worst latency over both; the chunk requests it
 * made; with `steadySeconds`, its CPU per minute over that window after SETTLE_S; peak RSS.
 */
async function serviceRun(cvat, stateDir, { settled, steadySeconds }) {
  await getJson(`${cvat.url}/__reset`);
  const run = startRun(cvat.url, stateDir);
  const url = await run.url;
  const health = probeHealth(url);
  const r = {};
  await until(`${stateDir}: ready`, () => ready(url), 600_000);
  r.readyS = (performance.now() - run.started) / 1000;
  if (settled) {
    await until(`${stateDir}: ${settled.what}`, () => settled.probe(url), 1_800_000);
    r.settledS = (performance.now() - run.started) / 1000;
  }
  await sleep(5_000); // the last pass ends and its tasks are evaluated
  r.healthWorstMs = (await health.stop()).worstMs;
  r.requested = (await getJson(`${cvat.url}/__stats`)).chunkRequests;
  if (steadySeconds) {
    await sleep(SETTLE_S * 1000);
    const cpu0 = run.cpu();
    await sleep(steadySeconds * 1000);
    r.steadyCpuPerMin = ((run.cpu() - cpu0) * 60) / steadySeconds;
  }
  r.peakRssMB = run.peakRssMB();
  r.exit = await run.stop();
  return r;
}

/** One size's figures from its cold start and its restart (serviceRun results); `steady` says which run's CPU window counts. */
function sizeRow(cvat, cold, restart, steady) {
  const tasks = cvat.chunks / 100;
  return {
    chunks: cvat.chunks,
    tasks,
    jobs: tasks * 4,
    coldReadyS: cold.readyS,
    coldWarmS: cold.settledS,
    coldHealthWorstMs: cold.healthWorstMs,
    coldPeakRssMB: cold.peakRssMB,
    coldExit: cold.exit,
    restartReadyS: restart.readyS,
    restartEvaluatedS: restart.settledS,
    restartHealthWorstMs: restart.healthWorstMs,
    reRequested: restart.requested,
    restartPeakRssMB: restart.peakRssMB,
    restartExit: restart.exit,
    steadyCpuPerMin: steady.steadyCpuPerMin,
    steadySeconds: steady.steadySeconds,
    settleSeconds: SETTLE_S,
  };
}

/** Cold start on an empty ledger until all is warm (steady-state CPU measured then), then a restart on that ledger. */
async function scaleRun(chunks, steadySeconds) {
  const tasks = chunks / 100;
  const cvat = await startFastCvat({ tasks, jobsPerTask: 4, chunksPerJob: 25 });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-bench-'));
  try {
    const cold = await serviceRun(cvat, stateDir, { settled: allWarm(cvat), steadySeconds });
    const restart = await serviceRun(cvat, stateDir, { settled: allEvaluated(cvat) });
    return sizeRow(cvat, cold, restart, { steadyCpuPerMin: cold.steadyCpuPerMin, steadySeconds });
  } finally {
    await cvat.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

/** The real `warm --all` on an empty ledger (`stateDir`), under /usr/bin/time -v. */
async function warmAllInto(cvat, stateDir) {
  const started = performance.now();
  const { code, stderr } = await new Promise((resolve) => {
    const child = spawn(
      '/usr/bin/time',
      ['-v', process.execPath, CLI, 'warm', '--all', '--state-dir', stateDir, '--concurrency', '8', '--cold-threshold', '0ms'],
      {
        env: { ...process.env, CVAT_URL: cvat.url, CVAT_ACCESS_TOKEN: TOKEN, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (d) => (err = (err + d).slice(-20_000)));
    child.on('exit', (c) => resolve({ code: c, stderr: err }));
  });
  const rssKB = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ?? NaN);
  const stats = await getJson(`${cvat.url}/__stats`);
  return { chunks: cvat.chunks, code, seconds: (performance.now() - started) / 1000, peakRssMB: rssKB / 1024, requested: stats.distinctChunks };
}

async function warmAll(chunks) {
  const cvat = await startFastCvat({ tasks: chunks / 100, jobsPerTask: 4, chunksPerJob: 25 });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-warm-'));
  try {
    return await warmAllInto(cvat, stateDir);
  } finally {
    await cvat.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

/**
 * The largest size without waiting for `run` to warm everything itself (SCALE_BENCH_PARTS=big):
 * its adaptive concurrency, which yields to annotators when hit latency rises, throttles a
 * cold pass to one request a second on a heavily loaded machine, so the warm ledger is made
 * by the real `warm --all` (its figure too), the cold start is measured to ready, and the
 * restart runs on that ledger (steady-state CPU measured on it).
 */
async function bigRun(chunks, steadySeconds) {
  const tasks = chunks / 100;
  const cvat = await startFastCvat({ tasks, jobsPerTask: 4, chunksPerJob: 25 });
  const warmDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-big-'));
  const coldDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-cold-'));
  try {
    console.error('bench scale: warm --all into the ledger…');
    const warm = await warmAllInto(cvat, warmDir);
    console.error(JSON.stringify(warm));
    console.error('bench scale: cold start to ready…');
    const cold = await serviceRun(cvat, coldDir, {});
    console.error('bench scale: restart on the warm ledger…');
    const restart = await serviceRun(cvat, warmDir, { settled: allEvaluated(cvat), steadySeconds });
    const run = sizeRow(cvat, { ...cold, settledS: NaN }, restart, { steadyCpuPerMin: restart.steadyCpuPerMin, steadySeconds });
    return { run, warm };
  } finally {
    await cvat.stop();
    fs.rmSync(warmDir, { recursive: true, force: true });
    fs.rmSync(coldDir, { recursive: true, force: true });
  }
}

/**
 * `find DIR -printf` over the same tree, as the disk-speed baseline of the guard's ready
 * time: one line per entry with the size, mtime and path it prints (what the guard's first
 * scan learns), read to the end. Returns seconds and the lines it printed.
 */
function timeFind(dir) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('find', [dir, '-printf', '%s %T@ %p\n'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let lines = 0;
    child.stdout.on('data', (d) => {
      for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) lines++;
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve({ seconds: (performance.now() - started) / 1000, lines }) : reject(new Error(`find exited ${code}`))));
  });
}

/**
 * The bare pipeline (guard-floor.mjs) over the same fake CVAT and tree: what any Node
 * program pays to know every share file's stat, without the guard's own work. Returns its
 * figures and the fake CVAT's CPU while it ran.
 */
function timeFloor(cvat, share) {
  return new Promise((resolve, reject) => {
    const cvatCpuBefore = cpuSeconds(cvat.pid);
    const child = spawn(process.execPath, [path.join(here, 'guard-floor.mjs'), JSON.stringify({ url: cvat.url, share, token: TOKEN })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`guard-floor exited ${code}`));
      resolve({ ...JSON.parse(out), cvatCpuS: cpuSeconds(cvat.pid) - cvatCpuBefore });
    });
  });
}

/**
 * `run --share-dir` over `files` share files in files/100 directories, with `find -printf`
 * over the same tree just before and just after it (the ratio uses their mean), and the
 * bare pipeline (timeFloor) between the run and the second `find`.
 */
async function guardRun(files) {
  const dirs = Math.max(1, Math.floor(files / 100));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-guard-'));
  const share = path.join(root, 'share');
  const t0 = performance.now();
  for (let d = 0; d < dirs; d++) {
    const dir = path.join(share, `d${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 100; i++) fs.closeSync(fs.openSync(path.join(dir, `f${i}.jpg`), 'w'));
  }
  const generateS = (performance.now() - t0) / 1000;
  const cvat = await startFastCvat({ tasks: 0, shareDirs: dirs, filesPerDir: 100 });
  try {
    const findBefore = await timeFind(share);
    const cvatCpuBefore = cpuSeconds(cvat.pid);
    const run = startRun(cvat.url, path.join(root, 'state'), ['--share-dir', share]);
    const url = await run.url;
    const health = probeHealth(url);
    await until('guard ready', () => ready(url), 1_200_000);
    const readyS = (performance.now() - run.started) / 1000;
    const status = await getJson(`${url}/status`);
    const healthWorstMs = (await health.stop()).worstMs;
    const peakRssMB = run.peakRssMB();
    const cpuS = run.cpu();
    const mainThreadS = run.mainThreadCpu();
    const cvatCpuS = cpuSeconds(cvat.pid) - cvatCpuBefore;
    await run.stop();
    const floor = await timeFloor(cvat, share);
    if (floor.present !== files) throw new Error(`guard-floor stat-ed ${floor.present} of ${files} files`);
    const findAfter = await timeFind(share);
    const findS = (findBefore.seconds + findAfter.seconds) / 2;
    const load = os.loadavg()[0];
    return {
      files,
      dirs,
      generateS,
      readyS,
      peakRssMB,
      healthWorstMs,
      filesExpected: status.share?.filesExpected ?? 0,
      cpuS,
      mainThreadS,
      cvatCpuS,
      findS,
      findLines: findAfter.lines,
      floorS: floor.seconds,
      floorCpuS: floor.cpuS,
      floorCvatCpuS: floor.cvatCpuS,
      load,
    };
  } finally {
    await cvat.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const SAVED = path.join(os.tmpdir(), 'cvat-warden-scale-bench.json');

/**
 * Measures the parts named in SCALE_BENCH_PARTS (service,warm,guard; all by default) and
 * merges them with parts measured earlier on this machine (kept in SAVED), so one part can
 * be measured again, or later, without re-running the hour-long 1 M sizes.
 */
export async function measure() {
  const parts = new Set((process.env.SCALE_BENCH_PARTS ?? 'service,warm,guard').split(','));
  const saved = fs.existsSync(SAVED) ? JSON.parse(fs.readFileSync(SAVED, 'utf8')) : {};
  const sizes = (process.env.SCALE_BENCH_SIZES ?? '100000,300000,1000000').split(',').map(Number);
  const steady = Number(process.env.SCALE_BENCH_STEADY_S ?? 300);
  if (parts.has('service')) {
    // Sizes measured now replace their earlier figures; other sizes keep theirs.
    const fresh = [];
    for (const size of sizes) {
      console.error(`bench scale: ${size} chunks (cold start, steady state, restart)…`);
      fresh.push(await scaleRun(size, steady));
      console.error(JSON.stringify(fresh.at(-1)));
    }
    saved.runs = [...(saved.runs ?? []).filter((r) => !sizes.includes(r.chunks)), ...fresh].sort((a, b) => a.chunks - b.chunks);
    fs.writeFileSync(SAVED, JSON.stringify(saved));
  }
  if (parts.has('big')) {
    const size = Number(process.env.SCALE_BENCH_BIG ?? 1_000_000);
    console.error(`bench scale: ${size} chunks (warm --all, cold start to ready, restart, steady state)…`);
    const big = await bigRun(size, steady);
    console.error(JSON.stringify(big.run));
    saved.runs = [...(saved.runs ?? []).filter((r) => r.chunks !== big.run.chunks), big.run].sort((a, b) => a.chunks - b.chunks);
    saved.warm = big.warm;
    fs.writeFileSync(SAVED, JSON.stringify(saved));
  }
  if (parts.has('warm')) {
    const largest = Math.max(...sizes);
    console.error(`bench scale: warm --all at ${largest} chunks…`);
    saved.warm = await warmAll(largest);
    console.error(JSON.stringify(saved.warm));
    fs.writeFileSync(SAVED, JSON.stringify(saved));
  }
  // One size or several (SCALE_BENCH_GUARD_FILES=100000,1000000,3000000): the rows show how time and memory grow.
  const guardSizes = (process.env.SCALE_BENCH_GUARD_FILES ?? '1000000')
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
  if (parts.has('guard') && guardSizes.length > 0) {
    const rows = [];
    for (const files of guardSizes) {
      console.error(`bench scale: run with the guard over ${files} share files…`);
      rows.push(await guardRun(files));
      console.error(JSON.stringify(rows.at(-1)));
    }
    saved.guard = rows;
    fs.writeFileSync(SAVED, JSON.stringify(saved));
  }
  if (!saved.runs || !saved.warm) throw new Error(`scale bench: no service or warm figures yet (run with SCALE_BENCH_PARTS including them); saved: ${SAVED}`);
  return saved;
}

const mark = (ok) => (ok ? 'met' : '**missed**');

export function report({ runs, warm, guard }) {
  const base = runs[0];
  const lines = [
    '### The service at scale (`npm run bench -- scale`)',
    '',
    `A fast fake CVAT 2.73 (\`bench/fast-cvat.mjs\`: lists as CVAT shapes them, instant 206 chunk answers) in one child process, the real \`node dist/cli.js run --concurrency 8 --cold-threshold 0ms\` in another, probed from outside: /healthz every 100 ms, /readyz for ready, /status for "every task evaluated". Jobs of 25 chunks, 4 jobs per task. Peak RSS is the process's VmHWM. Steady-state CPU is utime+stime of the service per minute over the window given beside it, starting that long after all is warm (one discovery poll a minute, a full task listing every ten; the fake honours the \`updated_date\` filter on tasks and jobs as CVAT does). Runs: n=1 each.`,
    '',
    '| chunks (tasks) | cold → ready | cold → all warm | restart → ready (restart/cold) | restart → all evaluated | /healthz worst cold / restart | re-requested after restart | steady CPU-s/min | peak RSS cold / restart |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of runs) {
    const x = r.chunks / base.chunks;
    lines.push(
      `| ${r.chunks.toLocaleString('en')} (${r.tasks.toLocaleString('en')}) | ${fmt(r.coldReadyS)} s${r === base ? '' : ` (${fmt(r.coldReadyS / base.coldReadyS, 1)}× of ${fmt(x, 0)}×)`} | ${Number.isFinite(r.coldWarmS) ? `${fmt(r.coldWarmS, 1)} s${r === base ? '' : ` (${fmt(r.coldWarmS / base.coldWarmS, 1)}×)`}` : 'not measured: see below'} | ${fmt(r.restartReadyS)} s (${fmt(r.restartReadyS / r.coldReadyS)}×)${r === base ? '' : `, ${fmt(r.restartReadyS / base.restartReadyS, 1)}× the smallest`} | ${fmt(r.restartEvaluatedS, 1)} s${r === base ? '' : ` (${fmt(r.restartEvaluatedS / base.restartEvaluatedS, 1)}×)`} | ${fmt(r.coldHealthWorstMs, 0)} / ${fmt(r.restartHealthWorstMs, 0)} ms | ${r.reRequested} (${fmt((100 * r.reRequested) / r.chunks, 3)} %) | ${fmt(r.steadyCpuPerMin, 3)} (${r.steadySeconds ?? '?'} s, after ${r.settleSeconds ?? '?'} s) | ${fmt(r.coldPeakRssMB, 0)} / ${fmt(r.restartPeakRssMB, 0)} MB |`,
    );
  }
  const big = runs.at(-1);
  const worstRatio = Math.max(...runs.map((r) => r.restartReadyS / r.coldReadyS));
  const linear = big.restartReadyS / base.restartReadyS;
  const worstHealth = Math.max(...runs.flatMap((r) => [r.coldHealthWorstMs, r.restartHealthWorstMs]));
  const worstRe = Math.max(...runs.map((r) => r.reRequested / r.chunks));
  lines.push(
    '',
    `Real \`warm --all\` at ${warm.chunks.toLocaleString('en')} chunks on an empty ledger: ${fmt(warm.seconds, 1)} s, peak RSS ${fmt(warm.peakRssMB, 0)} MB (\`/usr/bin/time -v\`), exit ${warm.code}, ${warm.requested.toLocaleString('en')} distinct chunks requested.`,
  );
  // Earlier runs saved one guard row; now a row per size.
  const guards = guard === undefined ? [] : Array.isArray(guard) ? guard : [guard];
  if (guards.length) lines.push('', ...guardTable(guards));
  lines.push(
    '',
    'Goals (issue 12):',
    '',
    `- restart → ready ≤ 3× cold → ready at every size: worst ${fmt(worstRatio)}× — ${mark(worstRatio <= 3)}`,
    `- restart ${fmt(big.chunks / base.chunks, 0)}× the chunks ≤ 12× the time: ${fmt(linear, 1)}× — ${mark(linear <= 12)}`,
    `- /healthz ≤ 1 s at every probe: worst ${fmt(worstHealth, 0)} ms — ${mark(worstHealth <= 1000)}`,
    `- ≤ 1 % of warm chunks re-requested after a restart: worst ${fmt(100 * worstRe, 3)} % — ${mark(worstRe <= 0.01)}`,
    `- steady-state CPU at ${big.chunks.toLocaleString('en')} chunks ≤ 0.2 CPU-s per minute: ${fmt(big.steadyCpuPerMin, 3)} — ${mark(big.steadyCpuPerMin <= 0.2)}`,
    `- real \`warm --all\` at ${warm.chunks.toLocaleString('en')} chunks ≤ 150 MB: ${fmt(warm.peakRssMB, 0)} MB — ${mark(warm.peakRssMB <= 150)}`,
  );
  const million = guards.find((g) => g.files === 1_000_000);
  if (million?.findS)
    lines.push(
      `- \`run\` with the guard at 1,000,000 files ready ≤ 2× \`find -printf\` and ≤ 300 MB (issue 21): ${fmt(million.readyS / million.findS, 1)}×, ${fmt(million.peakRssMB, 0)} MB — ${mark(million.readyS <= 2 * million.findS && million.peakRssMB <= 300)}${million.floorS ? ` (the bare pipeline alone: ${fmt(million.floorS / million.findS, 1)}×)` : ''}`,
    );
  const slope = guardSlope(guards);
  if (slope)
    lines.push(
      `- memory per share file above the base (issue 21), ${slope.from.toLocaleString('en')} → ${slope.to.toLocaleString('en')} files: ${fmt(slope.bytesPerFile, 0)} B — ${mark(slope.bytesPerFile <= 200)}`,
    );
  return lines.join('\n') + '\n';
}

/** Peak RSS per share file between the smallest and the largest guard row (the base cancels out). */
function guardSlope(guards) {
  if (guards.length < 2) return undefined;
  const [a, b] = [guards[0], guards.at(-1)];
  return { from: a.files, to: b.files, bytesPerFile: ((b.peakRssMB - a.peakRssMB) * 1024 * 1024) / (b.files - a.files) };
}

/**
 * Where the CPU to ready went: the warden's main thread, its other threads (the stat thread,
 * V8's GC helpers, libuv's pool) and the fake CVAT, and how many of the machine's cores that
 * kept busy on average — the start is short of CPU when that nears the core count.
 */
function cpuSplit(g) {
  if (g.mainThreadS === undefined || g.cvatCpuS === undefined || g.cpuS === undefined) return '—';
  return `${fmt(g.mainThreadS, 1)} / ${fmt(g.cpuS - g.mainThreadS, 1)} / ${fmt(g.cvatCpuS, 1)} (${fmt((g.cpuS + g.cvatCpuS) / g.readyS, 2)})`;
}

/** The bare pipeline's time (its CPU with the fake CVAT's), its ratio to `find` and `run`'s ratio to it. */
function floorCells(g) {
  if (g.floorS === undefined) return '— | — | —';
  return `${fmt(g.floorS, 1)} s (${fmt(g.floorCpuS + g.floorCvatCpuS, 1)}) | ${g.findS ? `${fmt(g.floorS / g.findS, 1)}×` : '—'} | ${fmt(g.readyS / g.floorS, 1)}×`;
}

export function guardTable(guards) {
  const base = guards[0];
  const lines = [
    "`run --share-dir` over share files in directories of 100 (one share-backed task per directory; the tree is generated first and not counted), and `find SHARE -printf '%s %T@ %p\\n'` over the same tree just before and just after the run (mean of the two). The bare pipeline (`bench/guard-floor.mjs`, run after `run` against the same fake CVAT) does only what no guard can skip in Node: list tasks and jobs, GET and `JSON.parse` every task's data/meta six at a time, `statSync` every frame's file on a worker thread; its CPU-s include the fake CVAT's:",
    '',
    '| share files | ready | `find -printf` | ready / find | bare pipeline (CPU-s) | bare / find | ready / bare | peak RSS | RSS per file above the smallest row | ready per file vs the smallest row | CPU-s to ready | main thread / other threads / fake CVAT, CPU-s (cores busy) | /healthz worst | load (1 min) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const g of guards) {
    const above = g === base ? '—' : `${fmt(((g.peakRssMB - base.peakRssMB) * 1024 * 1024) / (g.files - base.files), 0)} B`;
    const perFile = g === base ? '—' : `${fmt(g.readyS / g.files / (base.readyS / base.files), 2)}×`;
    lines.push(
      `| ${g.files.toLocaleString('en')} | ${fmt(g.readyS, 1)} s | ${g.findS ? `${fmt(g.findS, 1)} s` : '—'} | ${g.findS ? `${fmt(g.readyS / g.findS, 1)}×` : '—'} | ${floorCells(g)} | ${fmt(g.peakRssMB, 0)} MB | ${above} | ${perFile} | ${g.cpuS !== undefined ? fmt(g.cpuS, 1) : '—'} | ${cpuSplit(g)} | ${fmt(g.healthWorstMs, 0)} ms | ${g.load !== undefined ? fmt(g.load, 1) : '—'} |`,
    );
  }
  return lines;
}

export async function benchmarkSection() {
  return report(await measure());
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const m = machine();
  console.error(`machine: ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}`);
  console.log(await benchmarkSection());
}
