/**
 * Path safety at runtime (issue 8, Low): a share directory swapped for a symlink that
 * points outside the share while the guard runs is rejected and alerted
 * (`path_escape`), its files count as gone — never "restored" because identical
 * copies sit at the symlink's target. Index-time rejection is covered in
 * guard-check.test.ts.
 */
import { rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ShareGuard, type GuardAlert, type PathEscapeAlert } from '../src/guard/index.js';
import { fileAlerts, guardOver, makeShare, recordAlerts, sampleShareAvailable, sampleTasks, type ShareFixture } from './support/guard.js';
import { waitFor } from './support/wait.js';

const available = sampleShareAvailable();

describe.skipIf(!available)('share guard: a directory swapped for an out-of-share symlink', () => {
  let fx: ShareFixture;
  let guard: ShareGuard;
  let alerts: GuardAlert[];
  beforeEach(async () => {
    fx = await makeShare();
    guard = guardOver(fx, {
      moveWindowMs: 100,
    });
    alerts = recordAlerts(guard);
    await guard.start();
    for (const task of sampleTasks()) await guard.upsertTasks([task]);
  });
  afterEach(async () => {
    await guard.close();
    await fx.cleanup();
  });

  const escapes = () => alerts.filter((a): a is PathEscapeAlert => a.kind === 'path_escape');

  it('moved out, then replaced by a symlink to the moved copy: path_escape, still deleted, never restored (events and scans)', async () => {
    await rename(path.join(fx.shareDir, 'videos'), path.join(fx.outside, 'videos'));
    await waitFor('video deleted', () => fileAlerts(alerts, 'deleted').find((a) => a.path === 'videos/video_1.mp4'));
    await symlink(path.join(fx.outside, 'videos'), path.join(fx.shareDir, 'videos'));
    const escape = await waitFor('path_escape', () => escapes()[0]);
    expect(escape).toMatchObject({ dir: 'videos', target: path.join(fx.outside, 'videos'), taskIds: [3] });
    await guard.scan('manual');
    await guard.scan('manual');
    expect(fileAlerts(alerts, 'restored')).toEqual([]);
    expect(escapes()).toHaveLength(1); // once, not per event or scan
    expect(guard.problems().map((p) => [p.path, p.kind])).toEqual([['videos/video_1.mp4', 'deleted']]);

    // the real directory back: restored, and the escape is over
    await rename(path.join(fx.shareDir, 'videos'), path.join(fx.outside, 'videos-link'));
    await rename(path.join(fx.outside, 'videos'), path.join(fx.shareDir, 'videos'));
    await waitFor('restored', () => fileAlerts(alerts, 'restored').find((a) => a.path === 'videos/video_1.mp4'));
    expect(guard.problems()).toEqual([]);
  });

  it('swapped in one go while watched: the files are reported gone with the escape', async () => {
    const rel = 'images/with_related/related_images/image_0_png';
    await rename(path.join(fx.shareDir, rel), path.join(fx.outside, 'image_0_png'));
    await symlink(path.join(fx.outside, 'image_0_png'), path.join(fx.shareDir, rel));
    await waitFor('path_escape', () => escapes().find((e) => e.dir === rel));
    const gone = await waitFor('its context images reported', () => {
      const d = fileAlerts(alerts, 'deleted').filter((a) => a.path.startsWith(`${rel}/`));
      return d.length === 3 && d;
    });
    expect(gone.every((a) => a.taskIds.includes(2))).toBe(true);
    await guard.scan('manual');
    expect(fileAlerts(alerts, 'restored')).toEqual([]);
  });
});
