/**
 * Cloud tasks in the guard's pure core, on a fake clock: how they are indexed (object keys as
 * `<storageId>/<key>`, a context-image directory as one `related` slot whose path is the
 * directory key), which tasks are skipped (another storage; a detached task, whose
 * `cloud_storage_id` CVAT nulls: `Data.cloud_storage` is SET_NULL in cvat/apps/engine/models.py
 * of 2.73), and that listing observations drive the same tracker transitions as a share file —
 * absent: `deleted` at once (a bucket has no move window), listed again: `restored`.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../src/guard/core/clock.js';
import { ShareIndex } from '../src/guard/core/share-index.js';
import { FileTracker } from '../src/guard/core/tracker.js';
import { LISTED } from '../src/guard/shell/cloud-source.js';
import { applyCloudTasks, cloudKeyOf, cloudPath, listingOf } from '../src/guard/shell/cloud-tasks.js';
import type { GuardTask } from '../src/guard/types.js';

function task(taskId: number, storageId: number | null, names: string[], extra: Partial<GuardTask> = {}, related: number[] = []): GuardTask {
  return {
    taskId,
    storage: 'cloud_storage',
    isVideo: false,
    meta: {
      size: names.length,
      start_frame: 0,
      stop_frame: names.length - 1,
      frame_filter: '',
      chunk_size: 2,
      frames: names.map((name, i) => ({ name, width: 1, height: 1, ...(related[i] ? { related_files: related[i] } : {}) })),
      deleted_frames: [],
      storage: 'cloud_storage',
      cloud_storage_id: storageId,
    },
    jobs: [{ id: 100 + taskId, type: 'annotation', startFrame: 0, stopFrame: names.length - 1, chunkSize: 2 }],
    ...extra,
  };
}

function setup() {
  const clock = new FakeClock();
  const index = new ShareIndex();
  const missing = new Map<number, number>();
  const tracker = new FileTracker({
    index,
    clock,
    moveWindowMs: 0,
    gauges: { filesMissing: () => undefined, taskFilesMissing: (t, n) => void missing.set(t, n) },
  });
  const set = { index, tracker, skipped: new Map<number, string>(), minObjects: new Map<number, number>() };
  return { clock, index, tracker, set, missing };
}

describe('cloud tasks in the guard core', () => {
  it('indexes object keys per storage and a context-image directory as one slot; skips other storages and detached tasks', () => {
    const { index, set } = setup();
    const { created } = applyCloudTasks(
      set,
      [],
      [
        task(1, 5, ['a/x.jpg', 'a/y.jpg'], {}, [0, 3]),
        task(2, 5, ['a/x.jpg']), // the same object read by two tasks: one slot
        task(3, null, ['a/z.jpg']),
        task(4, 6, ['b.jpg'], { storage: 'share' }),
      ],
    );
    const paths = created.map((f) => index.relPath(f)).sort();
    expect(paths).toEqual(['5/a/related_images/y_jpg/', '5/a/x.jpg', '5/a/y.jpg']);
    const related = index.lookup('5/a/related_images/y_jpg/')!;
    expect(index.roleOf(related)).toBe('related');
    expect(set.minObjects.get(related)).toBe(3);
    expect(index.taskIdsOf(index.lookup('5/a/x.jpg')!)).toEqual([1, 2]);
    expect(Object.fromEntries(set.skipped)).toEqual({ 3: 'not connected to a cloud storage', 4: 'storage is share' });
    expect([...index.liveDirs()].map((d) => listingOf(d.rel))).toEqual([
      { storageId: 5, prefix: 'a/' },
      { storageId: 5, prefix: 'a/related_images/y_jpg/' },
    ]);
    expect(cloudKeyOf(cloudPath(5, 'a/related_images/y_jpg/'))).toEqual({ storageId: 5, key: 'a/related_images/y_jpg/' });
    expect(listingOf('5')).toEqual({ storageId: 5, prefix: '' });
  });

  it('re-indexes a task that moved to another storage, and frees the slots of a removed one', () => {
    const { index, set } = setup();
    applyCloudTasks(set, [], [task(1, 5, ['a/x.jpg'])]);
    expect(applyCloudTasks(set, [], [task(1, 5, ['a/x.jpg'])]).created).toEqual([]); // same signature: nothing new
    applyCloudTasks(set, [], [task(1, 7, ['a/x.jpg'])]);
    expect(index.lookup('5/a/x.jpg')).toBeUndefined();
    expect(index.lookup('7/a/x.jpg')).toBeDefined();
    applyCloudTasks(set, [1], []);
    expect(index.liveFiles).toBe(0);
    expect(index.dirCount).toBe(0);
  });

  it('a listing that lacks an object is a deleted problem at once, naming job and chunk; listed again it is restored', () => {
    const { index, tracker, set, missing, clock } = setup();
    applyCloudTasks(set, [], [task(1, 5, ['a/0.jpg', 'a/1.jpg', 'a/2.jpg'])]);
    const f = index.lookup('5/a/2.jpg')!;
    expect(tracker.observe(f, { stat: { ...LISTED }, source: 'startup' })).toEqual([]);
    clock.advance(1000);
    expect(tracker.observe(f, { stat: null, source: 'scan' })).toEqual([]); // pending, due now
    expect(missing.get(1)).toBe(1); // counted at once
    tracker.flushDue(clock.monotonic());
    expect(tracker.outbox.splice(0).map((t) => [t.kind, index.relPath(t.f)])).toEqual([['deleted', '5/a/2.jpg']]);
    expect(tracker.problems.get(f)).toMatchObject({ kind: 'deleted', since: clock.wall() });
    expect(tracker.observe(f, { stat: null, source: 'scan' })).toEqual([]); // still missing: no second alert
    expect(tracker.observe(f, { stat: { ...LISTED }, source: 'scan' }).map((t) => t.kind)).toEqual(['restored']);
    expect(missing.get(1)).toBe(0);
  });
});
