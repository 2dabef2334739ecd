/**
 * The cloud guard — the guard's core with the cloud source (src/guard/cloud-guard.ts) — against
 * the emulator's buckets (CVAT 2.73 content-v2 / status, see src/emulator/cloud.ts): `check --all`
 * names a deleted object's task, jobs, chunks and key with at most one listing call per directory
 * page, also without --share-dir on a cloud-only CVAT; rounds raise and clear a problem through
 * the core's tracker as an object goes and comes back; a restart keeps it; the LIST budget is
 * honoured (calls counted by the emulator).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { Ajv } from 'ajv';
import { afterEach, describe, expect, it } from 'vitest';
import { ListBudget } from '../src/cloud/index.js';
import { defaultCvatBounds } from '../src/config/index.js';
import { CvatClient } from '../src/cvat/client.js';
import { collectTaskRecords } from '../src/cvat/inventory.js';
import { CloudGuard, cloudGuardTask, type GuardTask } from '../src/guard/index.js';
import { DEMO_CREDENTIALS, demoAuth, startEmulator, type Emulator } from '../src/emulator/index.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { cloudTask, fillBucket, frameKeys } from './support/cloud.js';
import { runCli } from './support/cli.js';
import { addFormats } from './support/openapi.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('warden-cloud-guard-');
let emulator: Emulator | undefined;
let client: CvatClient | undefined;
afterEach(async () => {
  await client?.close();
  client = undefined;
  await emulator?.close();
  emulator = undefined;
});

const logger = createLogger({ level: 'silent' });
const validateCheck = addFormats(new Ajv({ strict: true, allErrors: true })).compile(JSON.parse(readFileSync('schemas/check.schema.json', 'utf8')) as object);

/** The cloud tasks of the emulator, as discovery hands them to the guard. */
async function cloudTasks(): Promise<GuardTask[]> {
  client ??= new CvatClient({ ...defaultCvatBounds(), baseUrl: emulator!.url, credentials: { kind: 'token', token: DEMO_CREDENTIALS.accessToken } });
  const features = await client.features();
  const out: GuardTask[] = [];
  for await (const record of collectTaskRecords(
    client,
    { all: true, taskIds: [], projectIds: [], jobIds: [] },
    { features, withMeta: true, onIssue: () => undefined },
  )) {
    const task = cloudGuardTask(record, features);
    if (task) out.push(task);
  }
  return out;
}

function newGuard(options: { budget?: ListBudget; stateDir?: string; metrics?: ReturnType<typeof createMetrics>; logger?: typeof logger } = {}): CloudGuard {
  return new CloudGuard({
    client: client!,
    budget: options.budget ?? new ListBudget(100),
    logger: options.logger ?? logger,
    metrics: options.metrics ?? createMetrics({ buildInfo: { version: 'test' } }),
    intervalMs: 60_000,
    ...(options.stateDir ? { stateDir: options.stateDir } : {}),
  });
}

