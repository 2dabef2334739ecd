/**
 * Deep mode against real stores: Debian's redis-server (as Kvrocks) fed by the emulator's
 * RedisCacheMirror with CVAT's key names and TTLs (cvat/apps/engine/cache.py 2.73:
 * `segment_{id}_chunk_{i}_{q}`, `:1:` from Django's make_key, set once with EX = 24 h),
 * and a throw-away PostgreSQL cluster with CVAT's tables (columns from the 2.73 fixture).
 * The warden connects as a Redis ACL user that may only read.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import { RedisCacheMirror, segmentChunkKey, startEmulator, syntheticDeployment, type Emulator } from '../src/emulator/index.js';
import { segmentChunkKey as wardenSegmentChunkKey } from '../src/deep/keys.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';
import {
  WARDEN_REDIS_USER,
  createCvatTables,
  describeWithDeepStores,
  fillFromEmulator,
  snapshotRows,
  startPostgres,
  startRedis,
  strlenSum,
  type PostgresCluster,
  type RedisServer,
} from './support/deep-stores.js';

/** The part of /status these tests read. */
interface CacheStatus {
  cache: { mode: string; syncs: number; lastSync?: { cached: number } };
}

describeWithDeepStores('deep mode (real redis-server and PostgreSQL)', () => {
  const dir = useTempDir('deep-stores-', { scope: 'suite' });
  const tmp = useTempDir('deep-mode-');
  let redis: RedisServer;
  let postgres: PostgresCluster;
  let admin: Redis | undefined;
  let db: pg.Client | undefined;
  let emulator: Emulator | undefined;
  let mirror: RedisCacheMirror | undefined;
  let running: RunningService | undefined;

  beforeAll(async () => {
    redis = await startRedis(dir.path);
    postgres = await startPostgres(dir.path);
    admin = new Redis(redis!.url);
    admin.on('error', () => undefined);
    db = new pg.Client({ connectionString: postgres!.url });
    await db.connect();
    await createCvatTables(db);
  }, 60_000);
  afterAll(async () => {
    await db?.end();
    admin?.disconnect();
    await redis!.stop();
    await postgres.stop();
  });
  closeAfterEach(
    () => [running?.service, mirror, emulator],
    () => {
      running = undefined;
      mirror = undefined;
      emulator = undefined;
    },
  );

  it('names keys as CVAT 2.73 does (the emulator derives them independently)', () => {
    expect(wardenSegmentChunkKey(3, 1, 'compressed')).toBe(`:1:${segmentChunkKey(3, 1, 'compressed')}`);
    expect(wardenSegmentChunkKey(3, 1, 'original')).toBe(':1:segment_3_chunk_1_100');
  });

  it('requests none of the chunks annotators built, re-warms a FLUSHALL within two polls, sends no write, changes no row', async () => {
    mirror = new RedisCacheMirror(redis!.url, { now: () => Date.now() });
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 2, framesPerTask: 300, mediaType: 'image' }), buildTimeMs: 5, cacheObserver: mirror });
    await admin!.flushall();
    await db!.query('TRUNCATE engine_job, engine_segment, engine_task, engine_data');
    await fillFromEmulator(db!, emulator.deployment);
    const rowsBefore = await snapshotRows(db!);

    // Annotators open job 1 behind the warden's back: its chunks are built and cached.
    const firstJob = [...emulator.deployment.jobs.values()][0]!;
    const seg = emulator.deployment.segmentOf(firstJob);
    const prebuilt = Math.ceil(seg.frameSet.length / emulator.deployment.tasks.get(firstJob.taskId)!.chunkSize);
    for (let i = 0; i < prebuilt; i++) {
      const r = await fetch(`${emulator.url}/api/jobs/${firstJob.id}/data?type=chunk&quality=compressed&index=${i}`);
      await r.arrayBuffer();
      expect(r.status).toBe(200);
    }
    await mirror.settled();
    expect(await admin!.exists(`:1:segment_${seg.id}_chunk_0_0`)).toBe(1);
    expect(await admin!.pttl(`:1:segment_${seg.id}_chunk_0_0`)).toBeGreaterThan(23 * 3_600_000);
    emulator.state.resetCounters();
    await admin!.acl('LOG', 'RESET');

    running = await startService(['--state-dir', tmp.path, '--poll-interval', '1s', '--cold-threshold', '0ms', '--no-context-images'], {
      CVAT_URL: emulator.url,
      CVAT_ACCESS_TOKEN: 'deep-mode-token-1234',
      CVAT_WARDEN_CACHE_URL: redis!.wardenUrl,
      CVAT_WARDEN_DB_URL: postgres!.url,
    });
    const ui = emulator.state.uiChunkKeys();
    await waitFor('every UI chunk cached', () => emulator!.state.coldUiChunkKeys().size === 0, { timeoutMs: 30_000 });
    const status = (await (await fetch(`${running.url}/status`)).json()) as CacheStatus;
    expect(status.cache.mode).toBe('deep');
    // Zero requests for the chunks already cached.
    const askedForPrebuilt = emulator.state.requestLog.filter((r) => r.path === `/api/jobs/${firstJob.id}/data` && /type=chunk/.test(r.query));
    expect(askedForPrebuilt).toEqual([]);
    expect(emulator.state.count('chunk')).toBe(ui.size - prebuilt);

    // FLUSHALL (the cache volume cleared): warm again within two polls.
    await waitFor('a deep sync after warming', () => (running!.service.status() as CacheStatus).cache.lastSync?.cached === ui.size, { timeoutMs: 10_000 });
    // The cached-bytes gauge agrees with what the cache really holds: the sum of STRLEN over every key (within 5 %).
    const truth = await strlenSum(admin!);
    expect(truth.keys).toBeGreaterThan(0);
    const gauge = (await running.metric('cvat_warden_cached_bytes'))!;
    expect(Math.abs(gauge - truth.bytes)).toBeLessThanOrEqual(0.05 * truth.bytes);
    emulator.clearCache();
    await mirror.settled();
    await admin!.flushall();
    const syncsAtWipe = (running.service.status() as CacheStatus).cache.syncs;
    await waitFor('every UI chunk cached again', () => emulator!.state.coldUiChunkKeys().size === 0 && (running!.service.status() as CacheStatus).cache.syncs, {
      timeoutMs: 30_000,
    });
    const syncsAfter = (running.service.status() as CacheStatus).cache.syncs;
    expect(syncsAfter - syncsAtWipe).toBeLessThanOrEqual(2);
    expect(await running.metric('cvat_warden_cache_wipes_total{detected_by="deep"}')).toBeGreaterThanOrEqual(1);

    // Read-only: the ACL user can only read, and no command of it was ever denied; no row moved.
    expect(await admin!.acl('LOG')).toEqual([]);
    expect(await snapshotRows(db!)).toBe(rowsBefore);
    // The password in the cache URL shows nowhere.
    const shown = [running.logs(), JSON.stringify(running.service.status()), await running.metricsText()].join('\n');
    expect(shown).not.toContain(WARDEN_REDIS_USER.password);
    expect(shown).toContain(`redis://127.0.0.1:${redis!.port}/0`);

    // The cache store goes away: shallow mode, said in /status and the metrics.
    await redis!.stop();
    await waitFor('fallback', () => (running!.service.status() as CacheStatus).cache.mode === 'shallow', { timeoutMs: 15_000 });
    expect(await running.metric('cvat_warden_deep_mode')).toBe(0);
    expect(await running.metric('cvat_warden_deep_store_up{store="cache"}')).toBe(0);
    expect(running.logs()).not.toContain(WARDEN_REDIS_USER.password);
    redis = await startRedis(dir.path);
    admin!.disconnect();
    admin = new Redis(redis.url);
    admin.on('error', () => undefined);
  }, 90_000);

  // CVAT 2.14 (cache.py at opencv/cvat v2.14.4): task chunks under `{data_id}_{n}_Quality.COMPRESSED`, shared by
  // the jobs whose frames they hold; the emulator's 2.14.4 mode writes those names (src/emulator/keys.ts).
  it('reads the 2.14 key scheme: requests none of the task chunks annotators built and warms the rest', async () => {
    mirror = new RedisCacheMirror(redis.url, { now: () => Date.now() });
    emulator = await startEmulator({
      version: '2.14.4',
      tasks: syntheticDeployment({ tasks: 2, framesPerTask: 300, mediaType: 'image' }),
      buildTimeMs: 5,
      cacheObserver: mirror,
    });
    await admin!.flushall();
    await db!.query('TRUNCATE engine_job, engine_segment, engine_task, engine_data');
    await fillFromEmulator(db!, emulator.deployment);
    const rowsBefore = await snapshotRows(db!);

    // An annotator opens the first task's first job: its task chunks are built behind the warden's back.
    const task = [...emulator.deployment.tasks.values()][0]!;
    const firstJob = task.jobs.find((j) => j.type === 'annotation')!;
    const seg = emulator.deployment.segmentOf(firstJob);
    const numbers: number[] = [];
    for (let n = Math.floor(seg.startFrame / task.chunkSize); n <= Math.floor(seg.stopFrame / task.chunkSize); n++) numbers.push(n);
    for (const n of numbers) {
      const r = await fetch(`${emulator.url}/api/jobs/${firstJob.id}/data?type=chunk&quality=compressed&number=${n}`);
      await r.arrayBuffer();
      expect(r.status).toBe(200);
    }
    await mirror.settled();
    expect(await admin!.exists(`:1:${task.dataId}_${numbers[0]}_Quality.COMPRESSED`)).toBe(1);
    emulator.state.resetCounters();

    running = await startService(['--state-dir', tmp.path, '--poll-interval', '1s', '--cold-threshold', '0ms', '--no-context-images'], {
      CVAT_URL: emulator.url,
      CVAT_ACCESS_TOKEN: 'deep-mode-token-1234',
      CVAT_WARDEN_CACHE_URL: redis.wardenUrl,
      CVAT_WARDEN_DB_URL: postgres.url,
    });
    const ui = emulator.state.uiChunkKeys();
    await waitFor('every UI chunk cached', () => emulator!.state.coldUiChunkKeys().size === 0, { timeoutMs: 30_000 });
    await waitFor('a deep sync that sees them all', () => ((running!.service.status() as CacheStatus).cache.lastSync?.cached ?? 0) >= ui.size, {
      timeoutMs: 10_000,
    });
    expect((running.service.status() as CacheStatus).cache.mode).toBe('deep');
    // None of the prebuilt task chunks was asked for, by this job or by a neighbour sharing its border chunk.
    const prebuiltAsked = emulator.state.requestLog.filter(
      (r) => /^\/api\/jobs\/\d+\/data$/.test(r.path) && /type=chunk/.test(r.query) && numbers.some((n) => new RegExp(`number=${n}(&|$)`).test(r.query)),
    );
    const ownerOf = (path: string) => emulator!.deployment.jobs.get(Number(/\/api\/jobs\/(\d+)\//.exec(path)![1]))!.taskId;
    expect(prebuiltAsked.filter((r) => ownerOf(r.path) === task.id)).toEqual([]);
    expect(await admin!.acl('LOG')).toEqual([]);
    expect(await snapshotRows(db!)).toBe(rowsBefore);
  }, 60_000);
});
