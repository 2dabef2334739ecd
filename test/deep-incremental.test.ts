/**
 * Deep mode's incremental poll against a real redis-server (the warden as its read-only ACL
 * user) and a real PostgreSQL with CVAT's tables: a SCAN lists which keys exist, and PTTL +
 * STRLEN go only to keys without a live reading. Why a reading stays true: CVAT 2.73
 * `cvat/apps/engine/cache.py` sets each key once (`_create_and_set_cache_item`:
 * `cache.set(key, item, timeout=ttl)`) and `_get_cache_item` only `get`s, so a key's expiry
 * and size are fixed while it lives (src/deep/keys.ts, src/deep/known-keys.ts).
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import { CacheReader } from '../src/deep/cache-reader.js';
import { DeepSync, type DeepSyncResult } from '../src/deep/deep-sync.js';
import { CHUNK_TTL_MS, segmentChunkKey } from '../src/deep/keys.js';
import { SegmentReader } from '../src/deep/segment-reader.js';
import { parseStoreUrl, type StoreUrl } from '../src/deep/store-url.js';
import type { PlanOptions, PlanTask } from '../src/plan/types.js';
import { Ledger } from '../src/warm/ledger.js';
import { useTempDir } from './support/tmp.js';
import {
  createCvatTables,
  describeWithDeepStores,
  startPostgres,
  startRedis,
  strlenSum,
  type PostgresCluster,
  type RedisServer,
} from './support/deep-stores.js';

const CHUNK_SIZE = 10;
const CHUNKS_PER_JOB = 10;
const JOBS = 2;
const PLAN: PlanOptions = { qualities: ['compressed'], previews: false, contextImages: false, indexChunks: true, skipCompleted: false };
const HOUR = 3_600_000;

/** One task (data 1), JOBS jobs of CHUNKS_PER_JOB chunks; job j sits on segment j. */
const TASK: PlanTask = {
  id: 1,
  chunkSize: CHUNK_SIZE,
  startFrame: 0,
  frameStep: 1,
  jobs: Array.from({ length: JOBS }, (_, j) => ({
    id: j + 1,
    taskId: 1,
    type: 'annotation' as const,
    startFrame: j * CHUNKS_PER_JOB * CHUNK_SIZE,
    stopFrame: (j + 1) * CHUNKS_PER_JOB * CHUNK_SIZE - 1,
    frameCount: CHUNKS_PER_JOB * CHUNK_SIZE,
    chunkSize: CHUNK_SIZE,
    state: 'in progress' as const,
  })),
};
const KEYS = TASK.jobs.flatMap((job) => Array.from({ length: CHUNKS_PER_JOB }, (_, i) => segmentChunkKey(job.id, i, 'compressed')));

