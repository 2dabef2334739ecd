/**
 * Alert continuity across a restart (issue 9): the files-missing alert
 * (grafana/alerts, CvatWardenShareFilesMissing) keeps firing only if the restarted warden
 * reports the open problems at its first scrape. The guard persists them; these tests
 * prove the new process publishes them at once — before CVAT answers, before any task is
 * known again — without counting them twice once the tasks are back, and that a persisted
 * problem of a task that is gone does not stay in the gauges for ever.
 */
import { rmSync } from 'node:fs';
import { rename, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { guardOver, makeShare, metricValue, sampleShareAvailable, sampleTasks, testMetrics } from './support/guard.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const tmp = useTempDir('warden-restart-');
let emulator: Emulator | undefined;
let running: RunningService | undefined;

closeAfterEach(
  () => [running?.service, emulator],
  () => (running = emulator = undefined),
);

const TASK1_INFO = 'cvat_warden_task_info{task_id="1",task_name="share: images with GT"}';
const missing = () => running!.metric('cvat_warden_share_files_missing');
const task1Missing = () => running!.metric('cvat_warden_task_share_files_missing{task_id="1"}');

describe.skipIf(!sampleShareAvailable())('restarted warden', () => {
  it('republishes open problems at its first scrape, even while CVAT is unreachable, and counts them once when the tasks are back', async () => {
    const share = join(tmp.path, 'share');
    const state = join(tmp.path, 'state');
    await prepareDemoShare(share);
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    const env = { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken };
    const args = ['--state-dir', state, '--share-dir', share, '--poll-interval', '1s'];

    running = await startService(args, env, { guard: { rootCheckIntervalMs: 200 } });
    await waitFor('guard indexed', async () => ((await running!.metric('cvat_warden_share_files_expected')) ?? 0) > 0);
    rmSync(join(share, 'images/image_1.jpg'));
    // Counted at once, but an open problem (and so persisted) only after the move window.
    await waitFor('problem open', async () => {
      const body = (await (await fetch(`${running!.url}/status`)).json()) as { share: { openProblems: Array<{ path: string }> } };
      return body.share.openProblems.some((p) => p.path === 'images/image_1.jpg');
    });
    // The dashboard's task name join (bounded: only tasks with problems).
    expect(await running.metric(TASK1_INFO)).toBe(1);
    await running.service.close();

    // Restart with CVAT down: nothing is known about tasks, yet the problem is on /metrics.
    running = await startService(args, { ...env, CVAT_URL: 'http://127.0.0.1:1' }, { guard: { rootCheckIntervalMs: 200 } });
    expect(await running.metric('cvat_warden_cvat_up')).not.toBe(1);
    expect(await missing()).toBe(1);
    expect(await task1Missing()).toBe(1);
    expect(await running.metric(TASK1_INFO)).toBeUndefined(); // its name is known only from CVAT
    await running.service.close();

    // Restart with CVAT up: published at once, and still 1 (not 2) once task 1 is indexed again.
    running = await startService(args, env, { guard: { rootCheckIntervalMs: 200 } });
    expect(await missing()).toBe(1);
    await waitFor('tasks indexed again', async () => ((await running!.metric('cvat_warden_share_files_expected')) ?? 0) > 0);
    await waitFor('discovery done', async () => (await fetch(`${running!.url}/readyz`)).status === 200, { timeoutMs: 20_000 });
    expect(await missing()).toBe(1);
    expect(await task1Missing()).toBe(1);
    await waitFor('task name published again', async () => (await running!.metric(TASK1_INFO)) === 1);

    // The file comes back: the gauges clear, so the alert resolves.
    await prepareDemoShare(join(tmp.path, 'fresh'));
    await rename(join(tmp.path, 'fresh', 'images/image_1.jpg'), join(share, 'images/image_1.jpg'));
    await waitFor('restored', async () => (await missing()) === 0);
    expect(await task1Missing()).toBeUndefined();
    expect(await running.metricsText()).not.toContain('cvat_warden_task_info{');
  });

  it('drops a persisted problem of a task that no longer exists after the first full scan', async () => {
    const fx = await makeShare();
    try {
      await mkdir(fx.stateDir, { recursive: true });
      const gone = { path: 'images/deleted-task.jpg', kind: 'deleted', role: 'frame', since: Date.now() - 60_000, taskIds: [99] };
      await writeFile(
        join(fx.stateDir, 'guard-state.json'),
        JSON.stringify({ version: 1, shareDir: fx.shareDir, savedAt: new Date().toISOString(), shareAvailable: true, problems: [gone] }),
      );
      const metrics = testMetrics();
      const guard = guardOver(fx, {
        metrics,
        moveWindowMs: 100,
      });
      try {
        await guard.start(); // no tasks yet (as in the service): the problem is published
        expect(await metricValue(metrics, 'cvat_warden_share_files_missing')).toBe(1);
        expect(await metricValue(metrics, 'cvat_warden_task_share_files_missing', 'task_id="99"')).toBe(1);
        await guard.setTasks(sampleTasks()); // task 99 is not among them
        await guard.scan('scheduled');
        expect(await metricValue(metrics, 'cvat_warden_share_last_scan_duration_seconds')).toBeGreaterThan(0);
        expect(await metricValue(metrics, 'cvat_warden_share_files_missing')).toBe(0);
        expect(await metricValue(metrics, 'cvat_warden_task_share_files_missing', 'task_id="99"')).toBeUndefined();
      } finally {
        await guard.close();
      }
    } finally {
      await fx.cleanup();
    }
  });
});
