/**
 * The guard's baseline across downtime (issue 8, item 4), run the way the service runs
 * it — start() first, then tasks fed one at a time — in a child process that is
 * stopped cleanly (SIGTERM) or killed (SIGKILL) right after it became ready, i.e.
 * long before any scheduled scan. Files modified or deleted while it was down must be
 * alerted within 15 s of the restart. Also: a torn journal tail is ignored, and the
 * in-process guard finds a change made while it was down in the same service order.
 */
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  fileAlerts,
  GUARD_RUNNER,
  guardOver,
  makeShare,
  recordAlerts,
  sampleShareAvailable,
  sampleTasks,
  spawnGuardRunner,
  type GuardRunner,
  type ShareFixture,
} from './support/guard.js';
import { transpileSrc } from './support/transpile.js';
import { waitFor } from './support/wait.js';

const available = sampleShareAvailable();
type Child = GuardRunner;

describe.skipIf(!available)('share guard baseline across restarts (child process)', () => {
  let build: Awaited<ReturnType<typeof transpileSrc>>;
  let fx: ShareFixture;
  let tasksFile: string;
  const children: Child[] = [];

  beforeAll(async () => {
    build = await transpileSrc(['src/guard/index.ts', 'src/metrics.ts', 'src/log.ts']);
  }, 60_000);
  afterAll(async () => build.remove());
  beforeEach(async () => {
    fx = await makeShare();
    tasksFile = path.join(fx.tmp, 'tasks.json');
    await writeFile(tasksFile, JSON.stringify(sampleTasks()));
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await fx.cleanup();
  });

  function spawnGuard(): Child {
    const child = spawnGuardRunner(process.execPath, [GUARD_RUNNER, build.outDir, fx.shareDir, fx.stateDir, tasksFile]);
    children.push(child);
    return child;
  }

  const ready = (c: Child) => waitFor(`guard ready\n${c.stderr()}`, () => c.events.find((e) => e['event'] === 'ready'), { timeoutMs: 30_000 });
  const alerts = (c: Child, kind: string) => c.events.filter((e) => e['event'] === 'alert' && e['kind'] === kind);

  /** Journal lines on disk: the header plus one per baseline taken. */
  async function journalRecords(): Promise<number> {
    const text = await readFile(path.join(fx.stateDir, 'guard-baseline.journal'), 'utf8').catch(() => '');
    return text.split('\n').filter((l) => /^[bB] /.test(l)).length;
  }

  async function changeWhileDown(): Promise<void> {
    await appendFile(path.join(fx.shareDir, 'images/image_0.jpg'), 'tampered');
    await rm(path.join(fx.shareDir, 'videos/video_1.mp4'));
  }

  async function expectFoundAfterRestart(): Promise<void> {
    const second = spawnGuard();
    await ready(second);
    const modified = await waitFor('modified after restart', () => alerts(second, 'modified').find((a) => a['path'] === 'images/image_0.jpg'), {
      timeoutMs: 15_000,
    });
    const deleted = await waitFor('deleted after restart', () => alerts(second, 'deleted').find((a) => a['path'] === 'videos/video_1.mp4'), {
      timeoutMs: 15_000,
    });
    expect(modified).toMatchObject({ source: 'startup', taskIds: [1] });
    expect(deleted).toMatchObject({ taskIds: [3] });
    // nothing else changed: no other alert
    expect(second.events.filter((e) => e['event'] === 'alert')).toHaveLength(2);
    second.proc.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  }

  it('after a clean stop, changes made while down are alerted at the restart', async () => {
    const first = spawnGuard();
    await ready(first);
    first.proc.kill('SIGTERM');
    expect((await first.exited).code, first.stderr()).toBe(0);
    await changeWhileDown();
    await expectFoundAfterRestart();
  }, 90_000);

  it('after a kill -9 before the first scheduled scan, changes made while down are alerted at the restart', async () => {
    const first = spawnGuard();
    const { files } = (await ready(first)) as { files: number };
    expect(files).toBe(24);
    // The baseline reaches the journal within ~20 ms of being taken: wait for it, then kill.
    await waitFor('baseline journaled', async () => (await journalRecords()) >= 24, { timeoutMs: 10_000 });
    first.proc.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    await changeWhileDown();
    await expectFoundAfterRestart();
  }, 90_000);

  it('a torn journal tail (killed mid-write) is ignored, the rest kept', async () => {
    const first = spawnGuard();
    await ready(first);
    await waitFor('baseline journaled', async () => (await journalRecords()) >= 24, { timeoutMs: 10_000 });
    first.proc.kill('SIGKILL');
    await first.exited;
    await appendFile(path.join(fx.stateDir, 'guard-baseline.journal'), 'b AAAAAAAA');
    await changeWhileDown();
    await expectFoundAfterRestart();
  }, 90_000);
});

describe.skipIf(!available)('share guard baseline in the service order (in process)', () => {
  let fx: ShareFixture;
  beforeEach(async () => {
    fx = await makeShare();
  });
  afterEach(async () => fx.cleanup());

  async function run() {
    const guard = guardOver(fx, {
      moveWindowMs: 100,
    });
    const alerts = recordAlerts(guard);
    await guard.start();
    for (const task of sampleTasks()) await guard.upsertTasks([task]);
    return { guard, alerts };
  }

  it('start() before the tasks: a file modified while down is alerted, nothing else', async () => {
    const first = await run();
    await first.guard.close();
    await appendFile(path.join(fx.shareDir, 'pcd_with_related/pointcloud/000002.pcd'), 'x');
    const second = await run();
    const alert = await waitFor('modified at start-up', () => fileAlerts(second.alerts, 'modified')[0]);
    expect(alert).toMatchObject({ path: 'pcd_with_related/pointcloud/000002.pcd', source: 'startup', taskIds: [4] });
    expect(second.alerts).toHaveLength(1);
    await second.guard.close();
    // A third run: the problem is still open (not re-alerted), the baseline still the old one.
    const third = await run();
    await third.guard.scan('manual');
    expect(third.alerts).toEqual([]);
    expect(third.guard.problems().map((p) => [p.path, p.kind])).toEqual([['pcd_with_related/pointcloud/000002.pcd', 'modified']]);
    await third.guard.close();
  });
});