describeWithDeepStores('deep mode: the incremental poll (SCAN, then PTTL + STRLEN only for keys without a live reading)', () => {
  const dir = useTempDir('deep-incremental-stores-', { scope: 'suite' });
  const tmp = useTempDir('deep-incremental-');
  let redis: RedisServer;
  let postgres: PostgresCluster;
  let admin: Redis;
  let db: pg.Client;
  let cache: CacheReader | undefined;
  let segments: SegmentReader | undefined;
  let ledger: Ledger | undefined;
  /** The warden's clock: the real one plus a jump the test makes (Redis's TTLs run on real time). */
  let offset = 0;
  const clock = { now: () => Date.now() + offset };

  beforeAll(async () => {
    redis = await startRedis(dir.path);
    postgres = await startPostgres(dir.path);
    admin = new Redis(redis.url);
    admin.on('error', () => undefined);
    db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    await createCvatTables(db);
    const now = new Date().toISOString();
    await db.query(
      "INSERT INTO engine_data (id, chunk_size, size, start_frame, stop_frame, storage, storage_method) VALUES (1, $1, $2, 0, $3, 'local', 'cache')",
      [CHUNK_SIZE, JOBS * CHUNKS_PER_JOB * CHUNK_SIZE, JOBS * CHUNKS_PER_JOB * CHUNK_SIZE - 1],
    );
    await db.query(
      "INSERT INTO engine_task (id, name, data_id, segment_size, overlap, mode, created_date, updated_date) VALUES (1, 't', 1, $1, 0, 'annotation', $2, $2)",
      [CHUNKS_PER_JOB * CHUNK_SIZE, now],
    );
    for (const job of TASK.jobs) {
      await db.query(
        "INSERT INTO engine_segment (id, task_id, start_frame, stop_frame, type, frames, chunks_updated_date) VALUES ($1, 1, $2, $3, 'range', '[]', $4)",
        [job.id, job.startFrame, job.stopFrame, now],
      );
      await db.query(
        "INSERT INTO engine_job (id, segment_id, type, state, stage, created_date, updated_date) VALUES ($1, $1, 'annotation', 'in progress', 'annotation', $2, $2)",
        [job.id, now],
      );
    }
  }, 60_000);
  afterAll(async () => {
    await db.end();
    admin.disconnect();
    await redis.stop();
    await postgres.stop();
  });
  beforeEach(async () => {
    offset = 0;
    await admin.flushall();
    await admin.acl('LOG', 'RESET');
    return async () => {
      await cache?.close();
      await segments?.close();
      await ledger?.close();
      cache = segments = ledger = undefined;
    };
  });

  function store(text: string, kind: 'redis' | 'postgres'): StoreUrl {
    const parsed = parseStoreUrl(text, kind, kind);
    if ('problem' in parsed) throw new Error(parsed.problem);
    return parsed;
  }

  async function open(options: { reverifyPolls?: number; scanPattern?: string } = {}): Promise<DeepSync> {
    cache = new CacheReader({ store: store(redis.wardenUrl, 'redis'), scanKeysPerSecond: 1e9, scanCount: 7 });
    segments = new SegmentReader({ store: store(postgres.url, 'postgres') });
    ledger = await Ledger.open(tmp.path, { durable: false, clock });
    return new DeepSync({ cache, segments, ledger, scheme: 'segment', clock, reverifyPolls: options.reverifyPolls ?? 1000, ...options });
  }

  /** Commands the warden sent during `run`, by name. */
  async function counted(run: () => Promise<DeepSyncResult>): Promise<{ result: DeepSyncResult; sent: Record<string, number> }> {
    const before = new Map(cache!.sent);
    const result = await run();
    const sent: Record<string, number> = {};
    for (const [name, n] of cache!.sent) if (n - (before.get(name) ?? 0) > 0) sent[name] = n - (before.get(name) ?? 0);
    return { result, sent };
  }

  /** When the ledger says key `i` (of KEYS) leaves the cache. */
  function believedExpiry(i: number): number {
    const job = TASK.jobs[Math.floor(i / CHUNKS_PER_JOB)]!;
    const entry = ledger!.get(`j${job.id}/compressed`, i % CHUNKS_PER_JOB)!;
    expect(entry.outcome).toBe('warm');
    return entry.confirmedAt + CHUNK_TTL_MS;
  }

  async function cacheAll(pxMs: (i: number) => number, bytes = 100): Promise<void> {
    const pipeline = admin.pipeline();
    KEYS.forEach((key, i) => pipeline.set(key, Buffer.alloc(bytes + i, 0x80), 'PX', pxMs(i)));
    await pipeline.exec();
  }

  it('a steady poll sends SCANs only: expiry and size come from the first reading; the gauge still matches STRLEN', async () => {
    await cacheAll((i) => HOUR + i * 60_000);
    const sync = await open();
    const first = await counted(() => sync.sync([TASK], PLAN));
    expect(first.result).toMatchObject({ keyed: KEYS.length, cached: KEYS.length, probed: KEYS.length, scanTrusted: true });
    expect(first.sent['pttl']).toBe(KEYS.length);

    const steady = await counted(() => sync.sync([TASK], PLAN));
    expect(steady.result).toMatchObject({ cached: KEYS.length, probed: 0, learned: 0, voided: 0, scanTrusted: true });
    expect(Object.keys(steady.sent)).toEqual(['scan']);
    expect(steady.sent['scan']).toBeGreaterThanOrEqual(Math.ceil(KEYS.length / 7)); // COUNT 7: several calls, one pass
    expect(steady.result.bytes).toBe((await strlenSum(admin)).bytes);
    // The belief is the truth: the ledger's expiry of each key is within the poll's time of its PTTL.
    for (let i = 0; i < KEYS.length; i++) expect(Math.abs(believedExpiry(i) - (Date.now() + (await admin.pttl(KEYS[i]!))))).toBeLessThan(2_500);
    // Every command was the warden's read-only user's, none refused.
    expect(await admin.acl('LOG')).toEqual([]);
  });

  it('a key deleted and rebuilt before its known expiry is believed to expire at the OLD (earlier) time, then read again once that passes', async () => {
    await cacheAll(() => 20 * HOUR);
    const rebuilt = 3;
    await admin.set(KEYS[rebuilt]!, Buffer.alloc(100, 0x80), 'PX', 2 * HOUR);
    const sync = await open();
    await sync.sync([TASK], PLAN);
    const oldExpiry = believedExpiry(rebuilt);

    // CVAT deletes and builds it again (an invalidation, then an annotator's read): a new copy, a full TTL, a new size.
    await admin.del(KEYS[rebuilt]!);
    await admin.set(KEYS[rebuilt]!, Buffer.alloc(5000, 0x80), 'PX', 24 * HOUR);
    const next = await counted(() => sync.sync([TASK], PLAN));
    expect(next.sent['pttl']).toBeUndefined();
    expect(next.result).toMatchObject({ cached: KEYS.length, voided: 0 });
    // The safe side: the warden believes the copy leaves at the old time, before the truth — so it comes due early, never late.
    const truth = Date.now() + (await admin.pttl(KEYS[rebuilt]!));
    expect(believedExpiry(rebuilt)).toBe(oldExpiry);
    expect(oldExpiry).toBeLessThan(truth - 21 * HOUR);

    // The old expiry passes (the warden's clock jumps 2 h; the rebuilt copy is still there): it is read again, and only it.
    offset = 2 * HOUR + 60_000;
    const after = await counted(() => sync.sync([TASK], PLAN));
    expect(after.sent['pttl']).toBe(1);
    expect(after.result).toMatchObject({ cached: KEYS.length, probed: 1, learned: 1 });
    expect(Math.abs(believedExpiry(rebuilt) - (clock.now() + (await admin.pttl(KEYS[rebuilt]!))))).toBeLessThan(2_500);
    expect(after.result.bytes).toBe((await strlenSum(admin)).bytes);
  });

  it('re-verifies every reading within two periods of reverifyPolls polls, spread: a rebuilt copy’s size and expiry are right again without waiting for the old expiry', async () => {
    await cacheAll(() => 20 * HOUR);
    const sync = await open({ reverifyPolls: 3 });
    await sync.sync([TASK], PLAN);
    await admin.set(KEYS[0]!, Buffer.alloc(7000, 0x80), 'PX', 24 * HOUR);
    const probed: number[] = [];
    for (let poll = 0; poll < 5; poll++) probed.push((await sync.sync([TASK], PLAN)).probed);
    // Nothing within a period of the first reading; then a third of the readings per poll, oldest first, each once.
    expect(probed).toEqual([0, 0, 7, 7, 6]);
    const last = await sync.sync([TASK], PLAN);
    expect(last.bytes).toBe((await strlenSum(admin)).bytes);
    expect(Math.abs(believedExpiry(0) - (Date.now() + (await admin.pttl(KEYS[0]!))))).toBeLessThan(2_500);
  });

  it('a key gone from a complete SCAN is voided at the next poll; a FLUSHALL is a wipe read by the SCAN alone', async () => {
    await cacheAll(() => 20 * HOUR);
    const sync = await open();
    await sync.sync([TASK], PLAN);
    await admin.del(KEYS[5]!);
    const one = await counted(() => sync.sync([TASK], PLAN));
    expect(one.result).toMatchObject({ cached: KEYS.length - 1, missing: 1, voided: 1, wipeSuspected: false });
    expect(believedExpiry(5)).toBeLessThanOrEqual(clock.now()); // due now
    expect(one.sent['pttl']).toBe(1); // the sample that checks the SCAN

    // An annotator builds it again: the SCAN shows it, and only it is probed.
    await admin.set(KEYS[5]!, Buffer.alloc(100, 0x80), 'PX', 24 * HOUR);
    const back = await counted(() => sync.sync([TASK], PLAN));
    expect(back.result).toMatchObject({ cached: KEYS.length, probed: 1 });

    await admin.flushall();
    const wiped = await counted(() => sync.sync([TASK], PLAN));
    expect(wiped.result).toMatchObject({ cached: 0, voided: KEYS.length, wipeSuspected: true, scanTrusted: true });
    expect(wiped.sent['pttl']).toBeLessThanOrEqual(16); // the sample only
    for (let i = 0; i < KEYS.length; i++) expect(believedExpiry(i)).toBeLessThanOrEqual(clock.now());
    // Keys the SCAN never saw again stay absent without a probe.
    const quiet = await counted(() => sync.sync([TASK], PLAN));
    expect(quiet.result).toMatchObject({ cached: 0, probed: 0 });
    expect(Object.keys(quiet.sent)).toEqual(['scan']);
  });

  it('a SCAN that cannot see keys that are there is caught by the sample: nothing is voided, every key is read', async () => {
    await cacheAll(() => 20 * HOUR);
    // A pattern no key matches stands for a SCAN that misses keys (a store that lists another namespace).
    const sync = await open({ scanPattern: ':1:no-such-key-*' });
    await sync.sync([TASK], PLAN);
    const blind = await counted(() => sync.sync([TASK], PLAN));
    expect(blind.result).toMatchObject({ cached: KEYS.length, voided: 0, wipeSuspected: false, scanTrusted: false, probed: KEYS.length });
    expect(blind.sent['pttl']).toBe(KEYS.length);
  });

  it('a key the SCAN does not list but the warden built since the last reading is probed, not voided (SCAN promises nothing for keys built while it runs)', async () => {
    // The pattern stands for a SCAN that ran before the builds landed: it lists none of them.
    const sync = await open({ scanPattern: ':1:no-such-key-*' });
    const empty = await sync.sync([TASK], PLAN);
    expect(empty).toMatchObject({ cached: 0, missing: KEYS.length, probed: KEYS.length });
    // The warden builds every chunk and records it, as the engine does after a request that built it.
    await cacheAll(() => 24 * HOUR);
    for (const job of TASK.jobs)
      for (let i = 0; i < CHUNKS_PER_JOB; i++) ledger!.record(`j${job.id}/compressed`, i, { confirmedAt: clock.now(), outcome: 'warm' });
    const next = await counted(() => sync.sync([TASK], PLAN));
    expect(next.result).toMatchObject({ cached: KEYS.length, voided: 0, probed: KEYS.length });
    // Once read, the same keys unlisted are contested no more: the reading explains the ledger, and the sample decides.
    for (let i = 0; i < KEYS.length; i++) expect(Math.abs(believedExpiry(i) - (Date.now() + (await admin.pttl(KEYS[i]!))))).toBeLessThan(2_500);
  });

  it('drops the readings of keys no longer in scope', async () => {
    await cacheAll(() => 20 * HOUR);
    const sync = await open();
    await sync.sync([TASK], PLAN);
    expect(sync.knownKeys).toBe(KEYS.length);
    await sync.sync([{ ...TASK, jobs: TASK.jobs.slice(0, 1) }], PLAN);
    expect(sync.knownKeys).toBe(CHUNKS_PER_JOB);
  });
});
