/**
 * Real stores for deep mode's tests: Debian's `redis-server` (standing in for Kvrocks: same
 * protocol and commands) and a throw-away PostgreSQL cluster (`initdb`, `pg_ctl`, a temp dir,
 * a random port, trust auth, user `root` and database `cvat` like CVAT's compose). One of each
 * per test file; `scripts/install-deep-stores.sh` installs them (CI runs it). Without the
 * binaries the tests skip with a clear message, except on CI, where that is a failure.
 *
 * CVAT's tables are created with CVAT's own column names, read from its fixture
 * `tests/python/shared/assets/cvat_db/data.json` (2.73.0, Django naming: table
 * `engine_<model>`, foreign key `x` → column `x_id`, an index on every foreign key as Django
 * makes one), and filled from the emulator's tasks, segments and jobs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { describe, it } from 'vitest';
import type { Deployment } from '../../src/emulator/index.js';
import { SHARED_CVAT } from './shared-cvat.js';

function onPath(bin: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Debian keeps initdb/pg_ctl in /usr/lib/postgresql/<major>/bin, off PATH. */
function pgBinDir(): string | undefined {
  const initdb = onPath('initdb');
  if (initdb) return join(initdb, '..');
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  for (const major of readdirSync(root).sort((a, b) => Number(b) - Number(a))) {
    const dir = join(root, major, 'bin');
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  return undefined;
}

/** CVAT's database fixture: the throw-away PostgreSQL gets CVAT's tables from it. */
const DB_FIXTURE = join(SHARED_CVAT, 'v2.73.0/tests/python/shared/assets/cvat_db/data.json');

export function deepStoresMissing(): string | undefined {
  const missing = [!onPath('redis-server') && 'redis-server', !pgBinDir() && 'PostgreSQL (initdb, pg_ctl)'].filter(Boolean);
  if (missing.length) return `${missing.join(' and ')} not installed (run scripts/install-deep-stores.sh)`;
  return existsSync(DB_FIXTURE) ? undefined : `CVAT's database fixture not found at ${DB_FIXTURE} (../shared beside the repo)`;
}

/** describe(), or a skip naming what is missing; on CI a missing store is a failure. */
export function describeWithDeepStores(name: string, fn: () => void): void {
  const missing = deepStoresMissing();
  if (!missing) {
    describe(name, fn);
    return;
  }
  if (process.env['CI'] === 'true') {
    describe(name, () => {
      it('needs redis-server and PostgreSQL', () => {
        throw new Error(`CI=true but ${missing}`);
      });
    });
    return;
  }
  describe.skip(`${name} — skipped: ${missing}`, () => it('needs the stores', () => undefined));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function waitForOutput(child: ChildProcess, pattern: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${seen.slice(-500)}`)), 20_000);
    const onData = (data: Buffer) => {
      seen += data.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${seen.slice(-500)}`));
    });
  });
}

/** The read-only user the warden connects as in these tests: only read commands are allowed at all. */
export const WARDEN_REDIS_USER = { name: 'warden', password: 'warden-redis-secret-0042' };

export interface RedisServer {
  port: number;
  /** URL of the default (read-write) user: the emulator's mirror, the test's FLUSHALL. */
  url: string;
  /** URL of the read-only ACL user the warden gets. */
  wardenUrl: string;
  stop(): Promise<void>;
}

export async function startRedis(dir: string): Promise<RedisServer> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await waitForOutput(child, /Ready to accept connections/, 'redis-server');
  // The warden's user: read commands only (+@read holds PTTL, STRLEN, EXISTS, SCAN, TYPE, LLEN, DBSIZE) and the
  // connection's own INFO/PING/AUTH/HELLO/SELECT/QUIT. Any write it tried would answer NOPERM and land in ACL LOG.
  const admin = new Redis(`redis://127.0.0.1:${port}`);
  await admin.acl(
    'SETUSER',
    WARDEN_REDIS_USER.name,
    'on',
    `>${WARDEN_REDIS_USER.password}`,
    '~*',
    'resetchannels',
    '-@all',
    '+@read',
    '+info',
    '+ping',
    '+auth',
    '+hello',
    '+select',
    '+quit',
  );
  admin.disconnect();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    wardenUrl: `redis://${WARDEN_REDIS_USER.name}:${WARDEN_REDIS_USER.password}@127.0.0.1:${port}/0`,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) {
          resolve();
          return;
        }
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface PostgresCluster {
  port: number;
  /** postgres://root@127.0.0.1:<port>/cvat, as CVAT's compose (user root, trust). */
  url: string;
  stop(): Promise<void>;
}

/** initdb refuses root: as root, the cluster runs as the `postgres` (or `nobody`) user. */
function clusterUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      // try the next
    }
  }
  throw new Error('running as root and no postgres/nobody user to run PostgreSQL as');
}

