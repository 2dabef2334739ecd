/**
 * Degraded watching is a state (issue 8, items 5 and 7): when a directory's watch
 * cannot be added — the inotify limit (ENOSPC/EMFILE) or EACCES — it is listed in
 * /status, the watch-mode metric says `degraded`, its files are scanned on a bounded
 * schedule (a deletion there is reported), the watch is retried with capped
 * exponential back-off, and the error is alerted once per directory (once for the
 * limit), not on every retry. Run for real in a user namespace with
 * user.max_inotify_watches = 6 where the machine allows it, and always through the
 * guard's fs seam.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ShareGuard, type DirWatcher, type GuardFs } from '../src/guard/index.js';
import { GUARD_DEFAULTS } from '../src/guard/guard-options.js';
import type { Metrics } from '../src/metrics.js';
import {
  captureLogger,
  fileAlerts,
  GUARD_RUNNER,
  guardOver,
  makeShare,
  metricValue,
  recordAlerts,
  sampleShareAvailable,
  sampleTasks,
  spawnGuardRunner,
  testMetrics,
  type ShareFixture,
} from './support/guard.js';
import { transpileSrc } from './support/transpile.js';
import { waitFor } from './support/wait.js';

const available = sampleShareAvailable();
const realWatch = (p: string, listener: Parameters<GuardFs['watch']>[1], options: { persistent: boolean }): DirWatcher =>
  fs.watch(p, { persistent: options.persistent }, (e, f) => listener(e, f));
const errno = (code: string, message: string) => Object.assign(new Error(`${code}: ${message}`), { code });

/** An expected file in `dir` (share-relative): a frame if one lives there, else a context image on disk. */
function expectedFileIn(shareDir: string, dir: string): string {
  const frame = sampleTasks()
    .flatMap((t) => t.meta.frames!.map((f) => f.name))
    .find((n) => path.posix.dirname(n) === dir);
  if (frame) return frame;
  const file = fs.readdirSync(path.join(shareDir, dir), { withFileTypes: true }).find((e) => e.isFile());
  if (!file) throw new Error(`no file in ${dir}`);
  return `${dir}/${file.name}`;
}

