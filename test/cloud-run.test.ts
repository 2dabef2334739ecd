/**
 * `run` with cloud-storage tasks against the emulator's buckets: a deleted object raises the
 * problem metric within one listing round and clears it when the object is back; a storage the
 * warmer stopped on (FORBIDDEN) is warmed once CVAT reports it AVAILABLE again.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoAuth, startEmulator, type Emulator } from '../src/emulator/index.js';
import { cloudTask, fillBucket, frameKeys } from './support/cloud.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const tmp = useTempDir('warden-cloud-run-');
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
