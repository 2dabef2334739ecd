/**
 * doctor: deep mode's stores (CVAT_WARDEN_CACHE_URL, _DB_URL, _QUEUE_URL), each with a fix line.
 * - media cache: reachable with the warden's read-only command allow-list, and a sample of its
 *   keys (at most SAMPLE_SCANS SCAN calls) in the key format of the CVAT version that answers
 *   (keys.ts: segment keys on 2.20+, `{data}_{n}_Quality.X` before) — a wrong store (the
 *   in-memory Redis, another CVAT's cache) shows here;
 * - database: a read-only session opens (checked with `SHOW transaction_read_only`), whether the
 *   role itself could write, and the job → segment mapping agrees with the API for sample jobs;
 * - chunk queue: reachable, its length.
 * Stores are named by their safe label only: a password in a URL is never printed.
 */
import type { DeepConfig } from '../config/index.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { Job } from '../cvat/shapes.js';
import { schemeOfKey, type KeyScheme } from '../deep/keys.js';
import { describeError } from '../errors.js';
import type { DoctorAdd } from './doctor.js';

/** SCAN calls (COUNT 100 each) the key-format sample may take: bounded on a cache of millions of keys. */
const SAMPLE_SCANS = 10;
const SAMPLE_KEYS = 500;
const TIMEOUT_MS = 5000;

const SCHEME_NAME: Record<KeyScheme, string> = {
  segment: 'segment_<id>_chunk_<n>_<0|100> (CVAT 2.20+)',
  data: '<data_id>_<n>_Quality.COMPRESSED (CVAT before 2.20)',
};

/** The store clients, loaded by checkDeepStores when a store is configured. */
interface StoreReaders {
  CacheReader: typeof import('../deep/cache-reader.js').CacheReader;
  SegmentReader: typeof import('../deep/segment-reader.js').SegmentReader;
  queueKey: string;
}

export async function checkDeepStores(deep: DeepConfig, features: CvatFeatures | undefined, jobs: readonly Job[], add: DoctorAdd): Promise<void> {
  if (!deep.cache && !deep.database && !deep.queue) {
    add('deep mode', 'ok', "off: the warden infers CVAT's cache from answer times (a wiped cache is noticed by its canary)", undefined);
    return;
  }
  // The store clients (ioredis, pg) load only when a store is configured: every other doctor run skips ~70 ms of loading.
  const [{ CacheReader }, { SegmentReader }, { CHUNK_QUEUE_KEY }] = await Promise.all([
    import('../deep/cache-reader.js'),
    import('../deep/segment-reader.js'),
    import('../deep/deep-mode.js'),
  ]);
  const readers: StoreReaders = { CacheReader, SegmentReader, queueKey: CHUNK_QUEUE_KEY };
  if (deep.cache) await checkCache(deep.cache, features, add, readers);
  if (deep.database) await checkDatabase(deep.database, jobs, add, readers);
  if (deep.queue) await checkQueue(deep.queue, add, readers);
}

async function checkCache(
  store: NonNullable<DeepConfig['cache']>,
  features: CvatFeatures | undefined,
  add: DoctorAdd,
  { CacheReader }: StoreReaders,
): Promise<void> {
  const name = 'media cache (deep mode)';
  const reader = new CacheReader({ store, timeoutMs: TIMEOUT_MS });
  try {
    await reader.ping();
    const keys: string[] = [];
    let cursor = '0';
    for (let i = 0; i < SAMPLE_SCANS && keys.length < SAMPLE_KEYS; i++) {
      const [next, batch] = (await reader.send('scan', cursor, 'COUNT', 100)) as [string, string[]];
      keys.push(...batch);
      cursor = next;
      if (cursor === '0') break;
    }
    const by: Record<KeyScheme, number> = { segment: 0, data: 0 };
    for (const key of keys) {
      const scheme = schemeOfKey(key);
      if (scheme) by[scheme]++;
    }
    const expected: KeyScheme | undefined = features ? (features.indexChunks ? 'segment' : 'data') : undefined;
    const other: KeyScheme | undefined = expected === 'segment' ? 'data' : expected === 'data' ? 'segment' : undefined;
    const readOnly = 'the warden sends only PING, SCAN, PTTL, STRLEN, EXISTS, LLEN';
    if (keys.length === 0) {
      add(name, 'ok', `${store.safeLabel} answers; it holds no keys yet (nothing built, or just cleared); ${readOnly}`);
    } else if (expected && by[expected] > 0) {
      add(
        name,
        'ok',
        `${store.safeLabel} answers; ${by[expected]} of ${keys.length} sampled keys are CVAT's, in the format ${SCHEME_NAME[expected]}; ${readOnly}`,
      );
    } else if (expected && other && by[other] > 0) {
      add(
        name,
        'fail',
        `${store.safeLabel} holds keys in the format ${SCHEME_NAME[other]}, but CVAT ${features!.version.raw} writes ${SCHEME_NAME[expected]}`,
        "point CVAT_WARDEN_CACHE_URL at this CVAT's media cache (compose: redis://cvat_redis_ondisk:6666; Helm: <release>-kvrocks:6666)",
      );
    } else {
      add(
        name,
        'warn',
        `${store.safeLabel} answers, but none of ${keys.length} sampled keys is a CVAT media-cache key`,
        "is this the in-memory Redis (cvat_redis_inmem) rather than the media cache? Use CVAT's Kvrocks: compose redis://cvat_redis_ondisk:6666",
      );
    }
  } catch (error) {
    add(
      name,
      'fail',
      `${describeError(error)}: deep mode falls back to shallow mode`,
      'check CVAT_WARDEN_CACHE_URL (compose: redis://cvat_redis_ondisk:6666; Helm: redis://:<password from <release>-kvrocks-secret>@<release>-kvrocks:6666) and that this host is on its network',
    );
  } finally {
    await reader.close();
  }
}

