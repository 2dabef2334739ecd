/**
 * Real watcher on a temp copy of CVAT's test share: every kind of change an admin
 * (or a cleanup script) can make to share files, asserted on emitted alerts and on
 * the metrics text.
 */
import { appendFile, copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ShareGuard, type FileAlert, type GuardAlert } from '../src/guard/index.js';
import type { Metrics } from '../src/metrics.js';
import {
  fileAlerts,
  guardOver,
  makeShare,
  metricValue,
  recordAlerts,
  sampleShareAvailable,
  sampleTasks,
  settled,
  testMetrics,
  type ShareFixture,
} from './support/guard.js';
import { waitFor } from './support/wait.js';

const available = sampleShareAvailable();

describe.skipIf(!available)('share guard watcher', () => {
  let fx: ShareFixture;
  let guard: ShareGuard;
  let metrics: Metrics;
  let alerts: GuardAlert[];
  const warmedAt = 1_700_000_000_000;

  beforeEach(async () => {
    fx = await makeShare();
    metrics = testMetrics();
    guard = guardOver(fx, {
      metrics,
      moveWindowMs: 300,
      lastWarmedAt: (jobId, chunk) => (jobId === 11 && chunk === 0 ? warmedAt : undefined),
    });
    alerts = recordAlerts(guard);
    await guard.setTasks(sampleTasks());
    await guard.start();
  });

  afterEach(async () => {
    await guard.close();
    await fx.cleanup();
  });

  const missing = () => metricValue(metrics, 'cvat_warden_share_files_missing');
  const one = async (kind: string, p: string): Promise<FileAlert> => waitFor(`${kind} ${p}`, () => fileAlerts(alerts, kind).find((a) => a.path === p));

  it('indexes frames, video and context images, one watch per directory', async () => {
    // 6 images + 4 images + 7 related + 1 video + 3 pcd + 3 related
    expect(await metricValue(metrics, 'cvat_warden_share_files_expected')).toBe(24);
    expect(await missing()).toBe(0);
    expect(await metricValue(metrics, 'cvat_warden_share_watch_mode', 'mode="inotify"')).toBe(1);
    // images, with_related, 3 related dirs, videos, pointcloud, 3 pcd related dirs
    expect(await metricValue(metrics, 'cvat_warden_share_watched_directories')).toBe(10);
    expect(guard.status().watchedDirectories).toBe(10);
    expect(alerts).toEqual([]);
  });

  it('reports a deleted frame with task, jobs, chunks and expiry; restoring it resolves the alert', async () => {
    const file = path.join(fx.shareDir, 'images/image_1.jpg');
    await copyFile(file, path.join(fx.outside, 'keep.jpg'));
    await rm(file);
    const alert = await one('deleted', 'images/image_1.jpg');
    expect(alert.taskIds).toEqual([1]);
    const task = alert.tasks[0]!;
    expect(task.frames).toEqual([1]);
    // job 11 covers 0..2 with chunk size 2 → chunk 0; GT job 13 holds abs frames [1,4] → chunk 0;
    // replica 14 reads job 11's segment: listed too, annotators work in it (issue 7)
    expect(task.jobs.map((j) => [j.jobId, j.chunks])).toEqual([
      [11, [0]],
      [13, [0]],
      [14, [0]],
    ]);
    expect(task.jobs[0]!.expiresAt).toBe(warmedAt + 24 * 3600 * 1000);
    expect(task.expiresAt).toBe(warmedAt + 24 * 3600 * 1000);
    expect(await missing()).toBe(1);
    expect(await metricValue(metrics, 'cvat_warden_task_share_files_missing', 'task_id="1"')).toBe(1);
    expect(await metricValue(metrics, 'cvat_warden_share_events_total', 'kind="deleted"')).toBe(1);
    expect(guard.problems().map((p) => [p.path, p.kind])).toEqual([['images/image_1.jpg', 'deleted']]);

    await copyFile(path.join(fx.outside, 'keep.jpg'), file);
    const restored = await one('restored', 'images/image_1.jpg');
    expect(restored.previous).toBe('deleted');
    await waitFor('missing gauge back to 0', async () => (await missing()) === 0);
    expect(await metricValue(metrics, 'cvat_warden_task_share_files_missing', 'task_id="1"')).toBeUndefined();
    expect(guard.problems()).toEqual([]);
  });

  it('reports a move within the share as moved, with the new path', async () => {
    await mkdir(path.join(fx.shareDir, 'archive'));
    await rename(path.join(fx.shareDir, 'images/image_4.jpg'), path.join(fx.shareDir, 'images/image_4_old.jpg'));
    const alert = await one('moved', 'images/image_4.jpg');
    expect(alert.newPath).toBe('images/image_4_old.jpg');
    expect(alert.tasks[0]!.jobs.map((j) => [j.jobId, j.chunks])).toEqual([
      [12, [0]],
      [13, [1]],
    ]);
    expect(fileAlerts(alerts, 'deleted')).toEqual([]);
    expect(await missing()).toBe(1);
  });

  it('reports a move into another watched directory as moved', async () => {
    await rename(path.join(fx.shareDir, 'images/image_0.jpg'), path.join(fx.shareDir, 'videos/image_0.jpg'));
    const alert = await one('moved', 'images/image_0.jpg');
    expect(alert.newPath).toBe('videos/image_0.jpg');
  });

  it('reports a move out of the share as deleted', async () => {
    await rename(path.join(fx.shareDir, 'images/image_2.jpg'), path.join(fx.outside, 'image_2.jpg'));
    await one('deleted', 'images/image_2.jpg');
    await settled(guard);
    expect(fileAlerts(alerts, 'moved')).toEqual([]);
  });

  it('reports appended bytes as modified', async () => {
    await appendFile(path.join(fx.shareDir, 'videos/video_1.mp4'), Buffer.alloc(16));
    const alert = await one('modified', 'videos/video_1.mp4');
    expect(alert.role).toBe('video');
    expect(alert.change?.after.size).toBe((alert.change?.before?.size ?? 0) + 16);
    // a video: every job, every chunk (job 31: 10 frames / 5, job 32: 15 frames / 5)
    expect(alert.tasks[0]!.jobs.map((j) => [j.jobId, j.chunks])).toEqual([
      [31, [0, 1]],
      [32, [0, 1, 2]],
    ]);
    expect(await missing()).toBe(1);
  });

  it('reports a file replaced by rename-over as modified, not deleted', async () => {
    const tmp = path.join(fx.shareDir, 'images/.image_3.jpg.tmp');
    await writeFile(tmp, 'not a jpeg');
    await rename(tmp, path.join(fx.shareDir, 'images/image_3.jpg'));
    const alert = await one('modified', 'images/image_3.jpg');
    expect(alert.change?.after.ino).not.toBe(alert.change?.before?.ino);
    await settled(guard);
    expect(fileAlerts(alerts, 'deleted')).toEqual([]);
  });

  it('reports every file of a removed directory (rm -rf), context images included', async () => {
    await rm(path.join(fx.shareDir, 'images/with_related'), { recursive: true, force: true });
    await waitFor('11 deletions', () => fileAlerts(alerts, 'deleted').length === 11);
    const related = fileAlerts(alerts, 'deleted').filter((a) => a.role === 'related');
    expect(related).toHaveLength(7);
    expect(await missing()).toBe(11);
    expect(guard.status().goneDirectories).toContain('images/with_related');
    expect(await metricValue(metrics, 'cvat_warden_task_share_files_missing', 'task_id="2"')).toBe(11);
  });

  it('reports a renamed directory as moved files, and the rename back as restored', async () => {
    await rename(path.join(fx.shareDir, 'pcd_with_related'), path.join(fx.shareDir, 'pcd_renamed'));
    await waitFor('6 moves', () => fileAlerts(alerts, 'moved').length === 6);
    const moved = fileAlerts(alerts, 'moved').find((a) => a.path === 'pcd_with_related/pointcloud/000002.pcd');
    expect(moved?.newPath).toBe('pcd_renamed/pointcloud/000002.pcd');
    expect(fileAlerts(alerts, 'deleted')).toEqual([]);
    await rename(path.join(fx.shareDir, 'pcd_renamed'), path.join(fx.shareDir, 'pcd_with_related'));
    await waitFor('6 restores', () => fileAlerts(alerts, 'restored').length === 6);
    await waitFor('missing back to 0', async () => (await missing()) === 0);
  });
});
