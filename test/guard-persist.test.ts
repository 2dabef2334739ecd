/**
 * Restarts: an open problem survives a restart without a second alert (logged once as
 * still open), a resolved one is not raised again, a change made while the guard was
 * down is found against the persisted baseline, and the state file is valid JSON.
 */
import { appendFile, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { BASELINE_SNAPSHOT } from '../src/guard/shell/baseline-file.js';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger, type Logger } from '../src/log.js';
import { ShareGuard, type GuardAlert } from '../src/guard/index.js';
import type { Metrics } from '../src/metrics.js';
import {
  captureLogger,
  fileAlerts,
  makeShare,
  metricValue,
  recordAlerts,
  sampleShareAvailable,
  sampleTasks,
  testMetrics,
  type ShareFixture,
} from './support/guard.js';
import { waitFor } from './support/wait.js';

const available = sampleShareAvailable();

describe.skipIf(!available)('share guard persistence', () => {
  let fx: ShareFixture;

  beforeEach(async () => {
    fx = await makeShare();
  });
  afterEach(async () => fx.cleanup());

  async function run(logger: Logger = silentLogger()): Promise<{ guard: ShareGuard; alerts: GuardAlert[]; metrics: Metrics }> {
    const metrics = testMetrics();
    const guard = new ShareGuard({ shareDir: fx.shareDir, stateDir: fx.stateDir, metrics, logger, fsTypeOverride: 'ext4', moveWindowMs: 100 });
    const alerts = recordAlerts(guard);
    await guard.setTasks(sampleTasks());
    await guard.start();
    return { guard, alerts, metrics };
  }

  it('does not re-alert an open problem after a restart, and re-alerts nothing resolved', async () => {
    const first = await run();
    await rm(path.join(fx.shareDir, 'images/image_1.jpg'));
    await rename(path.join(fx.shareDir, 'images/image_2.jpg'), path.join(fx.outside, 'image_2.jpg'));
    await waitFor('two deletions', () => fileAlerts(first.alerts, 'deleted').length === 2);
    await rename(path.join(fx.outside, 'image_2.jpg'), path.join(fx.shareDir, 'images/image_2.jpg'));
    await waitFor('one restored', () => fileAlerts(first.alerts, 'restored').length === 1);
    await first.guard.close();
    await first.guard.close(); // idempotent

    const state = JSON.parse(await readFile(path.join(fx.stateDir, 'guard-state.json'), 'utf8'));
    expect(state.problems.map((p: { path: string; kind: string }) => [p.path, p.kind])).toEqual([['images/image_1.jpg', 'deleted']]);

    const { logger, lines } = captureLogger();
    const second = await run(logger);
    expect(second.alerts).toEqual([]);
    expect(await metricValue(second.metrics, 'cvat_warden_share_files_missing')).toBe(1);
    expect(await metricValue(second.metrics, 'cvat_warden_task_share_files_missing', 'task_id="1"')).toBe(1);
    expect(await metricValue(second.metrics, 'cvat_warden_share_events_total', 'kind="deleted"')).toBe(0);
    expect(second.guard.problems().map((p) => p.path)).toEqual(['images/image_1.jpg']);
    const still = lines().filter((l) => String(l['msg']).includes('still open'));
    expect(still).toHaveLength(1);
    expect(still[0]).toMatchObject({ count: 1, paths: ['images/image_1.jpg'] });
    await second.guard.close();
  });

  it('finds a change made while the guard was down against the persisted baseline', async () => {
    const first = await run();
    await first.guard.close();
    await appendFile(path.join(fx.shareDir, 'images/image_0.jpg'), 'x');
    const second = await run();
    const alert = await waitFor('modified at start-up', () => fileAlerts(second.alerts, 'modified')[0]);
    expect(alert).toMatchObject({ path: 'images/image_0.jpg', source: 'startup' });
    await second.guard.close();
  });

  it('with 100 bytes of its snapshot damaged, a change made while it was down is still found (previous generation), and the damage is counted', async () => {
    // Two runs: each close compacts, the second keeps the first generation as the fallback.
    for (let i = 0; i < 2; i++) await (await run()).guard.close();
    const snapshot = path.join(fx.stateDir, BASELINE_SNAPSHOT);
    const bytes = await readFile(snapshot);
    bytes.fill(0x5a, 40, 140);
    await writeFile(snapshot, bytes);
    await appendFile(path.join(fx.shareDir, 'images/image_0.jpg'), 'x');
    const second = await run();
    const alert = await waitFor('modified at start-up', () => fileAlerts(second.alerts, 'modified')[0]);
    expect(alert).toMatchObject({ path: 'images/image_0.jpg', source: 'startup' });
    expect(second.guard.status().stateDamage).toEqual([expect.objectContaining({ store: 'baseline_snapshot', entriesLost: 0 })]);
    expect(await metricValue(second.metrics, 'cvat_warden_state_records_damaged_total', 'store="baseline_snapshot"')).toBeGreaterThan(0);
    await second.guard.close();
  });

  it('a problem fixed while the guard was down is reported restored once', async () => {
    const first = await run();
    await rename(path.join(fx.shareDir, 'videos/video_1.mp4'), path.join(fx.outside, 'v.mp4'));
    await waitFor('deleted', () => fileAlerts(first.alerts, 'deleted').length === 1);
    await first.guard.close();
    await rename(path.join(fx.outside, 'v.mp4'), path.join(fx.shareDir, 'videos/video_1.mp4'));
    const second = await run();
    await waitFor('restored at start-up', () => fileAlerts(second.alerts, 'restored').length === 1);
    await second.guard.close();
    const third = await run();
    expect(third.alerts).toEqual([]);
    expect(await metricValue(third.metrics, 'cvat_warden_share_files_missing')).toBe(0);
    await third.guard.close();
  });
});
