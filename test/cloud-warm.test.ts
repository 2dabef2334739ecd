/**
 * Warming cloud-storage tasks against the emulator with bucket directories: one revoked bucket
 * does not stop the pass, a deleted object is named, a detached storage has its own reason, and
 * a storage back to AVAILABLE is warmed again. The error bodies are CVAT 2.73's
 * (cvat/apps/engine/cloud_provider.py validate_bucket_status / validate_file_status,
 * models.py Data.get_cloud_storage_client, views.py _DataGetter.__call__; see src/emulator/cloud.ts).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoAuth, startEmulator, type Emulator } from '../src/emulator/index.js';
import { classifyCloudError } from '../src/warm/cloud-errors.js';
import { clearSecretsForTests } from '../src/secrets.js';
import { cloudTask, fillBucket, frameKeys } from './support/cloud.js';
import { useTempDir } from './support/tmp.js';
import { warmInProcess } from './support/warm.js';

const tmp = useTempDir('warden-cloud-warm-');
let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
  clearSecretsForTests();
});

const env = (url: string): NodeJS.ProcessEnv => ({ CVAT_URL: url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken });

/** Task 1 local, task 2 on healthy storage 1, tasks 3 and 4 on storage 2 ("revoked-bucket"). */
async function mixedCvat(): Promise<{ emulator: Emulator; healthy: string; revoked: string; keys: Record<2 | 3 | 4, string[]> }> {
  const healthy = join(tmp.path, 'healthy');
  const revoked = join(tmp.path, 'revoked');
  const keys: Record<2 | 3 | 4, string[]> = { 2: frameKeys('set2', 16), 3: frameKeys('set3', 8), 4: frameKeys('set4', 8) };
  fillBucket(healthy, keys[2]);
  fillBucket(revoked, [...keys[3], ...keys[4]]);
  const emu = await startEmulator({
    auth: demoAuth(),
    buildTimeMs: 1,
    cloudStorages: [
      { id: 1, resource: 'healthy-bucket', displayName: 'Healthy', bucketDir: healthy },
      { id: 2, resource: 'revoked-bucket', displayName: 'Revoked', bucketDir: revoked },
    ],
    tasks: [{ id: 1, size: 10, chunkSize: 4 }, cloudTask(2, 1, keys[2]), cloudTask(3, 2, keys[3]), cloudTask(4, 2, keys[4])],
  });
  return { emulator: emu, healthy, revoked, keys };
}

