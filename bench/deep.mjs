// Deep mode (issue 20), two figures:
// 1. Poll cost at DEEP_BENCH_KEYS cached keys (default 1,000,000), all of them reads in scope:
//    DeepSync polls against a real redis-server (standing in for Kvrocks) and PostgreSQL —
//    time, Redis commands, keys read (PTTL + STRLEN), SQL queries, the Redis server's own CPU
//    time — the first poll (segment map loaded, every key read), steady polls (a SCAN, then
//    only keys without a live reading) and a poll after a FLUSHALL. With DEEP_BENCH_BEFORE=<dist/
//    of an earlier build> that build's DeepSync runs beside, its steady polls alternated with
//    this one's. Baseline in the same run: the bare pipelined PTTL + STRLEN of every key by a
//    plain ioredis client, 1000 keys per round trip.
// 2. Requests against shallow mode over a simulated day: the real service, once per mode,
//    against the emulator mirrored into Redis, one day compressed DAY_SCALE times (annotators'
//    chunks from the day before of unknown age, expiries, annotators opening jobs at seeded
//    times, a wipe). Counted: the warden's chunk requests, those that found the chunk cached,
//    and annotators' reads that found their chunk cold.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../dist/config/index.js';
import { WardenService } from '../dist/daemon/service.js';
import { CacheReader } from '../dist/deep/cache-reader.js';
import { prng } from '../dist/emulator/faults.js';
import { SYNC_SCAN_KEYS_PER_SECOND } from '../dist/deep/deep-mode.js';
import { REVERIFY_POLLS } from '../dist/deep/known-keys.js';
import { DeepSync } from '../dist/deep/deep-sync.js';
import { SegmentReader } from '../dist/deep/segment-reader.js';
import { parseStoreUrl } from '../dist/deep/store-url.js';
import { RedisCacheMirror, segmentChunkKey, startEmulator, syntheticDeployment, DEMO_CREDENTIALS } from '../dist/emulator/index.js';
import { createLogger } from '../dist/log.js';
import { createMetrics } from '../dist/metrics.js';
import { Ledger } from '../dist/warm/ledger.js';
import { startPostgres, startRedis } from './stores.mjs';

const KEYS = Number(process.env.DEEP_BENCH_KEYS ?? 1_000_000);
/** dist/ of an earlier build (e.g. before the incremental poll) whose DeepSync is measured beside this one. */
const BEFORE_DIST = process.env.DEEP_BENCH_BEFORE;
const JOBS_PER_TASK = 10;
const CHUNKS_PER_JOB = 100;
const CHUNK_SIZE = 10;
const VALUE_BYTES = 64; // STRLEN is O(1): the size of a value changes nothing but the server's memory
const PLAN_OPTIONS = { qualities: ['compressed'], previews: false, contextImages: false, indexChunks: true, skipCompleted: false };

function planTasks(taskCount) {
  const tasks = [];
  let jobId = 0;
  for (let t = 1; t <= taskCount; t++) {
    const jobs = [];
    for (let j = 0; j < JOBS_PER_TASK; j++) {
      jobId++;
      const start = j * CHUNKS_PER_JOB * CHUNK_SIZE;
      const frames = CHUNKS_PER_JOB * CHUNK_SIZE;
      jobs.push({
        id: jobId,
        taskId: t,
        type: 'annotation',
        startFrame: start,
        stopFrame: start + frames - 1,
        frameCount: frames,
        chunkSize: CHUNK_SIZE,
        state: 'in progress',
      });
    }
    tasks.push({ id: t, chunkSize: CHUNK_SIZE, startFrame: 0, frameStep: 1, jobs });
  }
  return tasks;
}

async function cpuSeconds(redis) {
  const info = await redis.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)[1]);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]);
  return user + sys;
}

async function bareReads(admin, names) {
  const cpuBefore = await cpuSeconds(admin);
  const started = performance.now();
  for (let start = 0; start < names.length; start += 1000) {
    const pipeline = admin.pipeline();
    for (const name of names.slice(start, start + 1000)) pipeline.pttl(name).strlen(name);
    await pipeline.exec();
  }
  return { ms: performance.now() - started, commands: 2 * names.length, redisCpuS: (await cpuSeconds(admin)) - cpuBefore };
}

/** Commands `reader` sent so far. */
const sentTotal = (reader) => [...reader.sent.values()].reduce((a, b) => a + b, 0);

