/**
 * `run` with cloud-storage tasks against the emulator's buckets: a deleted object raises the
 * problem metric within one listing round and clears it when the object is back; /status lists
 * it (validated against schemas/status.schema.json); a restart keeps it (the guard's state under
 * <state-dir>/cloud-guard, nothing else written beside the share guard's); a storage the warmer
 * stopped on (FORBIDDEN) is warmed once CVAT reports it AVAILABLE again.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { expect, it } from 'vitest';
import { addFormats } from './support/openapi.js';
import { DEMO_CREDENTIALS, demoAuth, startEmulator, type Emulator } from '../src/emulator/index.js';
import { cloudTask, fillBucket, frameKeys } from './support/cloud.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const tmp = useTempDir('warden-cloud-run-');
const validateStatus = addFormats(new Ajv({ strict: true, allErrors: true })).compile(JSON.parse(readFileSync('schemas/status.schema.json', 'utf8')) as object);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- /status, validated against its schema first

async function statusOf(url: string): Promise<Json> {
  const body = (await (await fetch(`${url}/status`)).json()) as Json;
  expect(validateStatus(body) ? [] : validateStatus.errors, 'GET /status against schemas/status.schema.json').toEqual([]);
  return body;
}
let emulator: Emulator | undefined;
let running: RunningService | undefined;
closeAfterEach(
  () => [running?.service, emulator],
  () => {
    running = undefined;
    emulator = undefined;
  },
);

it('raises a missing object within one listing round, clears it when it is back, and resumes warming a storage back to AVAILABLE', async () => {
  const bucket1 = join(tmp.path, 'b1');
  const bucket2 = join(tmp.path, 'b2');
  const keys1 = frameKeys('one', 8);
  const keys2 = frameKeys('two', 8);
  fillBucket(bucket1, keys1);
  fillBucket(bucket2, keys2);
  emulator = await startEmulator({
    auth: demoAuth(),
    buildTimeMs: 1,
    cloudStorages: [
      { id: 1, resource: 'b1', bucketDir: bucket1 },
      { id: 2, resource: 'b2', bucketDir: bucket2, status: 'FORBIDDEN' },
    ],
    tasks: [cloudTask(1, 1, keys1), cloudTask(2, 2, keys2)],
  });
  const env = { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken };
  running = await startService(['--state-dir', join(tmp.path, 'state')], env, { cloudIntervalMs: 100 });
  const r = running;
  // Task 1 is warmed; task 2's storage is forbidden: a 403 for each request already in flight
  // (at most the two chunk workers the controller fills), then its chunks are skipped.
  const forbidden = () => r.metric('cvat_warden_cloud_chunk_failures_total{cause="bucket_forbidden",skipped="false"}');
  await waitFor('the forbidden bucket answered', async () => ((await forbidden()) ?? 0) >= 1);
  await waitFor('storage 2 reported FORBIDDEN', async () => (await r.metric('cvat_warden_cloud_storage_status{storage_id="2",status="FORBIDDEN"}')) === 1);
  await waitFor(
    'its chunks skipped',
    async () => ((await r.metric('cvat_warden_cloud_chunk_failures_total{cause="bucket_forbidden",skipped="true"}')) ?? 0) >= 1,
  );
  expect(await forbidden()).toBeLessThanOrEqual(2);
  await waitFor('storage 1 objects expected', async () => (await r.metric('cvat_warden_cloud_objects_expected')) === 16); // both tasks' objects; storage 2 is not listed while FORBIDDEN

  rmSync(join(bucket1, keys1[3]!));
  await waitFor('the missing object raised', async () => (await r.metric('cvat_warden_task_cloud_objects_missing{task_id="1"}')) === 1);
  expect(r.logs()).toContain('cloud object missing');
  writeFileSync(join(bucket1, keys1[3]!), 'back');
  await waitFor('the object cleared', async () => (await r.metric('cvat_warden_cloud_objects_missing')) === 0);
  expect(await r.metricsText()).not.toContain('cvat_warden_task_cloud_objects_missing{');

  emulator.cloud.setStatus(2, undefined); // AVAILABLE
  const task2Keys = () =>
    [...emulator!.state.coldUiChunkKeys()].filter((k) => emulator!.deployment.tasks.get(2)!.segments.some((s) => k.startsWith(`segment_${s.id}_`)));
  await waitFor('task 2 warmed after AVAILABLE', () => task2Keys().length === 0);
  expect(r.logs()).toContain('warming its tasks resumes');
});

it('lists a missing object in /status and keeps it across a restart of the service, without a second alert', async () => {
  const bucket = join(tmp.path, 'b1');
  const keys = frameKeys('one', 8);
  fillBucket(bucket, keys);
  rmSync(join(bucket, keys[6]!));
  emulator = await startEmulator({
    auth: demoAuth(),
    buildTimeMs: 1,
    cloudStorages: [{ id: 4, resource: 'b1', bucketDir: bucket }],
    tasks: [cloudTask(1, 4, keys)],
  });
  const env = { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken };
  const state = join(tmp.path, 'state');
  running = await startService(['--state-dir', state], env, { cloudIntervalMs: 100 });
  const first = running;
  await waitFor('the missing object raised', async () => (await first.metric('cvat_warden_cloud_objects_missing')) === 1);
  const status = await statusOf(first.url);
  const job = emulator.deployment.tasks.get(1)!.jobs[0]!;
  expect(status['cloud'].openProblems).toMatchObject([
    {
      path: `4/${keys[6]}`,
      storageId: 4,
      key: keys[6],
      kind: 'deleted',
      role: 'frame',
      taskIds: [1],
      tasks: [{ taskId: 1, frames: [6], jobs: [{ jobId: job.id, chunks: [1] }] }],
    },
  ]);
  expect(status['cloud']).toMatchObject({ tasks: 1, filesWithProblems: 1, storages: [{ storageId: 4, status: 'AVAILABLE', taskIds: [1] }] });
  const since = status['cloud'].openProblems[0].since as string;
  expect(first.logs().match(/cloud object missing/g)).toHaveLength(1);
  await first.service.close();
  running = undefined;
  // The cloud guard writes only in its own directory; the share guard's files are not touched.
  expect(readdirSync(join(state, 'cloud-guard'))).toContain('guard-state.json');
  expect(readdirSync(state)).not.toContain('guard-state.json');

  running = await startService(['--state-dir', state], env, { cloudIntervalMs: 100 });
  const second = running;
  expect(await second.metric('cvat_warden_cloud_objects_missing')).toBe(1); // persisted: counted from the start, not only after a round
  await waitFor('a round after the restart', () => second.logs().includes('cloud problem(s) from before the restart still open'));
  expect((await statusOf(second.url))['cloud'].openProblems).toMatchObject([{ key: keys[6], since }]);
  expect(second.logs()).not.toContain('cloud object missing');
  writeFileSync(join(bucket, keys[6]!), 'back');
  await waitFor('the object cleared', async () => (await second.metric('cvat_warden_cloud_objects_missing')) === 0);
  expect(second.logs()).toContain(`cloud object back: ${keys[6]} in cloud storage 4`);
  expect((await statusOf(second.url))['cloud'].openProblems).toEqual([]);
});