/** Chunk requests the emulator answered for the jobs of `taskId`. */
function chunkAnswers(emu: Emulator, taskId: number): number {
  const jobs = new Set(emu.deployment.tasks.get(taskId)!.jobs.map((j) => j.id));
  return emu.state.requestLog.filter((r) => r.kind === 'job_chunk' && jobs.has(Number(/\/api\/jobs\/(\d+)\//.exec(r.path)?.[1]))).length;
}

/** Whether a cache key belongs to `taskId` (its segments' keys, its data's context images). */
function keyOfTask(emu: Emulator, taskId: number, key: string): boolean {
  const task = emu.deployment.tasks.get(taskId)!;
  return task.segments.some((s) => key.startsWith(`segment_${s.id}_`)) || key.startsWith(`context_images_${task.dataId}_`);
}

describe('CVAT cloud error shapes', () => {
  it('tells CVAT cloud messages (JSON strings) from DRF denials (objects) and from other strings', () => {
    expect(classifyCloudError(403, JSON.stringify('The resource b1 is no longer available. Access forbidden.'))).toEqual({
      kind: 'bucket_forbidden',
      resource: 'b1',
    });
    expect(classifyCloudError(404, JSON.stringify("The file 'a/b.jpg' not found on the cloud storage 'b1'"))).toEqual({
      kind: 'object_missing',
      key: 'a/b.jpg',
      resource: 'b1',
    });
    expect(classifyCloudError(404, JSON.stringify('The resource b1 not found. It may have been deleted.'))).toEqual({ kind: 'bucket_missing', resource: 'b1' });
    expect(classifyCloudError(409, JSON.stringify('Task is not connected to cloud storage'))).toEqual({ kind: 'storage_detached' });
    expect(classifyCloudError(403, JSON.stringify("Access to the file 'k' on the 'b1' cloud storage is denied"))).toEqual({
      kind: 'object_forbidden',
      key: 'k',
      resource: 'b1',
    });
    // DRF's own denial is an object: the account-level 403 stays fatal.
    expect(classifyCloudError(403, JSON.stringify({ detail: 'The resource b1 is no longer available. Access forbidden.' }))).toBeUndefined();
    expect(classifyCloudError(403, 'The resource b1 is no longer available. Access forbidden.')).toBeUndefined(); // not JSON
    expect(classifyCloudError(404, JSON.stringify('Task has no media'))).toBeUndefined();
    // The status must match the message: a 404 with the forbidden text is not a forbidden bucket.
    expect(classifyCloudError(404, JSON.stringify('The resource b1 is no longer available. Access forbidden.'))).toBeUndefined();
  });
});

describe('warm with cloud-storage tasks (CVAT 2.73 emulator, bucket directories)', () => {
  it('warms every other task beside a forbidden bucket, skips the rest of that storage, exits 1 naming the bucket', async () => {
    const fixture = await mixedCvat();
    emulator = fixture.emulator;
    emulator.cloud.setStatus(2, 'FORBIDDEN');
    const run = await warmInProcess(['--all', '--concurrency', '1', '--state-dir', tmp.path, '--json'], env(emulator.url));
    expect(run.code, run.logs).toBe(1);
    // Everything of tasks 1 and 2 is warm; only tasks 3 and 4 (storage 2) stay cold.
    const cold = [...emulator.state.coldUiChunkKeys()];
    expect(cold.length).toBeGreaterThan(0);
    for (const taskId of [1, 2]) expect(cold.filter((key) => keyOfTask(emulator!, taskId, key))).toEqual([]);
    const summary = JSON.parse(run.stdout);
    expect(summary.result.failures.length).toBeGreaterThan(0);
    for (const f of summary.result.failures) {
      expect([3, 4]).toContain(f.taskId);
      expect(f.cloud).toEqual({ kind: 'bucket_forbidden', resource: 'revoked-bucket' });
      expect(f.reason).toContain('"revoked-bucket"');
    }
    expect(summary.result.cloudBlocked).toHaveLength(1);
    expect(summary.result.cloudBlocked[0]).toMatchObject({ storageId: 2, kind: 'bucket_forbidden', resource: 'revoked-bucket' });
    expect(summary.result.cloudBlocked[0].taskIds).toEqual([3, 4]);
    // One 403 answer per in-flight slot at most, then no request for either task on storage 2.
    expect(chunkAnswers(emulator, 3) + chunkAnswers(emulator, 4)).toBe(1);
    expect(summary.result.failed).toBe(summary.result.total - summary.result.warm - summary.result.fresh);
    expect(await run.metrics.registry.metrics()).toMatch(/cvat_warden_cloud_chunk_failures_total\{cause="bucket_forbidden",skipped="true"\} [1-9]/);
    expect(run.logs).toContain('revoked-bucket');
  });

  it('resumes warming once the storage is AVAILABLE again', async () => {
    const fixture = await mixedCvat();
    emulator = fixture.emulator;
    emulator.cloud.setStatus(2, 'FORBIDDEN');
    expect((await warmInProcess(['--all', '--state-dir', tmp.path], env(emulator.url))).code).toBe(1);
    emulator.cloud.setStatus(2, undefined); // credentials renewed: AVAILABLE
    const again = await warmInProcess(['--all', '--state-dir', tmp.path, '--json'], env(emulator.url));
    expect(again.code, again.logs).toBe(0);
    expect(emulator.state.coldUiChunkKeys().size).toBe(0);
  });

  it('names task, job, chunk and key of a deleted object, and warms the chunks that do not need it', async () => {
    const fixture = await mixedCvat();
    emulator = fixture.emulator;
    const gone = fixture.keys[2][5]!; // frame 5: job 1 of task 2 (frames 0-7), chunk 1 (frames 4-7)
    rmSync(join(fixture.healthy, gone));
    const run = await warmInProcess(['--all', '--concurrency', '1', '--state-dir', tmp.path, '--json'], env(emulator.url));
    expect(run.code, run.logs).toBe(1);
    const summary = JSON.parse(run.stdout);
    const job = emulator.deployment.tasks.get(2)!.jobs[0]!;
    expect(summary.result.failures).toEqual([
      expect.objectContaining({ taskId: 2, jobId: job.id, kind: 'chunk', slot: 1, cloud: { kind: 'object_missing', key: gone, resource: 'healthy-bucket' } }),
    ]);
    expect(summary.result.failures[0].reason).toBe(
      `source missing in cloud storage: task 2 job ${job.id} chunk 1 needs object "${gone}", which bucket "healthy-bucket" no longer has`,
    );
    expect(summary.result.cloudBlocked).toEqual([]);
    // Every other chunk of every task (storage 2 included) is warm.
    expect(emulator.state.coldUiChunkKeys().size).toBe(1);
  });

  it('reports a detached storage (409) with its own reason and skips only that task', async () => {
    const fixture = await mixedCvat();
    emulator = fixture.emulator;
    emulator.removeCloudStorage(1);
    const run = await warmInProcess(['--all', '--concurrency', '1', '--state-dir', tmp.path, '--json'], env(emulator.url));
    expect(run.code, run.logs).toBe(1);
    const summary = JSON.parse(run.stdout);
    expect(new Set(summary.result.failures.map((f: { taskId: number }) => f.taskId))).toEqual(new Set([2]));
    expect(summary.result.failures[0].cloud).toEqual({ kind: 'storage_detached' });
    expect(summary.result.failures[0].reason).toMatch(/^cloud storage detached: task 2 /);
    expect(summary.result.cloudBlocked).toEqual([expect.objectContaining({ kind: 'storage_detached', taskIds: [2] })]);
    expect(chunkAnswers(emulator, 2)).toBe(1);
  });
});