export async function startPostgres(dir: string): Promise<PostgresCluster> {
  const bin = pgBinDir();
  if (!bin) throw new Error('PostgreSQL binaries not found');
  const port = await freePort();
  const data = join(dir, 'pgdata');
  const sockets = join(dir, 'sockets');
  mkdirSync(sockets, { recursive: true });
  const user = clusterUser();
  if (user) for (const p of [dir, sockets]) chownSync(p, user.uid, user.gid);
  const as = user ? { uid: user.uid, gid: user.gid } : {};
  const env = { ...process.env, LC_ALL: 'C' };
  execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'root', '--auth=trust', '-E', 'UTF8', '--no-sync'], { ...as, env, stdio: 'pipe' });
  const options = `-p ${port} -k ${sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
  execFileSync(join(bin, 'pg_ctl'), ['-D', data, '-o', options, '-l', join(dir, 'postgres.log'), '-w', 'start'], { ...as, env, stdio: 'pipe' });
  const admin = new pg.Client({ connectionString: `postgres://root@127.0.0.1:${port}/postgres` });
  await admin.connect();
  await admin.query('CREATE DATABASE cvat');
  await admin.end();
  return {
    port,
    url: `postgres://root@127.0.0.1:${port}/cvat`,
    stop: () => {
      try {
        execFileSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { ...as, env, stdio: 'pipe' });
      } catch {
        // already stopped
      }
      return Promise.resolve();
    },
  };
}

/** Foreign keys of the four models deep mode reads (their fixture values are ids or natural keys). */
const FOREIGN_KEYS: Record<string, readonly string[]> = {
  'engine.data': ['cloud_storage'],
  'engine.task': ['assignee', 'data', 'organization', 'owner', 'project', 'source_storage', 'target_storage'],
  'engine.segment': ['task'],
  'engine.job': ['assignee', 'parent_job', 'segment'],
};

export interface CvatTable {
  name: string;
  columns: Array<{ name: string; type: string }>;
}

/** CVAT's tables for data, task, segment and job, from the 2.73.0 fixture's column names. */
export function cvatTables(): CvatTable[] {
  const fixture = JSON.parse(readFileSync(DB_FIXTURE, 'utf8')) as Array<{
    model: string;
    fields: Record<string, unknown>;
  }>;
  const tables: CvatTable[] = [];
  for (const model of Object.keys(FOREIGN_KEYS)) {
    const sample = fixture.find((o) => o.model === model);
    if (!sample) throw new Error(`the CVAT fixture has no ${model}`);
    const fks = FOREIGN_KEYS[model]!;
    const columns = [{ name: 'id', type: 'integer PRIMARY KEY' }];
    for (const [field, value] of Object.entries(sample.fields)) {
      if (fks.includes(field)) columns.push({ name: `${field}_id`, type: 'integer' });
      else if (typeof value === 'number') columns.push({ name: field, type: Number.isInteger(value) ? 'integer' : 'double precision' });
      else if (typeof value === 'boolean') columns.push({ name: field, type: 'boolean' });
      else if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value)) columns.push({ name: field, type: 'timestamptz' });
      else columns.push({ name: field, type: 'text' });
    }
    tables.push({ name: model.replace('.', '_'), columns });
  }
  return tables;
}

export async function createCvatTables(client: pg.Client): Promise<CvatTable[]> {
  const tables = cvatTables();
  for (const table of tables) {
    await client.query(`CREATE TABLE ${table.name} (${table.columns.map((c) => `"${c.name}" ${c.type}`).join(', ')})`);
    for (const c of table.columns) if (c.name.endsWith('_id')) await client.query(`CREATE INDEX ON ${table.name} ("${c.name}")`);
  }
  return tables;
}

/** Inserts the emulator's data, tasks, segments and jobs (columns the fixture has; the rest NULL). */
export async function fillFromEmulator(client: pg.Client, deployment: Deployment): Promise<void> {
  const now = new Date().toISOString();
  for (const task of deployment.tasks.values()) {
    if (task.dataId !== null) {
      await client.query(
        'INSERT INTO engine_data (id, chunk_size, size, start_frame, stop_frame, storage, storage_method) VALUES ($1, $2, $3, 0, $4, $5, $6) ON CONFLICT DO NOTHING',
        [task.dataId, task.chunkSize, task.frames.length, Math.max(0, task.frames.length - 1), task.storage, 'cache'],
      );
    }
    await client.query(
      'INSERT INTO engine_task (id, name, data_id, segment_size, overlap, mode, created_date, updated_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)',
      [task.id, task.name, task.dataId, task.segmentSize, task.overlap, task.mode, now],
    );
    for (const seg of task.segments) {
      await client.query(
        'INSERT INTO engine_segment (id, task_id, start_frame, stop_frame, type, frames, chunks_updated_date) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [seg.id, task.id, seg.startFrame, seg.stopFrame, seg.type, JSON.stringify(seg.frames ?? []), new Date(seg.chunksUpdatedMs).toISOString()],
      );
    }
    for (const job of task.jobs) {
      await client.query(
        'INSERT INTO engine_job (id, segment_id, parent_job_id, type, state, stage, created_date, updated_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)',
        [job.id, job.segmentId, job.parentJobId, job.type, job.state, job.stage, now],
      );
    }
  }
}

/** Every row of the four tables, for "the warden changed nothing". */
export async function snapshotRows(client: pg.Client): Promise<string> {
  const parts: string[] = [];
  for (const table of ['engine_data', 'engine_task', 'engine_segment', 'engine_job']) {
    const rows = await client.query(`SELECT * FROM ${table} ORDER BY id`);
    parts.push(JSON.stringify(rows.rows));
  }
  return parts.join('\n');
}

/** Every key of the store and the sum of their STRLEN: what the media cache really holds, read by the test's own connection. */
export async function strlenSum(redis: Redis): Promise<{ keys: number; bytes: number }> {
  let cursor = '0';
  let keys = 0;
  let bytes = 0;
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    keys += batch.length;
    for (const key of batch) bytes += await redis.strlen(key);
  } while (cursor !== '0');
  return { keys, bytes };
}
