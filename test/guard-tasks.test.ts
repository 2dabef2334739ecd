/**
 * The guarded set changes while the guard runs: tasks added in batches get watched
 * and baselined, removed tasks take their per-task series and watches with them, a
 * changed job list re-maps alerts, and an intended change can be accepted.
 */
import { appendFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { ShareGuard } from '../src/guard/index.js';
import type { Metrics } from '../src/metrics.js';
import { fileAlerts, job, makeShare, metricValue, recordAlerts, sampleShareAvailable, sampleTasks, testMetrics, type ShareFixture } from './support/guard.js';
import { waitFor } from './support/wait.js';

const available = sampleShareAvailable();

describe.skipIf(!available)('share guard task changes', () => {
  let fx: ShareFixture;
  let metrics: Metrics;
  let guard: ShareGuard;

  beforeEach(async () => {
    fx = await makeShare();
    metrics = testMetrics();
    guard = new ShareGuard({ shareDir: fx.shareDir, stateDir: fx.stateDir, metrics, logger: silentLogger(), fsTypeOverride: 'ext4', moveWindowMs: 100 });
  });
  afterEach(async () => {
    await guard.close();
    await fx.cleanup();
  });

  it('watches tasks added after start and forgets removed ones', async () => {
    const [images, related, video, pcd] = sampleTasks();
    const alerts = recordAlerts(guard);
    await guard.setTasks([images!]);
    await guard.start();
    expect(guard.status()).toMatchObject({ tasks: 1, filesExpected: 6, watchedDirectories: 1 });

    await guard.upsertTasks([video!, pcd!]);
    expect(guard.status()).toMatchObject({ tasks: 3, filesExpected: 13, watchedDirectories: 6 });
    await rm(path.join(fx.shareDir, 'pcd_with_related/related_images/000003_pcd/000003.png'));
    const alert = await waitFor('deleted in a task added later', () => fileAlerts(alerts, 'deleted')[0]);
    expect(alert).toMatchObject({ role: 'related', taskIds: [4] });
    expect(alert.tasks[0]!.jobs).toEqual([{ jobId: 41, type: 'annotation', chunks: [2], expiresAt: 'unknown' }]);
    expect(await metricValue(metrics, 'cvat_warden_task_share_files_missing', 'task_id="4"')).toBe(1);

    await guard.removeTasks([4]);
    expect(guard.status()).toMatchObject({ tasks: 2, filesExpected: 7, watchedDirectories: 2 });
    expect(await metricValue(metrics, 'cvat_warden_task_share_files_missing', 'task_id="4"')).toBeUndefined();
    expect(await metricValue(metrics, 'cvat_warden_share_files_missing')).toBe(0);
    expect(await metricValue(metrics, 'cvat_warden_share_files_expected')).toBe(7);
    expect(guard.problems()).toEqual([]);

    // setTasks is the full set: the video goes, the related task comes
    await guard.setTasks([images!, related!]);
    expect(guard.status()).toMatchObject({ tasks: 2, filesExpected: 17, watchedDirectories: 5 });
  });

  it('maps alerts with the latest job list', async () => {
    const tasks = sampleTasks();
    const alerts = recordAlerts(guard);
    await guard.setTasks(tasks);
    await guard.start();
    tasks[0] = { ...tasks[0]!, jobs: [job(91, 0, 5, 3)] }; // re-split into one job with chunk size 3
    await guard.upsertTasks([tasks[0]]);
    await rm(path.join(fx.shareDir, 'images/image_4.jpg'));
    const alert = await waitFor('deleted', () => fileAlerts(alerts, 'deleted')[0]);
    expect(alert.tasks[0]!.jobs.map((j) => [j.jobId, j.chunks])).toEqual([[91, [1]]]);
  });

  it('accepts an intended change as the new baseline', async () => {
    const alerts = recordAlerts(guard);
    await guard.setTasks(sampleTasks());
    await guard.start();
    await appendFile(path.join(fx.shareDir, 'images/image_0.jpg'), 'x');
    await waitFor('modified', () => fileAlerts(alerts, 'modified').length === 1);
    expect(await guard.acceptChanges(['images/image_0.jpg'])).toBe(1);
    expect(guard.problems()).toEqual([]);
    expect(await metricValue(metrics, 'cvat_warden_share_files_missing')).toBe(0);
    const scan = await guard.scan();
    expect(scan.modified).toBe(0);
  });

  it('with scanBatchFiles, new tasks are indexed at once and watched and stat-ed by the batch, or by settle()', async () => {
    await guard.close();
    guard = new ShareGuard({ shareDir: fx.shareDir, stateDir: fx.stateDir, metrics, logger: silentLogger(), fsTypeOverride: 'ext4', scanBatchFiles: 10 });
    const [images, related, video] = sampleTasks();
    const alerts = recordAlerts(guard);
    await guard.start();
    await rm(path.join(fx.shareDir, 'images/image_1.jpg'));
    await guard.upsertTasks([images!]); // 6 files: below the batch, only indexed
    expect(guard.status()).toMatchObject({ tasks: 1, filesExpected: 6, watchedDirectories: 0, filesWithProblems: 0 });
    await guard.upsertTasks([related!]); // 6 + 10 files: the batch is full, both tasks observed
    expect(guard.status()).toMatchObject({ tasks: 2, filesWithProblems: 1 });
    expect(guard.status().watchedDirectories).toBeGreaterThan(0);
    expect(fileAlerts(alerts, 'deleted').map((a) => a.path)).toEqual(['images/image_1.jpg']);
    const watched = guard.status().watchedDirectories;
    await guard.upsertTasks([video!]); // waits for settle()
    expect(guard.status().watchedDirectories).toBe(watched);
    await guard.settle();
    expect(guard.status().watchedDirectories).toBeGreaterThan(watched);
    await guard.settle(); // nothing left: a no-op
  });
});
