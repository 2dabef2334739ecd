/**
 * A burst: 10,000 expected files deleted as fast as node can unlink them. Every one
 * must be reported (per-file events, coalesced log lines), nothing lost, and the
 * missing gauge must read 10,000.
 */
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ShareGuard, type GuardTask } from '../src/guard/index.js';
import { captureLogger, job, meta, metricValue, recordAlerts, settled, testMetrics } from './support/guard.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const FILES = 10_000;
const DIRS = 20;

describe('share guard burst', () => {
  const work = useTempDir('guard-burst-', { scope: 'suite' });
  let shareDir: string;
  const tasks: GuardTask[] = [];

  beforeAll(async () => {
    shareDir = path.join(work.path, 'share');
    for (let d = 0; d < DIRS; d++) {
      const dir = path.join(shareDir, `batch_${d}`);
      await mkdir(dir, { recursive: true });
      const names: string[] = [];
      for (let i = 0; i < FILES / DIRS; i++) {
        names.push(`batch_${d}/frame_${String(i).padStart(6, '0')}.jpg`);
        await writeFile(path.join(shareDir, names[names.length - 1]!), '');
      }
      tasks.push({
        taskId: 100 + d,
        storage: 'share',
        isVideo: false,
        meta: meta(names.map((name) => ({ name }))),
        jobs: [job(1000 + d * 2, 0, 249, 36), job(1001 + d * 2, 250, 499, 36)],
      });
    }
  });

  it('reports all 10,000 deletions', async () => {
    const metrics = testMetrics();
    const { logger, lines } = captureLogger();
    const guard = new ShareGuard({ shareDir, stateDir: path.join(work.path, 'state'), metrics, logger, fsTypeOverride: 'ext4', moveWindowMs: 200 });
    const alerts = recordAlerts(guard);
    try {
      await guard.setTasks(tasks);
      await guard.start();
      expect(await metricValue(metrics, 'cvat_warden_share_files_expected')).toBe(FILES);
      for (const task of tasks) for (const frame of task.meta.frames ?? []) unlinkSync(path.join(shareDir, frame.name));
      await waitFor(`${FILES} alerts`, () => alerts.length >= FILES, { timeoutMs: 20_000 });
      expect(new Set(alerts.map((a) => ('path' in a ? a.path : a.kind))).size).toBe(FILES);
      expect(alerts.every((a) => a.kind === 'deleted')).toBe(true);
      expect(await metricValue(metrics, 'cvat_warden_share_files_missing')).toBe(FILES);
      expect(await metricValue(metrics, 'cvat_warden_share_events_total', 'kind="deleted"')).toBe(FILES);
      expect(await metricValue(metrics, 'cvat_warden_task_share_files_missing', 'task_id="100"')).toBe(FILES / DIRS);
      // no scan was needed: the watcher saw them all
      expect(guard.status().lastScan?.reason).toBe('startup');
      // logs are coalesced per directory, not 10,000 lines
      const errorLines = lines().filter((l) => l['level'] === 50);
      expect(errorLines.length).toBeLessThan(200);
      expect(errorLines.reduce((n, l) => n + Number(l['count'] ?? 1), 0)).toBe(FILES);
    } finally {
      await guard.close();
    }
  });

  it('reports a removed tree of 200 watched directories, then resolves everything when it is copied back', async () => {
    const treeShare = path.join(work.path, 'tree-share');
    const names: string[] = [];
    for (let d = 0; d < 200; d++) {
      await mkdir(path.join(treeShare, 'parent', `d${d}`), { recursive: true });
      for (let i = 0; i < 10; i++) {
        names.push(`parent/d${d}/f${i}.png`);
        await writeFile(path.join(treeShare, names[names.length - 1]!), `${d}-${i}`);
      }
    }
    await cp(path.join(treeShare, 'parent'), path.join(work.path, 'backup'), { recursive: true, preserveTimestamps: true });
    const metrics = testMetrics();
    const guard = new ShareGuard({
      shareDir: treeShare,
      stateDir: path.join(work.path, 'tree-state'),
      metrics,
      logger: captureLogger().logger,
      fsTypeOverride: 'ext4',
      moveWindowMs: 100,
    });
    const alerts = recordAlerts(guard);
    try {
      await guard.setTasks([
        { taskId: 7, storage: 'share', isVideo: false, meta: meta(names.map((name) => ({ name }))), jobs: [job(70, 0, names.length - 1, 10)] },
      ]);
      await guard.start();
      expect(guard.status().watchedDirectories).toBe(200);
      await rm(path.join(treeShare, 'parent'), { recursive: true });
      await waitFor('all deleted', () => alerts.filter((a) => a.kind === 'deleted').length === names.length, { timeoutMs: 60_000 });
      await waitFor('gone directories listed (first 100)', () => guard.status().goneDirectories.length === 100);
      expect(await metricValue(metrics, 'cvat_warden_share_files_missing')).toBe(names.length);
      await cp(path.join(work.path, 'backup'), path.join(treeShare, 'parent'), { recursive: true, preserveTimestamps: true });
      await waitFor('all restored', () => alerts.filter((a) => a.kind === 'restored').length === names.length, { timeoutMs: 60_000 });
      await waitFor('watches back', () => guard.status().watchedDirectories === 200);
      await settled(guard); // the copy's last attribute changes are in, and a scan compared every file
      // a copy in progress (empty file, then data, then mtime) is neither 'modified' nor restored twice
      expect(alerts.filter((a) => a.kind !== 'deleted' && a.kind !== 'restored')).toEqual([]);
      expect(new Set(alerts.filter((a) => a.kind === 'restored').map((a) => ('path' in a ? a.path : ''))).size).toBe(names.length);
      expect(await metricValue(metrics, 'cvat_warden_share_files_missing')).toBe(0);
      expect(guard.status().goneDirectories).toEqual([]);
    } finally {
      await guard.close();
    }
  }, 150_000); // its waits allow 60 s each: on a loaded 2-core machine the copy-back of 200 directories took up to ~19 s
});