describe('check --all with cloud-storage tasks', () => {
  it('exits 1 naming task, jobs, chunks and key of a deleted object, with one listing call per directory page', async () => {
    const bucket = join(tmp.path, 'bucket');
    // Task 1: 16 frames in one directory; task 2: 4 frames in the SAME directory (listed once) + context images.
    const keys1 = frameKeys('shared', 16);
    const keys2 = ['shared/x_0.jpg', 'shared/x_1.jpg', 'other/y_0.jpg', 'other/y_1.jpg'];
    fillBucket(bucket, [...keys1, ...keys2, 'shared/related_images/x_0_jpg/a.jpg', 'shared/related_images/x_0_jpg/b.jpg']);
    emulator = await startEmulator({
      auth: demoAuth(),
      cloudStorages: [{ id: 5, resource: 'lab-bucket', bucketDir: bucket }],
      tasks: [cloudTask(1, 5, keys1), cloudTask(2, 5, keys2, { relatedFiles: [2] })],
    });
    const share = join(tmp.path, 'share');
    mkdirSync(share);
    const env = { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken };
    const ok = await runCli(['check', '--all', '--share-dir', share, '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
    const clean = JSON.parse(ok.stdout).cloud;
    expect(clean).toMatchObject({ expectedObjects: 20, problems: [], directoriesListed: 3, directoriesDeferred: 0 });
    // shared/, other/, shared/related_images/x_0_jpg/: one page each, whatever the number of tasks.
    expect(emulator.cloud.listCalls).toBe(3);
    expect(clean.listingCalls).toBe(3);

    const gone = keys1[9]!; // frame 9: job 2 (frames 8-15), chunk 0 (frames 8-11)
    rmSync(join(bucket, gone));
    emulator.cloud.listCalls = 0;
    const broken = await runCli(['check', '--all', '--share-dir', share, '--json'], env);
    expect(broken.code).toBe(1);
    const job = emulator.deployment.tasks.get(1)!.jobs[1]!;
    expect(JSON.parse(broken.stdout).cloud.problems).toEqual([
      { taskId: 1, taskName: 'task 1', storageId: 5, kind: 'object_missing', key: gone, frame: 9, jobs: [job.id], chunks: [{ jobId: job.id, chunk: 0 }] },
    ]);
    expect(emulator.cloud.listCalls).toBe(3);
    const table = await runCli(['check', '--all', '--share-dir', share], env);
    expect(table.code).toBe(1);
    expect(table.stdout).toContain(`task 1 (task 1): object "${gone}" missing in cloud storage 5, frame 9; read by job ${job.id} chunk 0`);
  });
});

describe('cloud guard rounds', () => {
  it('raises a problem when an object is deleted and clears it when it is back', async () => {
    const bucket = join(tmp.path, 'bucket');
    const keys = frameKeys('imgs', 8);
    fillBucket(bucket, keys);
    emulator = await startEmulator({ auth: demoAuth(), cloudStorages: [{ id: 1, resource: 'b', bucketDir: bucket }], tasks: [cloudTask(1, 1, keys)] });
    const metrics = createMetrics({ buildInfo: { version: 'test' } });
    const tasks = await cloudTasks();
    const guard = newGuard({ metrics });
    const alerts: Array<[string, string, number[]]> = [];
    guard.on('deleted', (a) => alerts.push(['deleted', a.path, a.tasks.flatMap((t) => t.jobs.flatMap((j) => j.chunks))]));
    guard.on('restored', (a) => alerts.push(['restored', a.path, []]));
    await guard.setTasks(tasks);
    expect((await guard.round()).problems).toEqual([]);
    rmSync(join(bucket, keys[6]!));
    const second = await guard.round();
    expect(second.raised.map((p) => [p.taskId, p.key, p.chunks.map((c) => c.chunk)])).toEqual([[1, keys[6], [1]]]);
    // The core's own problem, alert and metrics: the same `deleted` a missing share file raises.
    expect(guard.problems()).toMatchObject([{ path: `1/${keys[6]}`, kind: 'deleted', role: 'frame', taskIds: [1] }]);
    expect(alerts).toEqual([['deleted', `1/${keys[6]}`, [1]]]);
    expect(await metrics.registry.metrics()).toMatch(/cvat_warden_task_cloud_objects_missing\{task_id="1"\} 1/);
    expect(await metrics.registry.metrics()).not.toMatch(/cvat_warden_share_files_missing [1-9]/);
    // Still missing: the same problem stays open, nothing raised again.
    expect((await guard.round()).raised).toEqual([]);
    writeFileSync(join(bucket, keys[6]!), 'back');
    const fourth = await guard.round();
    expect(fourth.cleared.map((p) => p.key)).toEqual([keys[6]]);
    expect(fourth.problems).toEqual([]);
    expect(alerts.at(-1)).toEqual(['restored', `1/${keys[6]}`, []]);
    expect(await metrics.registry.metrics()).toMatch(/cvat_warden_cloud_objects_missing 0/);
    expect(await metrics.registry.metrics()).not.toMatch(/cvat_warden_task_cloud_objects_missing\{/);
    expect(await metrics.registry.metrics()).toMatch(/cvat_warden_cloud_storage_status\{storage_id="1",status="AVAILABLE"\} 1/);
    await guard.close();
  });

  it('honours the LIST budget: never more calls than it allows, the rest deferred to later rounds', async () => {
    const bucket = join(tmp.path, 'bucket');
    // 6 directories of one page each.
    const keys = Array.from({ length: 6 }, (_, d) => frameKeys(`d${d}`, 2)).flat();
    fillBucket(bucket, keys);
    emulator = await startEmulator({ auth: demoAuth(), cloudStorages: [{ id: 1, resource: 'b', bucketDir: bucket }], tasks: [cloudTask(1, 1, keys)] });
    let now = 0;
    const budget = new ListBudget(4, { now: () => now }); // 4 calls an hour
    const tasks = await cloudTasks();
    const guard = newGuard({ budget });
    await guard.setTasks(tasks);
    const first = await guard.round();
    expect([first.calls, first.directoriesListed, first.directoriesDeferred]).toEqual([4, 4, 2]);
    expect(emulator.cloud.listCalls).toBe(first.calls);
    const second = await guard.round(); // no time passed: nothing left
    expect(second.calls).toBe(0);
    expect(emulator.cloud.listCalls).toBe(4);
    now += 30 * 60_000; // half an hour: 2 more calls
    const third = await guard.round();
    expect([third.calls, third.directoriesListed, third.directoriesDeferred]).toEqual([2, 2, 4]); // the two never listed go first; the 4 listed an hour ago wait
    expect(emulator.cloud.listCalls).toBe(6);
    await guard.close();
  });
});

describe('the cloud guard on the guard core: restarts and storage status', () => {
  it('keeps an open problem across a restart (counted before any round, no second alert), drops one of a task gone meanwhile, clears it when back', async () => {
    const bucket = join(tmp.path, 'bucket');
    const keys = frameKeys('imgs', 8);
    const other = frameKeys('other', 4);
    fillBucket(bucket, [...keys, ...other]);
    emulator = await startEmulator({
      auth: demoAuth(),
      cloudStorages: [{ id: 1, resource: 'b', bucketDir: bucket }],
      tasks: [cloudTask(1, 1, keys), cloudTask(2, 1, other)],
    });
    const state = join(tmp.path, 'state');
    const tasks = await cloudTasks();
    const first = newGuard({ stateDir: state });
    await first.setTasks(tasks);
    await first.round();
    rmSync(join(bucket, keys[2]!));
    rmSync(join(bucket, other[1]!));
    const raised = await first.round();
    expect(raised.raised.map((p) => [p.taskId, p.key])).toEqual([
      [1, keys[2]],
      [2, other[1]],
    ]);
    const since = raised.problems.find((p) => p.taskId === 1)!.since;
    await first.close();
    await first.close(); // idempotent

    // Restart: the problems count at once, before CVAT is asked anything.
    const metrics = createMetrics({ buildInfo: { version: 'test' } });
    let lines = '';
    const destination = new Writable({
      write: (chunk, _e, cb) => {
        lines += String(chunk);
        cb();
      },
    });
    const second = newGuard({ stateDir: state, metrics, logger: createLogger({ level: 'info', destination }) });
    await second.start();
    expect(await metrics.registry.metrics()).toMatch(/cvat_warden_cloud_objects_missing 2/);
    const alerts: string[] = [];
    second.on('alert', (a) => alerts.push(a.kind));
    // Task 2 was deleted in CVAT while the warden was down: only task 1 comes back.
    await second.setTasks(tasks.filter((t) => t.taskId === 1));
    const again = await second.round();
    expect(again.raised).toEqual([]); // still open: no second alert
    expect(alerts).toEqual([]);
    expect(again.problems).toMatchObject([{ taskId: 1, key: keys[2], since }]);
    expect(lines).toContain('1 cloud problem(s) from before the restart still open');
    expect(await metrics.registry.metrics()).toMatch(/cvat_warden_cloud_objects_missing 1/); // task 2's dropped after a complete round
    writeFileSync(join(bucket, keys[2]!), 'back');
    const back = await second.round();
    expect(back.cleared.map((p) => [p.taskId, p.key])).toEqual([[1, keys[2]]]);
    expect(alerts).toEqual(['restored']);
    expect(lines).toContain(`cloud object back: ${keys[2]} in cloud storage 1`);
    await second.close();

    // And the cleared state is what the next start finds.
    const third = newGuard({ stateDir: state, metrics: createMetrics({ buildInfo: { version: 'test' } }) });
    await third.start();
    expect(third.status()).toMatchObject({ filesWithProblems: 0, started: true });
    await third.close();
  });

  it('a storage turning FORBIDDEN is an alert and is not listed; its open problem stands until it is AVAILABLE and listed again', async () => {
    const bucket = join(tmp.path, 'bucket');
    const keys = frameKeys('imgs', 4);
    fillBucket(bucket, keys);
    emulator = await startEmulator({ auth: demoAuth(), cloudStorages: [{ id: 3, resource: 'b', bucketDir: bucket }], tasks: [cloudTask(1, 3, keys)] });
    const tasks = await cloudTasks();
    const guard = newGuard();
    const storage: Array<[string, number, string]> = [];
    guard.on('storage_unavailable', (a) => storage.push([a.kind, a.storageId, a.status]));
    guard.on('storage_available', (a) => storage.push([a.kind, a.storageId, a.status]));
    await guard.setTasks(tasks);
    rmSync(join(bucket, keys[0]!));
    expect((await guard.round()).raised.map((p) => p.key)).toEqual([keys[0]]);
    emulator.cloud.setStatus(3, 'FORBIDDEN');
    writeFileSync(join(bucket, keys[0]!), 'back'); // not visible: the bucket cannot be listed
    emulator.cloud.listCalls = 0;
    const forbidden = await guard.round();
    expect(emulator.cloud.listCalls).toBe(0);
    expect(forbidden.storages).toMatchObject([{ storageId: 3, status: 'FORBIDDEN', taskIds: [1] }]);
    expect(forbidden.problems.map((p) => p.key)).toEqual([keys[0]]);
    expect(storage).toEqual([['storage_unavailable', 3, 'FORBIDDEN']]);
    expect(guard.status().storages).toMatchObject([{ storageId: 3, status: 'FORBIDDEN' }]);
    emulator.cloud.setStatus(3, undefined);
    const available = await guard.round();
    expect(available.cleared.map((p) => p.key)).toEqual([keys[0]]);
    expect(storage.at(-1)).toEqual(['storage_available', 3, 'AVAILABLE']);
    await guard.close();
  });
});

describe('check without --share-dir (a cloud-only CVAT)', () => {
  it('checks the cloud tasks and says the share was skipped; a task that reads the share makes it exit 2 naming it', async () => {
    const bucket = join(tmp.path, 'bucket');
    const keys = frameKeys('imgs', 8);
    fillBucket(bucket, keys);
    rmSync(join(bucket, keys[5]!));
    emulator = await startEmulator({ auth: demoAuth(), cloudStorages: [{ id: 1, resource: 'b', bucketDir: bucket }], tasks: [cloudTask(1, 1, keys)] });
    const env = { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken, CVAT_SHARE_DIR: '' };
    const table = await runCli(['check', '--all'], env);
    expect(table.code, table.stderr).toBe(1);
    expect(table.stdout).toContain('Share: not checked (no --share-dir; no task in scope reads the share).');
    expect(table.stdout).toContain(`object "${keys[5]}" missing in cloud storage 1`);
    const json = await runCli(['check', '--all', '--json'], env);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(validateCheck(report) ? [] : validateCheck.errors, 'check --json against schemas/check.schema.json').toEqual([]);
    expect(report).toMatchObject({ shareDir: null, totals: { filesExpected: 0 }, cloud: { problems: [{ taskId: 1, key: keys[5] }] } });
    await emulator.close();

    // A share task in scope: the share is needed.
    const share = join(tmp.path, 'share');
    fillBucket(share, ['a/1.jpg']);
    emulator = await startEmulator({
      auth: demoAuth(),
      shareDir: share,
      cloudStorages: [{ id: 1, resource: 'b', bucketDir: bucket }],
      tasks: [cloudTask(1, 1, keys), { id: 7, storage: 'share', frames: ['a/1.jpg'], chunkSize: 4, segmentSize: 8 }],
    });
    const needsShare = await runCli(['check', '--all'], { ...env, CVAT_URL: emulator.url });
    expect(needsShare.code).toBe(2);
    expect(needsShare.stderr).toMatch(/1 task\(s\) in scope read the share \(7\): set --share-dir/);
  });
});

describe('doctor with cloud-storage tasks', () => {
  it('checks each cloud storage the tasks use, with a fix line for a forbidden one', async () => {
    const good = join(tmp.path, 'good');
    const bad = join(tmp.path, 'bad');
    fillBucket(good, frameKeys('a', 2));
    fillBucket(bad, frameKeys('b', 2));
    emulator = await startEmulator({
      auth: demoAuth(),
      cloudStorages: [
        { id: 1, resource: 'good', bucketDir: good },
        { id: 2, resource: 'bad', bucketDir: bad, status: 'FORBIDDEN' },
      ],
      tasks: [cloudTask(1, 1, frameKeys('a', 2)), cloudTask(2, 2, frameKeys('b', 2))],
    });
    const run = await runCli(['doctor', '--json'], { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken });
    const checks = JSON.parse(run.stdout).checks as Array<{ name: string; level: string; detail: string; fix?: string }>;
    expect(checks.find((c) => c.name === 'cloud storage 1')).toMatchObject({ level: 'ok', detail: 'AVAILABLE, content-v2 answers; used by tasks 1' });
    expect(checks.find((c) => c.name === 'cloud storage 2')).toMatchObject({ level: 'fail', fix: expect.stringContaining('renew the storage') });
    expect(run.code).toBe(1);
    expect(emulator.cloud.listCalls).toBe(1); // the forbidden storage is not listed
  });
});
