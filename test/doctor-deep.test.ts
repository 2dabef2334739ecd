/**
 * `cvat-warden doctor` with deep mode (the built CLI against the emulator, a real redis-server
 * as the media cache with a read-only ACL user, and a throw-away PostgreSQL with CVAT's tables):
 * each store reachable read-only with a fix line when not, the key format of the CVAT version
 * that answers (cvat/apps/engine/cache.py: 2.73 `segment_{id}_chunk_{i}_{q}`, 2.14
 * `{data_id}_{n}_Quality.COMPRESSED`), the job → segment mapping against the API, and no
 * password in any output.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import { DEMO_CREDENTIALS, RedisCacheMirror, startEmulator, syntheticDeployment, type Emulator } from '../src/emulator/index.js';
import { runCli } from './support/cli.js';
import { useTempDir } from './support/tmp.js';
import {
  WARDEN_REDIS_USER,
  createCvatTables,
  describeWithDeepStores,
  fillFromEmulator,
  freePort,
  snapshotRows,
  startPostgres,
  startRedis,
  type PostgresCluster,
  type RedisServer,
} from './support/deep-stores.js';

interface Check {
  name: string;
  level: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}

const CACHE = 'media cache (deep mode)';
const DATABASE = 'CVAT database (deep mode)';
const QUEUE = 'chunk queue (deep mode)';
const DB_PASSWORD = 'doctor-db-password-0077';

describeWithDeepStores('cvat-warden doctor: deep mode (real redis-server and PostgreSQL)', () => {
  const dir = useTempDir('doctor-deep-stores-', { scope: 'suite' });
  let redis: RedisServer;
  let postgres: PostgresCluster;
  let admin: Redis;
  let db: pg.Client;
  let emulator: Emulator;
  let mirror: RedisCacheMirror;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    redis = await startRedis(dir.path);
    cleanups.push(() => redis.stop());
    postgres = await startPostgres(dir.path);
    cleanups.push(() => postgres.stop());
    admin = new Redis(redis.url);
    admin.on('error', () => undefined);
    cleanups.push(() => admin.quit());
    db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    cleanups.push(() => db.end());
    await createCvatTables(db);
    // A password-protected read-only role, as the README tells admins to create.
    await db.query(`CREATE ROLE warden_ro LOGIN PASSWORD '${DB_PASSWORD}'`);
    await db.query('GRANT SELECT ON engine_job, engine_segment, engine_task, engine_data TO warden_ro');
    mirror = new RedisCacheMirror(redis.url, { now: () => Date.now() });
    cleanups.push(() => mirror.close());
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 2, framesPerTask: 120, mediaType: 'image' }), buildTimeMs: 1, cacheObserver: mirror });
    cleanups.push(() => emulator.close());
    await fillFromEmulator(db, emulator.deployment);
    // An annotator opened one job: CVAT's cache holds keys in 2.73's format.
    const job = [...emulator.deployment.jobs.values()][0]!;
    await (await fetch(`${emulator.url}/api/jobs/${job.id}/data?type=chunk&quality=compressed&index=0`)).arrayBuffer();
    await mirror.settled();
  }, 60_000);
  afterAll(async () => {
    // In reverse order of start; whatever beforeAll got to.
    for (const stop of cleanups.reverse()) await stop();
  });

  const dbUrl = (user = `warden_ro:${DB_PASSWORD}`) => postgres.url.replace('root@', `${user}@`);
  async function doctor(extra: NodeJS.ProcessEnv): Promise<{ code: number | null; checks: Check[]; text: string }> {
    const result = await runCli(
      ['doctor', '--json'],
      {
        CVAT_URL: emulator.url,
        CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken,
        CVAT_WARDEN_STATE_DIR: join(dir.path, 'state'),
        CVAT_WARDEN_LISTEN: '127.0.0.1:1',
        ...extra,
      },
      { timeoutMs: 60_000 },
    );
    const human = await runCli(['doctor'], {
      CVAT_URL: emulator.url,
      CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken,
      CVAT_WARDEN_STATE_DIR: join(dir.path, 'state'),
      CVAT_WARDEN_LISTEN: '127.0.0.1:1',
      ...extra,
    });
    return {
      code: result.code,
      checks: (JSON.parse(result.stdout) as { checks: Check[] }).checks,
      text: [result.stdout, result.stderr, human.stdout, human.stderr].join('\n'),
    };
  }
  const find = (checks: Check[], name: string) => checks.find((c) => c.name === name);

  it('says deep mode is off when no store is configured', async () => {
    const { checks } = await doctor({});
    expect(find(checks, 'deep mode')).toMatchObject({ level: 'ok', detail: expect.stringContaining('off') as unknown });
    expect(find(checks, CACHE)).toBeUndefined();
  }, 60_000);

  it('passes each store: reachable, read-only, 2.73 key format, segments agree with the API; no password shown, nothing written', async () => {
    const rowsBefore = await snapshotRows(db);
    await admin.acl('LOG', 'RESET');
    const { checks, text } = await doctor({ CVAT_WARDEN_CACHE_URL: redis.wardenUrl, CVAT_WARDEN_DB_URL: dbUrl(), CVAT_WARDEN_QUEUE_URL: redis.wardenUrl });
    expect(find(checks, CACHE)).toMatchObject({ level: 'ok', detail: expect.stringContaining('segment_<id>_chunk_<n>') as unknown });
    expect(find(checks, DATABASE)).toMatchObject({
      level: 'ok',
      detail: expect.stringMatching(/read-only session; the role may only read; segments of \d sample job/) as unknown,
    });
    expect(find(checks, QUEUE)).toMatchObject({ level: 'ok', detail: expect.stringContaining('0 chunk build(s) waiting') as unknown });
    expect(find(checks, 'deep mode')).toBeUndefined();
    for (const secret of [WARDEN_REDIS_USER.password, DB_PASSWORD]) expect(text).not.toContain(secret);
    expect(text).toContain(`redis://127.0.0.1:${redis.port}/0`);
    // The read-only ACL user was never refused a command; no row moved.
    expect(await admin.acl('LOG')).toEqual([]);
    expect(await snapshotRows(db)).toBe(rowsBefore);
  }, 60_000);

  it('says when the role itself could write (CVAT compose: root), and passes', async () => {
    const { checks } = await doctor({ CVAT_WARDEN_CACHE_URL: redis.wardenUrl, CVAT_WARDEN_DB_URL: postgres.url });
    expect(find(checks, DATABASE)).toMatchObject({ level: 'ok', detail: expect.stringContaining('the role itself may write') as unknown });
  }, 60_000);

  it('fails, with a fix line, a store that does not answer, keys of another CVAT version, and a database of another CVAT', async () => {
    const closed = await freePort();
    const down = await doctor({ CVAT_WARDEN_CACHE_URL: `redis://:hunter2-cache-secret@127.0.0.1:${closed}`, CVAT_WARDEN_DB_URL: dbUrl() });
    expect(down.code).toBe(1);
    expect(find(down.checks, CACHE)).toMatchObject({ level: 'fail', fix: expect.stringContaining('CVAT_WARDEN_CACHE_URL') as unknown });
    expect(down.text).not.toContain('hunter2-cache-secret');

    // 2.14's names in the cache of a 2.73 CVAT: the warden would find nothing it looks for.
    await admin.flushall();
    await admin.set(':1:7_0_Quality.COMPRESSED', 'x', 'EX', 3600);
    await admin.set(':1:context_image_7_3', 'x', 'EX', 3600);
    const legacy = await doctor({ CVAT_WARDEN_CACHE_URL: redis.wardenUrl, CVAT_WARDEN_DB_URL: dbUrl() });
    expect(find(legacy.checks, CACHE)).toMatchObject({ level: 'fail', detail: expect.stringContaining('Quality.COMPRESSED') as unknown });

    // Something else's keys (the in-memory Redis): a warning naming the likely mix-up.
    await admin.flushall();
    await admin.set('rq:job:abc', 'x');
    const foreign = await doctor({ CVAT_WARDEN_CACHE_URL: redis.wardenUrl, CVAT_WARDEN_DB_URL: dbUrl() });
    expect(find(foreign.checks, CACHE)).toMatchObject({ level: 'warn', fix: expect.stringContaining('cvat_redis_ondisk') as unknown });

    // A database without this CVAT's jobs.
    await db.query('TRUNCATE engine_job');
    const other = await doctor({ CVAT_WARDEN_CACHE_URL: redis.wardenUrl, CVAT_WARDEN_DB_URL: dbUrl() });
    expect(find(other.checks, DATABASE)).toMatchObject({ level: 'fail', detail: expect.stringContaining('is not in the database') as unknown });
    expect(other.text).not.toContain(DB_PASSWORD);
  }, 90_000);
});
