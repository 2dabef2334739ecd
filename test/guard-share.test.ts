/**
 * The share as a whole: the root vanishing and coming back (one alert, not one per
 * file), network filesystems (scan-only + a warning), and a watcher failing (the
 * guard falls back to a reconcile scan and still reports the change).
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { cp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { ShareGuard, type DirWatcher, type GuardAlert } from '../src/guard/index.js';
import type { Metrics } from '../src/metrics.js';
import {
  captureLogger,
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

describe.skipIf(!available)('share guard: the share as a whole', () => {
  let fx: ShareFixture;
  let metrics: Metrics;
  const guards: ShareGuard[] = [];

  beforeEach(async () => {
    fx = await makeShare();
    metrics = testMetrics();
  });

  afterEach(async () => {
    await Promise.all(guards.splice(0).map((g) => g.close()));
    await fx.cleanup();
  });

  const make = (extra: Partial<ConstructorParameters<typeof ShareGuard>[0]> = {}) => {
    const guard = guardOver(fx, {
      metrics,
      moveWindowMs: 200,
      rootPollMs: 50,
      rootSettleMs: 50,
      rootCheckIntervalMs: 100,
      ...extra,
    });
    guards.push(guard);
    return guard;
  };

  it('raises one share_unavailable when the root disappears, then share_restored and no file alerts', async () => {
    const guard = make();
    const alerts = recordAlerts(guard);
    await guard.setTasks(sampleTasks());
    await guard.start();
    const aside = path.join(fx.tmp, 'share-aside');
    await cp(fx.shareDir, aside, { recursive: true, preserveTimestamps: true });

    await rm(fx.shareDir, { recursive: true, force: true });
    await waitFor('share_unavailable', () => alerts.some((a) => a.kind === 'share_unavailable'));
    expect(await metricValue(metrics, 'cvat_warden_share_available')).toBe(0);
    expect((await settled(guard)).skipped).toBe('share_unavailable'); // nothing left in a move window: still nothing per file
    expect(alerts.filter((a) => a.kind === 'share_unavailable')).toHaveLength(1);
    expect(fileAlerts(alerts, 'deleted')).toEqual([]);
    expect(guard.status().shareAvailable).toBe(false);
    expect(guard.status().watchedDirectories).toBe(0);

    await rename(aside, fx.shareDir); // the mount is back, all at once
    await waitFor('share_restored', () => alerts.some((a) => a.kind === 'share_restored'));
    await waitFor('available gauge', async () => (await metricValue(metrics, 'cvat_warden_share_available')) === 1);
    await waitFor('watches re-established', () => guard.status().watchedDirectories === 10);
    await waitFor('rescan after restore', () => guard.status().lastScan?.reason === 'share_restored');
    expect(await metricValue(metrics, 'cvat_warden_share_files_missing')).toBe(0);
    expect(await metricValue(metrics, 'cvat_warden_share_events_total', 'kind="share_unavailable"')).toBe(1);
    expect(fileAlerts(alerts, 'deleted')).toEqual([]);

    // watching works again after the comeback
    await rm(path.join(fx.shareDir, 'images/image_5.jpg'));
    await waitFor('deleted after restore', () => fileAlerts(alerts, 'deleted').some((a) => a.path === 'images/image_5.jpg'));
  });

  it('a root replaced by another directory (renamed away, a copy put in its place) is unavailable, then restored, and the new one is watched', async () => {
    const guard = make({ rootCheckIntervalMs: 60_000 }); // the root watcher, not the periodic check, must notice
    const alerts = recordAlerts(guard);
    await guard.setTasks(sampleTasks());
    await guard.start();
    const copy = path.join(fx.tmp, 'share-copy');
    const old = path.join(fx.tmp, 'share-old');
    await cp(fx.shareDir, copy, { recursive: true, preserveTimestamps: true });
    await rename(fx.shareDir, old);
    await rename(copy, fx.shareDir);
    await waitFor('share_unavailable', () => alerts.some((a) => a.kind === 'share_unavailable'));
    await waitFor('share_restored', () => alerts.some((a) => a.kind === 'share_restored'));
    await waitFor('rescan after restore', () => guard.status().lastScan?.reason === 'share_restored');
    expect(fileAlerts(alerts, 'deleted')).toEqual([]);
    expect(await metricValue(metrics, 'cvat_warden_share_files_missing')).toBe(0);

    // the old tree is not the share any more: a deletion there says nothing; one in the new share is reported
    await rm(path.join(old, 'images/image_4.jpg'));
    await rm(path.join(fx.shareDir, 'images/image_5.jpg'));
    await waitFor('deleted in the new share', () => fileAlerts(alerts, 'deleted').some((a) => a.path === 'images/image_5.jpg'));
    expect(fileAlerts(alerts, 'deleted').map((a) => a.path)).toEqual(['images/image_5.jpg']);
  });

  it('a root replaced without an event the warden sees (mounted over) is found by the periodic root check', async () => {
    // The root's own watch hears nothing (a mount makes no inotify event on the directory it covers).
    const deaf = Object.assign(new EventEmitter(), { close: () => undefined }) as unknown as DirWatcher;
    const guard = make({
      rootCheckIntervalMs: 100,
      fs: {
        watch: (p, listener, options): DirWatcher => (p === fx.shareDir ? deaf : fs.watch(p, { persistent: options.persistent }, (e, f) => listener(e, f))),
      },
    });
    const alerts = recordAlerts(guard);
    await guard.setTasks(sampleTasks());
    await guard.start();
    const copy = path.join(fx.tmp, 'share-copy');
    await cp(fx.shareDir, copy, { recursive: true, preserveTimestamps: true });
    await rename(fx.shareDir, path.join(fx.tmp, 'share-old'));
    await rename(copy, fx.shareDir);
    await waitFor('share_unavailable', () => alerts.some((a) => a.kind === 'share_unavailable'));
    expect(alerts.find((a) => a.kind === 'share_unavailable')).toMatchObject({ reason: expect.stringContaining('replaced') as string });
    await waitFor('share_restored', () => alerts.some((a) => a.kind === 'share_restored'));
    await rm(path.join(fx.shareDir, 'images/image_5.jpg'));
    await waitFor('deleted in the new share', () => fileAlerts(alerts, 'deleted').some((a) => a.path === 'images/image_5.jpg'));
  });

  it('keeps an open problem across an outage; a file back after the outage resolves it', async () => {
    const guard = make();
    const alerts = recordAlerts(guard);
    await guard.setTasks(sampleTasks());
    await guard.start();
    const file = path.join(fx.shareDir, 'images/image_0.jpg');
    const saved = path.join(fx.outside, 'image_0.jpg');
    await rename(file, saved);
    await waitFor('deleted', () => fileAlerts(alerts, 'deleted').length === 1);
    const aside = path.join(fx.tmp, 'share-aside');
    await rename(fx.shareDir, aside);
    await waitFor('share_unavailable', () => alerts.some((a) => a.kind === 'share_unavailable'));
    await rename(saved, path.join(aside, 'images/image_0.jpg'));
    await rename(aside, fx.shareDir);
    await waitFor('restored after the outage', () => fileAlerts(alerts, 'restored').length === 1);
    expect(fileAlerts(alerts, 'deleted')).toHaveLength(1);
    await waitFor('missing 0', async () => (await metricValue(metrics, 'cvat_warden_share_files_missing')) === 0);
  });

  it('uses scan-only mode on a large network share, warns at start-up, and still finds deletions by scanning', async () => {
    const { logger, lines } = captureLogger();
    const guard = make({ fsTypeOverride: 'nfs4', logger, pollingMaxFiles: 5, scanIntervalMs: 60_000 });
    const alerts = recordAlerts(guard);
    await guard.setTasks(sampleTasks());
    await guard.start();
    expect(guard.fsType).toMatchObject({ fsType: 'nfs4', network: true });
    expect(guard.watchMode).toBe('scan_only');
    expect(await metricValue(metrics, 'cvat_warden_share_watch_mode', 'mode="scan_only"')).toBe(1);
    expect(await metricValue(metrics, 'cvat_warden_share_watch_mode', 'mode="inotify"')).toBe(0);
    expect(await metricValue(metrics, 'cvat_warden_share_watched_directories')).toBe(0);
    const warning = lines().find((l) => l['level'] === 40 && String(l['msg']).includes('network filesystem'));
    expect(warning).toMatchObject({ fsType: 'nfs4', watchMode: 'scan_only' });

    await rm(path.join(fx.shareDir, 'videos/video_1.mp4'));
    const result = await settled(guard);
    expect(result).toMatchObject({ filesChecked: 24, missing: 1 });
    // nothing watches: the one deletion alert is the scan's (a watcher would have been first, with source 'watch')
    expect(fileAlerts(alerts, 'deleted').map((a) => [a.path, a.source])).toEqual([['videos/video_1.mp4', 'scan']]);
  });

  it('run passes no scan interval unless one is given, so the guard decides', () => {
    const env = { CVAT_URL: 'https://cvat.example.com', CVAT_ACCESS_TOKEN: 'tok-guard-test' };
    expect(loadConfig('run', [], env).scanIntervalMs).toBeUndefined();
    expect(loadConfig('run', ['--scan-interval', '5m'], env).scanIntervalMs).toBe(300_000);
    expect(loadConfig('run', [], { ...env, CVAT_WARDEN_SCAN_INTERVAL: '2h' }).scanIntervalMs).toBe(7_200_000);
  });

  it('reconciles every 10 min on a network share and hourly on a local one when no interval is configured', async () => {
    const cases: Array<[string, number | undefined, number, string]> = [
      ['nfs4', undefined, 600_000, 'scan_only'],
      ['cifs', undefined, 600_000, 'polling'],
      ['fuse.sshfs', undefined, 600_000, 'polling'],
      ['ext4', undefined, 3_600_000, 'inotify'],
      ['nfs4', 120_000, 120_000, 'scan_only'],
      ['ext4', 300_000, 300_000, 'inotify'],
    ];
    for (const [fsType, configured, expected, mode] of cases) {
      const guard = make({ fsTypeOverride: fsType, scanIntervalMs: configured, pollingMaxFiles: fsType === 'nfs4' ? 5 : 2000 });
      await guard.setTasks(sampleTasks());
      await guard.start();
      expect([fsType, configured, guard.status().scanIntervalMs, guard.status().watchMode]).toEqual([fsType, configured, expected, mode]);
      await guard.close();
    }
  });

  it('polls a small network share with chokidar', async () => {
    const guard = make({ fsTypeOverride: 'cifs', pollIntervalMs: 50, scanIntervalMs: 60_000 });
    const alerts = recordAlerts(guard);
    await guard.setTasks(sampleTasks());
    await guard.start();
    expect(guard.watchMode).toBe('polling');
    expect(await metricValue(metrics, 'cvat_warden_share_watch_mode', 'mode="polling"')).toBe(1);
    await rm(path.join(fx.shareDir, 'images/image_3.jpg'));
    const alert = await waitFor('polled deletion', () => fileAlerts(alerts, 'deleted').find((a) => a.path === 'images/image_3.jpg'));
    expect(alert.source).toBe('poll');
  });

  it('falls back to a scan and alerts when a directory watcher fails', async () => {
    const watchers = new Map<string, EventEmitter>();
    const guard = make({
      fs: {
        // the real fs.watch, remembered so the test can make it fail like an inotify error would
        watch: (p, listener, options): DirWatcher => {
          const w = fs.watch(p, { persistent: options.persistent }, (e, f) => listener(e, f === null ? null : f));
          watchers.set(path.relative(fx.shareDir, p), w);
          return w;
        },
      },
    });
    const alerts: GuardAlert[] = recordAlerts(guard);
    await guard.setTasks(sampleTasks());
    await guard.start();

    // The watcher of images/ dies; a file goes away while nobody watches.
    const images = watchers.get('images')!;
    (images as fs.FSWatcher).close();
    await rm(path.join(fx.shareDir, 'images/image_2.jpg'));
    images.emit('error', Object.assign(new Error('inotify queue overflow'), { code: 'EIO' }));

    const error = await waitFor('watcher_error', () => alerts.find((a) => a.kind === 'watcher_error'));
    expect(error).toMatchObject({ kind: 'watcher_error', dir: 'images', code: 'EIO' });
    // until the retry (2 s back-off) the directory is degraded, listed, and scanned
    expect(guard.status()).toMatchObject({ watchMode: 'degraded', degradedDirectories: ['images'], degradedDirectoryCount: 1 });
    await waitFor('deletion found by the degraded scan', () =>
      fileAlerts(alerts, 'deleted').some((a) => a.path === 'images/image_2.jpg' && a.source === 'scan'),
    );
    expect(await metricValue(metrics, 'cvat_warden_share_events_total', 'kind="watcher_error"')).toBe(1);
    // and the directory is watched again
    await waitFor('watch re-established', () => guard.status().watchedDirectories === 10, { timeoutMs: 10_000 });
    expect(guard.status()).toMatchObject({ watchMode: 'inotify', degradedDirectoryCount: 0 });
  });

  it('reports ENOSPC (watch limit) once and keeps guarding by scans', async () => {
    let calls = 0;
    const guard = make({
      fs: {
        watch: (p, listener, options): DirWatcher => {
          // The first watch is the share root's own (root-watcher.ts), then three directories.
          if (++calls > 4) throw Object.assign(new Error('System limit for number of file watchers reached'), { code: 'ENOSPC' });
          return fs.watch(p, { persistent: options.persistent }, (e, f) => listener(e, f === null ? null : f));
        },
      },
    });
    const alerts = recordAlerts(guard);
    await guard.setTasks(sampleTasks());
    await guard.start();
    await waitFor('watcher_error', () => alerts.some((a) => a.kind === 'watcher_error'));
    expect(alerts.filter((a) => a.kind === 'watcher_error')).toHaveLength(1);
    expect(alerts.find((a) => a.kind === 'watcher_error')).toMatchObject({ code: 'ENOSPC' });
    expect(guard.status().watchedDirectories).toBe(3);
  });
});