/** Heap in use after a full collection (node --expose-gc, as `npm run bench` runs), MB. */
function heapMB() {
  globalThis.gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

async function measurePoll(label, sync, cache, segments, admin, tasks, expectCached) {
  const commandsBefore = sentTotal(cache);
  const pttlBefore = cache.sent.get('pttl') ?? 0;
  const queriesBefore = segments.queries;
  const cpuBefore = await cpuSeconds(admin);
  const started = performance.now();
  const result = await sync.sync(tasks, PLAN_OPTIONS);
  const ms = performance.now() - started;
  if (result.cached !== expectCached) throw new Error(`bench: ${label}: ${result.cached} keys seen cached, expected ${expectCached}`);
  return {
    label,
    ms,
    commands: sentTotal(cache) - commandsBefore,
    probedKeys: (cache.sent.get('pttl') ?? 0) - pttlBefore,
    queries: segments.queries - queriesBefore,
    redisCpuS: (await cpuSeconds(admin)) - cpuBefore,
    bytes: result.bytes,
  };
}

export async function pollCost(dir) {
  const taskCount = Math.max(1, Math.round(KEYS / (JOBS_PER_TASK * CHUNKS_PER_JOB)));
  const keys = taskCount * JOBS_PER_TASK * CHUNKS_PER_JOB;
  const redis = await startRedis(dir);
  const postgres = await startPostgres(dir);
  const admin = new Redis(redis.url);
  const db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  const store = (url, scheme) => parseStoreUrl(url, scheme, 'bench');
  const ledger = await Ledger.open(join(dir, 'state'), { durable: false });
  // The SCAN at the service's own pace (deep-mode.ts).
  const cache = new CacheReader({ store: store(redis.url, 'redis'), timeoutMs: 60_000, scanKeysPerSecond: SYNC_SCAN_KEYS_PER_SECOND });
  const segments = new SegmentReader({ store: store(postgres.url, 'postgres'), timeoutMs: 60_000 });
  // The build before the incremental poll (every key PTTL + STRLEN every poll), when DEEP_BENCH_BEFORE names its dist/.
  const before = BEFORE_DIST ? await openBefore(dir, store(redis.url, 'redis'), store(postgres.url, 'postgres')) : undefined;
  try {
    // Only the columns deep mode's query reads (src/deep/segment-reader.ts), with Django's foreign-key indexes.
    await db.query(`CREATE TABLE engine_task (id integer PRIMARY KEY, data_id integer);
      CREATE TABLE engine_segment (id integer PRIMARY KEY, task_id integer, start_frame integer, stop_frame integer, type text);
      CREATE TABLE engine_job (id integer PRIMARY KEY, segment_id integer);
      CREATE INDEX ON engine_segment (task_id); CREATE INDEX ON engine_job (segment_id);`);
    const jobs = taskCount * JOBS_PER_TASK;
    await db.query('INSERT INTO engine_task SELECT t, t FROM generate_series(1, $1) t', [taskCount]);
    await db.query(
      `INSERT INTO engine_segment SELECT j, (j - 1) / ${JOBS_PER_TASK} + 1, ((j - 1) % ${JOBS_PER_TASK}) * ${CHUNKS_PER_JOB * CHUNK_SIZE},
         ((j - 1) % ${JOBS_PER_TASK}) * ${CHUNKS_PER_JOB * CHUNK_SIZE} + ${CHUNKS_PER_JOB * CHUNK_SIZE - 1}, 'range' FROM generate_series(1, $1) j`,
      [jobs],
    );
    await db.query('INSERT INTO engine_job SELECT j, j FROM generate_series(1, $1) j', [jobs]);
    await db.query('ANALYZE');
    // Every read in scope cached, with CVAT's key names and a TTL somewhere in the day.
    const value = Buffer.alloc(VALUE_BYTES, 0x80);
    const names = [];
    for (let seg = 1; seg <= jobs; seg++) for (let i = 0; i < CHUNKS_PER_JOB; i++) names.push(`:1:segment_${seg}_chunk_${i}_0`);
    for (let start = 0; start < names.length; start += 10_000) {
      const pipeline = admin.pipeline();
      for (const name of names.slice(start, start + 10_000)) pipeline.set(name, value, 'PX', 3_600_000 + Math.floor(Math.random() * 82_800_000));
      await pipeline.exec();
    }
    const memory = /used_memory:(\d+)/.exec(await admin.info('memory'))[1];

    const baselines = [await bareReads(admin, names)];
    const tasks = planTasks(taskCount);
    const heapBefore = heapMB();
    const sync = new DeepSync({ cache, segments, ledger, scheme: 'segment' });
    const polls = [await measurePoll('first poll (segment map loaded, every key read)', sync, cache, segments, admin, tasks, keys)];
    const heapAfter = heapMB();
    const beforePolls = [];
    let beforeHeapMB;
    if (before) {
      const heapStart = heapMB();
      beforePolls.push(await measurePoll('before: first poll', before.sync, before.cache, before.segments, admin, tasks, keys));
      beforeHeapMB = heapMB() - heapStart;
    }
    // Steady polls, alternated with the old build's when it is given (load on a shared machine moves both alike).
    for (let round = 0; round < 2; round++) {
      polls.push(await measurePoll('steady poll', sync, cache, segments, admin, tasks, keys));
      if (before) beforePolls.push(await measurePoll('before: steady poll', before.sync, before.cache, before.segments, admin, tasks, keys));
    }
    baselines.push(await bareReads(admin, names));
    // The cache wiped: the SCAN finds nothing, a sample of the keys it calls gone is read to check it.
    await admin.flushall();
    polls.push(await measurePoll('poll after a FLUSHALL', sync, cache, segments, admin, tasks, 0));
    const baseline = baselines.reduce((a, b) => (a.ms <= b.ms ? a : b));
    return { keys, taskCount, jobs, memoryMB: Number(memory) / 2 ** 20, polls, beforePolls, baseline, baselines, heapMB: heapAfter - heapBefore, beforeHeapMB };
  } finally {
    await cache.close();
    await segments.close();
    await ledger.close();
    await before?.close();
    await db.end();
    admin.disconnect();
    await redis.stop();
    await postgres.stop();
  }
}

/** The deep-mode poll of the build in DEEP_BENCH_BEFORE (a dist/ directory), on its own ledger. */
async function openBefore(dir, cacheStore, dbStore) {
  const load = (file) => import(pathToFileURL(join(BEFORE_DIST, file)).href);
  const [{ CacheReader: OldCacheReader }, { DeepSync: OldDeepSync }, { SegmentReader: OldSegmentReader }, { Ledger: OldLedger }] = await Promise.all([
    load('deep/cache-reader.js'),
    load('deep/deep-sync.js'),
    load('deep/segment-reader.js'),
    load('warm/ledger.js'),
  ]);
  const ledger = await OldLedger.open(join(dir, 'state-before'), { durable: false });
  const cache = new OldCacheReader({ store: cacheStore, timeoutMs: 60_000 });
  const segments = new OldSegmentReader({ store: dbStore, timeoutMs: 60_000 });
  const sync = new OldDeepSync({ cache, segments, ledger, scheme: 'segment' });
  return {
    sync,
    cache,
    segments,
    async close() {
      await cache.close();
      await segments.close();
      await ledger.close();
    },
  };
}

// ---- requests over a simulated day ---------------------------------------------

// A day in compressed time. The warden takes CVAT's TTL as the constant it is in CVAT
// (24 h: src/cvat/features.ts CHUNK_CACHE_TTL_MS, src/deep/keys.ts CHUNK_TTL_MS, from
// CVAT_CHUNK_CACHE_TTL = 3600 * 24 in cvat/settings/base.py, not configurable there either)
// and an injectable clock; the emulator takes `ttlMs` (left at 24 h) and a clock. So the day is
// compressed by giving both the same clock, running DAY_SCALE times faster than real time;
// Redis counts real time, so the mirror divides each key's lifetime by the clock's
// `storeRate` and deep mode multiplies the PTTL it reads by it.
const DAY_DEPLOYMENT = { tasks: 10, framesPerTask: 600, mediaType: 'image', chunkSize: 36, segmentSize: 100 };
/** Clock ms per real ms (DEEP_BENCH_DAY_SCALE; 1000: the day in 86 s). */
const DAY_SCALE = Number(process.env.DEEP_BENCH_DAY_SCALE ?? 1000);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const DAY_START = Date.UTC(2026, 7, 12);
/** Each job is opened this many times during working hours, at seeded-random times. */
const OPENS_PER_JOB = 2;
const WORK_START = 8 * HOUR;
const WORK_END = 20 * HOUR;
/** The media cache is cleared (an admin freeing the disk) at this time of the day. */
const WIPE_AT = 15 * HOUR;
const DAY_POLL_REAL_MS = 300;
const DAY_CHECK_REAL_MS = 100;
const DAY_BUILD_REAL_MS = 40;
const PERIODS = [
  { until: WORK_START, what: '00:00–08:00: the warden starts; chunks annotators built yesterday expire' },
  { until: WIPE_AT, what: '08:00–15:00: annotators open jobs; expiries' },
  { until: DAY, what: '15:00–24:00: the cache is wiped at 15:00; annotators until 20:00' },
];

/** The clock of a compressed day: DAY_SCALE clock ms per real ms, and forward jumps (the day before). */
class ScaledClock {
  constructor(startMs, rate) {
    this.base = startMs;
    this.realStart = performance.now();
    this.storeRate = rate;
  }
  now() {
    return Math.round(this.base + (performance.now() - this.realStart) * this.storeRate);
  }
  advance(ms) {
    if (ms > 0) this.base += ms;
    return this.now();
  }
}

async function until(clock, at) {
  for (;;) {
    const left = at - clock.now();
    if (left <= 0) return;
    await new Promise((r) => setTimeout(r, Math.max(1, Math.min(50, left / clock.storeRate))));
  }
}

async function waitFor(what, probe, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function dayRun(dir, mode, stores) {
  const admin = new Redis(stores.redis.url);
  await admin.flushall();
  const clock = new ScaledClock(DAY_START - DAY, DAY_SCALE);
  const mirror = new RedisCacheMirror(stores.redis.url, clock);
  const emulator = await startEmulator({ tasks: syntheticDeployment(DAY_DEPLOYMENT), buildTimeMs: DAY_BUILD_REAL_MS, cacheObserver: mirror, clock });
  const db = new pg.Client({ connectionString: stores.postgres.url });
  await db.connect();
  await db.query('TRUNCATE engine_task, engine_segment, engine_job');
  for (const task of emulator.deployment.tasks.values()) {
    await db.query('INSERT INTO engine_task VALUES ($1, $2)', [task.id, task.dataId]);
    for (const seg of task.segments)
      await db.query('INSERT INTO engine_segment VALUES ($1, $2, $3, $4, $5)', [seg.id, task.id, seg.startFrame, seg.stopFrame, seg.type]);
    for (const job of task.jobs) await db.query('INSERT INTO engine_job VALUES ($1, $2)', [job.id, job.segmentId]);
  }
  const jobs = [...emulator.deployment.jobs.values()].filter((j) => j.type === 'annotation');
  const chunksOf = (job) => {
    const seg = emulator.deployment.segmentOf(job);
    const n = Math.ceil(seg.frameSet.length / emulator.deployment.tasks.get(job.taskId).chunkSize);
    return Array.from({ length: n }, (_, i) => ({ index: i, key: segmentChunkKey(seg.id, i, 'compressed') }));
  };
  const annotator = { reads: 0, cold: 0 };
  const open = async (job, counted) => {
    for (const { index, key } of chunksOf(job)) {
      if (counted) {
        annotator.reads++;
        if (!emulator.state.isCached(key)) annotator.cold++;
      }
      await (await fetch(`${emulator.url}/api/jobs/${job.id}/data?type=chunk&quality=compressed&index=${index}`)).arrayBuffer();
    }
  };
  let service;
  try {
    // The day before, with the clock jumping: annotators open every other job at spread times, so at
    // 00:00 their chunks are 1 to 23 hours old (an age shallow mode cannot know).
    const before = jobs.filter((_, i) => i % 2 === 0);
    for (let i = 0; i < before.length; i++) {
      clock.advance(DAY_START - DAY + HOUR + Math.round((i * 22 * HOUR) / before.length) - clock.now());
      await open(before[i], false);
    }
    clock.advance(DAY_START - clock.now());
    await mirror.settled();
    // Redis counted the jumps as no time: give each key the lifetime the emulator's clock leaves it.
    for (const name of await admin.keys(':1:*')) {
      const expiresAt = emulator.state.expiresAt(name.slice(3));
      if (expiresAt === undefined) await admin.del(name);
      else await admin.pexpire(name, Math.max(1, Math.round((expiresAt - clock.now()) / DAY_SCALE)));
    }
    emulator.state.resetCounters();
    const ui = emulator.state.uiChunkKeys().size;

    // The annotators' day: each job opened OPENS_PER_JOB times in working hours (the same for both modes).
    const random = prng(20); // the same annotators' day for both modes
    const opens = jobs.flatMap((job) =>
      Array.from({ length: OPENS_PER_JOB }, () => ({ at: DAY_START + WORK_START + random() * (WORK_END - WORK_START), job })),
    );
    opens.sort((x, y) => x.at - y.at);

    const snapshot = () => ({ requests: emulator.state.count('chunk'), builds: emulator.state.totalBuilds, ...annotator });
    const env = { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken };
    if (mode === 'deep') Object.assign(env, { CVAT_WARDEN_CACHE_URL: stores.redis.url, CVAT_WARDEN_DB_URL: stores.postgres.url });
    const argv = [
      '--listen',
      '127.0.0.1:0',
      '--state-dir',
      join(dir, `state-${mode}`),
      '--poll-interval',
      `${DAY_POLL_REAL_MS}ms`,
      '--cold-threshold',
      '20ms',
      '--no-context-images',
    ];
    const config = loadConfig('run', argv, env);
    const logger = createLogger({ level: 'error', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
    service = new WardenService({
      config,
      logger,
      metrics: createMetrics({ buildInfo: { version: 'bench' }, defaultMetrics: false }),
      checkIntervalMs: DAY_CHECK_REAL_MS,
      clock,
    });
    // One timeline: the opens, the wipe, and the ends of the periods the table reports.
    const events = [
      ...opens.map((o) => ({ at: o.at, run: () => open(o.job, true) })),
      {
        at: DAY_START + WIPE_AT,
        run: async () => {
          emulator.clearCache();
          await mirror.settled();
        },
      },
      ...PERIODS.map((period) => ({ at: DAY_START + period.until, end: period })),
    ].sort((x, y) => x.at - y.at || (x.end ? 1 : 0) - (y.end ? 1 : 0));
    const periods = [];
    let last = snapshot();
    const realStart = performance.now();
    await service.start();
    for (const event of events) {
      await until(clock, event.at);
      if (event.run) {
        await event.run();
        continue;
      }
      const now = snapshot();
      // The warden's requests and builds: all of the emulator's, less the annotators' reads and the builds they waited for.
      periods.push({
        what: event.end.what,
        requests: now.requests - last.requests - (now.reads - last.reads),
        builds: now.builds - last.builds - (now.cold - last.cold),
        reads: now.reads - last.reads,
        cold: now.cold - last.cold,
      });
      last = now;
    }
    const realSeconds = (performance.now() - realStart) / 1000;
    return { mode, ui, opens: opens.length, periods, realSeconds };
  } finally {
    await service?.close();
    await emulator.close();
    await mirror.close();
    await db.end();
    admin.disconnect();
  }
}

export async function dayCost(dir) {
  const redis = await startRedis(dir);
  const postgres = await startPostgres(join(dir, 'pg-day'));
  const db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  await db.query(`CREATE TABLE engine_task (id integer PRIMARY KEY, data_id integer);
    CREATE TABLE engine_segment (id integer PRIMARY KEY, task_id integer, start_frame integer, stop_frame integer, type text);
    CREATE TABLE engine_job (id integer PRIMARY KEY, segment_id integer);`);
  await db.end();
  try {
    return [await dayRun(dir, 'shallow', { redis, postgres }), await dayRun(dir, 'deep', { redis, postgres })];
  } finally {
    await redis.stop();
    await postgres.stop();
  }
}

export async function benchmarkSection() {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-deep-'));
  chmodSync(dir, 0o711); // PostgreSQL runs as its own user when the bench runs as root
  try {
    const cost = await pollCost(join(dir, 'cost'));
    const day = await dayCost(join(dir, 'day'));
    return report(cost, day);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n) => Math.round(n).toLocaleString('en');

function report(cost, day) {
  return [...pollReport(cost), '', ...dayReport(day)].join('\n');
}

export function pollReport(cost) {
  const row = (p) =>
    `| ${p.label} | ${fmt(p.ms)} ms | ${fmt(p.commands)} | ${fmt(p.probedKeys)} | ${p.queries} | ${p.redisCpuS.toFixed(2)} s | ${(p.ms / cost.baseline.ms).toFixed(2)} |`;
  const steady = cost.polls.filter((p) => p.label === 'steady poll');
  const oldSteady = cost.beforePolls.filter((p) => p.label === 'before: steady poll');
  const mean = (list, f) => list.reduce((a, p) => a + f(p), 0) / Math.max(1, list.length);
  const reverifyCommands = 2 * Math.ceil(cost.keys / REVERIFY_POLLS);
  const lines = [
    '### Deep mode (issue 20): poll cost and requests saved',
    '',
    `One deep-mode poll (\`DeepSync.sync\`) over ${fmt(cost.keys)} cached keys, every one a read in scope (${fmt(cost.taskCount)} tasks, ${fmt(cost.jobs)} jobs, ${CHUNKS_PER_JOB} chunks each; \`DEEP_BENCH_KEYS\` scales it), against Debian's redis-server standing in for Kvrocks (${cost.memoryMB.toFixed(0)} MB for the keys, ${VALUE_BYTES}-byte values: STRLEN does not read a value) and PostgreSQL with deep mode's three tables and Django's foreign-key indexes. "Keys read" are those sent PTTL + STRLEN; the rest of a poll's commands are SCANs (COUNT 1000, paced at ${fmt(SYNC_SCAN_KEYS_PER_SECOND)} keys/s as the service runs them). "Baseline" is the bare pipelined PTTL + STRLEN of every key by a plain ioredis client in the same run, 1000 keys per round trip: what reading every key costs at least (${cost.baselines.map((b) => `${fmt(b.ms)} ms`).join(', ')} before and after the polls; the faster, ${fmt(cost.baseline.ms)} ms and ${cost.baseline.redisCpuS.toFixed(2)} s of the server's CPU, is the baseline). Redis CPU is the server's own \`used_cpu_user + used_cpu_sys\`: what a poll costs CVAT's store.`,
    '',
    '| poll | time | Redis commands | keys read | SQL queries | Redis server CPU | time / baseline |',
    '|---|---|---|---|---|---|---|',
    ...cost.polls.map(row),
    ...cost.beforePolls.map(row),
    '',
  ];
  if (oldSteady.length)
    lines.push(
      `"before" rows: the build before the incremental poll (\`DEEP_BENCH_BEFORE=<its dist/>\`, every key PTTL + STRLEN every poll), its steady polls alternated with this build's in the same run. Steady poll, mean of ${steady.length}: ${fmt(mean(steady, (p) => p.ms))} ms and ${fmt(mean(steady, (p) => p.commands))} commands against ${fmt(mean(oldSteady, (p) => p.ms))} ms and ${fmt(mean(oldSteady, (p) => p.commands))} before (${(mean(oldSteady, (p) => p.ms) / mean(steady, (p) => p.ms)).toFixed(1)}× faster, ${fmt(mean(oldSteady, (p) => p.commands) / mean(steady, (p) => p.commands))}× fewer commands); the store's CPU ${mean(steady, (p) => p.redisCpuS).toFixed(2)} s against ${mean(oldSteady, (p) => p.redisCpuS).toFixed(2)} s — a SCAN still walks every key, so the store saves less than the warden does.`,
      '',
    );
  lines.push(
    `A key's expiry and size are fixed while it lives (CVAT sets it once with EX, reads never extend it), so a steady poll SCANs for which keys exist and reads only keys new in scope, seen again, past their known expiry, or due for re-verification. The steady polls above are the 2nd and 3rd: re-verification starts once readings are ${REVERIFY_POLLS} polls old and then adds the oldest 1/${REVERIFY_POLLS} of the keys per poll — ${fmt(reverifyCommands)} commands at ${fmt(cost.keys)} keys (computed, not measured), besides the keys that expired or were built since the last poll. After a FLUSHALL the SCAN alone tells: up to 16 keys per 10,000 in scope are read to check it saw right. Heap after the first poll, after a full GC: ${cost.heapMB.toFixed(0)} MB more than before it${cost.beforeHeapMB === undefined ? ' (the readings held between polls, the ledger entries written and the job → segment map)' : `, against ${cost.beforeHeapMB.toFixed(0)} MB for the build before (the ledger entries and the job → segment map alike): the readings held between polls cost ~${fmt(((cost.heapMB - cost.beforeHeapMB) * 2 ** 20) / cost.keys)} bytes a key`}. SQL only for tasks not mapped yet (${TASKS_PER_QUERY_NOTE}). At the default \`--poll-interval 60s\` the steady poll costs the media cache ${((100 * mean(steady, (p) => p.redisCpuS)) / 60).toFixed(1)} % of one core for ${fmt(cost.keys)} keys.`,
  );
  return lines;
}

export function dayReport(day) {
  const [shallow, deep] = day;
  const min = (ms) => (ms >= 60_000 ? `${(ms / 60_000).toFixed(ms % 60_000 ? 1 : 0)} min` : `${Math.round(ms / 1000)} s`);
  const lines = [
    `**Requests against shallow mode over a simulated day.** The real service, once per mode, against the emulator (CVAT 2.73, ${DAY_DEPLOYMENT.tasks} tasks × ${DAY_DEPLOYMENT.framesPerTask} frames, ${shallow.ui} UI chunks) mirrored into the same redis-server, through one day compressed ${fmt(DAY_SCALE)}× (${shallow.realSeconds.toFixed(0)} s and ${deep.realSeconds.toFixed(0)} s of real time). Before 00:00 annotators opened every other job at spread times (the day before, the clock jumping), so at 00:00 those chunks are 1 to 23 hours old — an age shallow mode cannot know. From 08:00 to 20:00 each job is opened ${OPENS_PER_JOB} times at seeded-random times (the same ${shallow.opens} opens in both runs); at ${WIPE_AT / HOUR}:00 the cache is cleared. "Found cached" are the warden's requests that built nothing: a whole chunk moved over the network for nothing. "Cold reads" are annotators' chunk reads that found the chunk not cached and waited for its build.`,
    '',
    '| period | shallow: requests | shallow: found cached | shallow: cold reads | deep: requests | deep: found cached | deep: cold reads | requests saved |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const total = { s: { requests: 0, builds: 0, cold: 0, reads: 0 }, d: { requests: 0, builds: 0, cold: 0, reads: 0 } };
  shallow.periods.forEach((sp, i) => {
    const dp = deep.periods[i];
    for (const [t, p] of [
      [total.s, sp],
      [total.d, dp],
    ])
      for (const k of Object.keys(t)) t[k] += p[k];
    lines.push(
      `| ${sp.what} | ${sp.requests} | ${sp.requests - sp.builds} | ${sp.cold} of ${sp.reads} | ${dp.requests} | ${dp.requests - dp.builds} | ${dp.cold} of ${dp.reads} | ${sp.requests - dp.requests} |`,
    );
  });
  const saved = total.s.requests - total.d.requests;
  lines.push(
    `| **the day** | **${total.s.requests}** | **${total.s.requests - total.s.builds}** | **${total.s.cold} of ${total.s.reads}** | **${total.d.requests}** | **${total.d.requests - total.d.builds}** | **${total.d.cold} of ${total.d.reads}** | **${saved} (${((100 * saved) / Math.max(1, total.s.requests)).toFixed(0)} %)** |`,
    '',
    `What the compression changes. The warden and the emulator keep CVAT's 24 h TTL and share one clock running ${fmt(DAY_SCALE)}× real time (Redis, counting real time, gets each lifetime divided by ${fmt(DAY_SCALE)}, and deep mode multiplies the PTTL it reads back). What stays in real time is stretched in the day's terms: the poll interval (${DAY_POLL_REAL_MS} ms, i.e. ${min(DAY_POLL_REAL_MS * DAY_SCALE)} of the day, against a 60 s default), the scheduler's re-check (${DAY_CHECK_REAL_MS} ms: ${min(DAY_CHECK_REAL_MS * DAY_SCALE)}), a chunk build (${DAY_BUILD_REAL_MS} ms: ${min(DAY_BUILD_REAL_MS * DAY_SCALE)}) and the warden's start-up warm of every chunk. So a chunk that expires stays cold for minutes of the day before the re-warm lands, where a real deployment takes seconds, and cold reads here are an upper bound for both modes; shallow mode's cold-threshold judgement (20 ms) still runs on real answer times. Request counts move with the compression only where a view a poll old meets annotators' builds: a chunk an annotator built since the last poll is asked for again in both modes, and a poll is ${min(DAY_POLL_REAL_MS * DAY_SCALE)} of the day here.`,
  );
  return lines;
}

const TASKS_PER_QUERY_NOTE = '500 tasks per query';