describe.skipIf(!available)('degraded watching (fs seam)', () => {
  let fx: ShareFixture;
  let guard: ShareGuard | undefined;
  beforeEach(async () => {
    fx = await makeShare();
  });
  afterEach(async () => {
    await guard?.close();
    guard = undefined;
    await fx.cleanup();
  });

  function make(
    fsOverrides: Partial<GuardFs>,
    metrics: Metrics,
    extra: Partial<ConstructorParameters<typeof ShareGuard>[0]> = {},
    logger = captureLogger().logger,
  ): ShareGuard {
    guard = guardOver(fx, {
      metrics,
      logger,
      moveWindowMs: 100,
      fs: fsOverrides,
      ...extra,
    });
    return guard;
  }

  it('injected ENOSPC: mode degraded, directories listed, a deletion there found by the degraded scan; watched again once there is room', async () => {
    let room = 4; // the share root's own watch (root-watcher.ts), then three directories
    const metrics = testMetrics();
    const g = make(
      {
        watch: (p, l, o) =>
          room-- > 0
            ? realWatch(p, l, o)
            : (room++,
              (() => {
                throw errno('ENOSPC', 'System limit for number of file watchers reached');
              })()),
      },
      metrics,
      { degradedScanIntervalMs: 500, watchRetryBaseMs: 200, watchRetryMaxMs: 1000 },
    );
    const alerts = recordAlerts(g);
    await g.start();
    for (const task of sampleTasks()) await g.upsertTasks([task]); // the service's order
    const status = g.status();
    expect(status.watchMode).toBe('degraded');
    expect(status.watchedDirectories).toBe(3);
    expect(status.degradedDirectoryCount).toBe(7);
    expect(status.degradedDirectories).toHaveLength(7);
    expect(await metricValue(metrics, 'cvat_warden_share_watch_mode', 'mode="degraded"')).toBe(1);
    expect(await metricValue(metrics, 'cvat_warden_share_watch_mode', 'mode="inotify"')).toBe(0);
    expect(await metricValue(metrics, 'cvat_warden_share_degraded_directories')).toBe(7);
    // one alert for the limit, not one per directory or per retry
    expect(alerts.filter((a) => a.kind === 'watcher_error')).toHaveLength(1);

    const victim = expectedFileIn(fx.shareDir, status.degradedDirectories[0]!);
    await rm(path.join(fx.shareDir, victim));
    const deleted = await waitFor(`deletion of ${victim} in an unwatched directory`, () => fileAlerts(alerts, 'deleted').find((a) => a.path === victim));
    expect(deleted.source).toBe('scan');
    expect(alerts.filter((a) => a.kind === 'watcher_error')).toHaveLength(1);

    room = 100; // watches freed elsewhere: the retries take them
    await waitFor('every directory watched again', () => g.status().watchMode === 'inotify', { timeoutMs: 20_000 });
    expect(g.status()).toMatchObject({ degradedDirectoryCount: 0, degradedDirectories: [], watchedDirectories: 10 });
    expect(await metricValue(metrics, 'cvat_warden_share_watch_mode', 'mode="degraded"')).toBe(0);
  });

  it('with the default schedule, the degraded round that finds a deletion runs at the default period (30 s: reported within 60 s)', async () => {
    // The README and the alert rule promise "scanned every 30 s"; CvatWardenShareWatchDegraded's "within 60 s" is two rounds.
    expect(GUARD_DEFAULTS.degradedScanIntervalMs).toBe(30_000);
    // Only the interval timers are faked (the round timer is one): watches, stats, retries and waitFor stay real.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const metrics = testMetrics();
      let room = 3;
      const g = make(
        {
          watch: (p, l, o) => {
            if (room > 0) {
              room--;
              return realWatch(p, l, o);
            }
            throw errno('ENOSPC', 'System limit for number of file watchers reached');
          },
        },
        metrics,
      );
      const alerts = recordAlerts(g);
      await g.start();
      for (const task of sampleTasks()) await g.upsertTasks([task]);
      expect(g.status().watchMode).toBe('degraded');
      const victim = expectedFileIn(fx.shareDir, g.status().degradedDirectories[0]!);
      await rm(path.join(fx.shareDir, victim));
      const rounds = () => metricValue(metrics, 'cvat_warden_share_degraded_scan_duration_seconds_count');
      expect(await rounds()).toBe(0);
      vi.advanceTimersByTime(GUARD_DEFAULTS.degradedScanIntervalMs);
      const deleted = await waitFor(`deletion of ${victim} found by the round`, () => fileAlerts(alerts, 'deleted').find((a) => a.path === victim));
      expect(deleted.source).toBe('scan');
      await waitFor('the round counted', async () => ((await rounds()) ?? 0) >= 1);
      await g.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('EACCES on one directory (chmod 000): one alert, retries back off, logs stay bounded; fixed → watched again', async () => {
    let denied = true;
    let attempts = 0;
    const attemptAt: number[] = [];
    const metrics = testMetrics();
    const { logger, lines } = captureLogger();
    const g = make(
      {
        watch: (p, l, o) => {
          if (p.endsWith('/images') && denied) {
            attempts++;
            attemptAt.push(performance.now());
            throw errno('EACCES', `permission denied, watch '${p}'`);
          }
          return realWatch(p, l, o);
        },
      },
      metrics,
      { degradedScanIntervalMs: 100, watchRetryBaseMs: 50, watchRetryMaxMs: 400 },
      logger,
    );
    const alerts = recordAlerts(g);
    await g.start();
    for (const task of sampleTasks()) await g.upsertTasks([task]);
    expect(g.status()).toMatchObject({ watchMode: 'degraded', degradedDirectories: ['images'] });
    // Retries back off: 50, 100, 200, 400, 400… ms apart — waited for by count, not by a fixed sleep.
    await waitFor('six watch attempts', () => attempts >= 6, { timeoutMs: 20_000 });
    const gaps = attemptAt.slice(1).map((at, i) => at - attemptAt[i]!);
    // Each gap is at least its back-off step (timers never fire early; 5 ms of timer granularity allowed).
    gaps.slice(0, 5).forEach((gap, i) => expect(gap, `gap ${i + 1}`).toBeGreaterThanOrEqual(Math.min(400, 50 * 2 ** i) - 5));
    const errors = alerts.filter((a) => a.kind === 'watcher_error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ dir: 'images', code: 'EACCES' });
    const warnings = lines().filter((l) => (l['level'] as number) >= 40);
    expect(warnings.length).toBeLessThanOrEqual(3);
    expect(await metricValue(metrics, 'cvat_warden_share_events_total', 'kind="watcher_error"')).toBe(1);

    denied = false;
    await waitFor('images watched again', () => g.status().watchMode === 'inotify', { timeoutMs: 5000 });
    // and really watched: a deletion there is seen by the watcher now
    await rm(path.join(fx.shareDir, 'images/image_3.jpg'));
    const deleted = await waitFor('deleted by the watch', () => fileAlerts(alerts, 'deleted').find((a) => a.path === 'images/image_3.jpg'));
    expect(deleted.source).toBe('watch');
  });
});

/** Can we make a user namespace and lower its inotify watch limit? */
function userNamespaceWithTinyLimit(): boolean {
  try {
    execFileSync('unshare', ['-Ur', 'sh', '-c', 'echo 6 > /proc/sys/user/max_inotify_watches && test "$(cat /proc/sys/user/max_inotify_watches)" = 6'], {
      stdio: 'ignore',
      timeout: 5000,
    });
    return true;
  } catch {
    console.warn(
      'SKIP exhausted-watches test in a user namespace: `unshare -Ur` with a writable user.max_inotify_watches is not available here (the fs-seam variant still runs)',
    );
    return false;
  }
}

describe.skipIf(!available || !userNamespaceWithTinyLimit())('exhausted inotify watches, for real (unshare -Ur, max 6 watches)', () => {
  const ROUND_MS = 3_000;
  let build: Awaited<ReturnType<typeof transpileSrc>>;
  let fx: ShareFixture;
  beforeAll(async () => {
    build = await transpileSrc(['src/guard/index.ts', 'src/metrics.ts', 'src/log.ts']);
  }, 60_000);
  afterAll(async () => build.remove());
  beforeEach(async () => {
    fx = await makeShare();
  });
  afterEach(async () => fx.cleanup());

  it('a deletion in a directory the kernel refused a watch for is reported by the next degraded round; doctor sees the namespace limit', async () => {
    const tasksFile = path.join(fx.tmp, 'tasks.json');
    await writeFile(tasksFile, JSON.stringify(sampleTasks()));
    const script = `echo 6 > /proc/sys/user/max_inotify_watches && exec "$0" "$@"`;
    // The real kernel refuses the watches; the round period is shortened (the default's 30 s is held by the fs-seam test above).
    const options = JSON.stringify({ degradedScanIntervalMs: ROUND_MS });
    const child = spawnGuardRunner('unshare', [
      '-Ur',
      'sh',
      '-c',
      script,
      process.execPath,
      GUARD_RUNNER,
      build.outDir,
      fx.shareDir,
      fx.stateDir,
      tasksFile,
      options,
    ]);
    const { proc, events } = child;
    try {
      const ready = (await waitFor(`ready\n${child.stderr()}`, () => events.find((e) => e['event'] === 'ready'), { timeoutMs: 30_000 })) as {
        watchMode: string;
        watchedDirectories: number;
        degradedDirectories: string[];
        degradedDirectoryCount: number;
      };
      // 6 watches: chokidar's root watch + 5 directories; the other 5 are degraded
      expect(ready.watchMode).toBe('degraded');
      expect(ready.watchedDirectories + ready.degradedDirectoryCount).toBe(10);
      expect(ready.degradedDirectoryCount).toBeGreaterThanOrEqual(4);
      const victim = expectedFileIn(fx.shareDir, ready.degradedDirectories[0]!);
      await rm(path.join(fx.shareDir, victim));
      const deleted = await waitFor(
        `deletion of ${victim} reported`,
        () => events.find((e) => e['event'] === 'alert' && e['kind'] === 'deleted' && e['path'] === victim),
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      // Found by a degraded round (no watch could see it); "within two rounds" is held on fake time by the fs-seam test above.
      expect(deleted['source']).toBe('scan');
      expect(events.filter((e) => e['event'] === 'alert' && e['kind'] === 'watcher_error')).toHaveLength(1);
    } finally {
      proc.kill('SIGKILL');
    }

    // doctor's probe inside the same kind of namespace: the namespace limit, and the probe falls short
    const probe = execFileSync(
      'unshare',
      [
        '-Ur',
        'sh',
        '-c',
        `echo 6 > /proc/sys/user/max_inotify_watches && exec "$0" --input-type=module -e "$1"`,
        process.execPath,
        `const { inotifyWatchLimit } = await import(${JSON.stringify(`file://${build.outDir}/guard/shell/inotify-limit.js`)}); console.log(JSON.stringify(await inotifyWatchLimit(20)));`,
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    const limit = JSON.parse(probe);
    expect(limit).toMatchObject({ namespaceMaxWatches: 6, configured: 6, enough: false, probeError: 'ENOSPC' });
    expect(limit.probed).toBeLessThanOrEqual(6);
  }, 120_000);
});