async function checkDatabase(store: NonNullable<DeepConfig['database']>, jobs: readonly Job[], add: DoctorAdd, { SegmentReader }: StoreReaders): Promise<void> {
  const name = 'CVAT database (deep mode)';
  const reader = new SegmentReader({ store, timeoutMs: TIMEOUT_MS });
  try {
    if (!(await reader.readOnly())) throw new Error('the session is not read-only');
    const mayWrite = await reader.roleMayWrite();
    const role = mayWrite ? 'the role itself may write (the session refuses writes; a read-only role is a second lock, see README)' : 'the role may only read';
    const sample = jobs.slice(0, 3);
    if (sample.length === 0) {
      add(name, 'ok', `${store.safeLabel}: read-only session; ${role}; no job to compare with the API`);
      return;
    }
    const rows = await reader.jobsOfTasks([...new Set(sample.map((j) => j.task_id))]);
    const byJob = new Map(rows.map((r) => [r.jobId, r]));
    const disagree: string[] = [];
    for (const job of sample) {
      const row = byJob.get(job.id);
      if (!row) disagree.push(`job ${job.id} is not in the database`);
      else if (row.taskId !== job.task_id || row.startFrame !== job.start_frame || row.stopFrame !== job.stop_frame)
        disagree.push(
          `job ${job.id}: database says task ${row.taskId} frames ${row.startFrame}–${row.stopFrame}, the API task ${job.task_id} frames ${job.start_frame}–${job.stop_frame}`,
        );
    }
    if (disagree.length)
      add(
        name,
        'fail',
        `${store.safeLabel} is not this CVAT's database: ${disagree.join('; ')}`,
        'point CVAT_WARDEN_DB_URL at the database of the CVAT in CVAT_URL (compose: postgres://root@cvat_db/cvat)',
      );
    else
      add(
        name,
        'ok',
        `${store.safeLabel}: read-only session; ${role}; segments of ${sample.length} sample job(s) agree with the API (job ${sample.map((j) => j.id).join(', ')})`,
      );
  } catch (error) {
    add(
      name,
      'fail',
      `${describeError(error)}: deep mode falls back to shallow mode`,
      'check CVAT_WARDEN_DB_URL (compose: postgres://root@cvat_db/cvat; Helm: the database secret), and that the role may CONNECT and SELECT engine_job, engine_segment, engine_task',
    );
  } finally {
    await reader.close();
  }
}

async function checkQueue(store: NonNullable<DeepConfig['queue']>, add: DoctorAdd, { CacheReader, queueKey }: StoreReaders): Promise<void> {
  const name = 'chunk queue (deep mode)';
  const reader = new CacheReader({ store, timeoutMs: TIMEOUT_MS });
  try {
    const length = await reader.llen(queueKey);
    add(name, 'ok', `${store.safeLabel} answers; ${length} chunk build(s) waiting in CVAT's queue "chunks"`);
  } catch (error) {
    add(
      name,
      'fail',
      describeError(error),
      'check CVAT_WARDEN_QUEUE_URL (compose: redis://cvat_redis_inmem:6379; Helm: <release>-redis-master:6379 with its password)',
    );
  } finally {
    await reader.close();
  }
}
