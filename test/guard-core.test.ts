/**
 * The guard's pure core on a fake clock: the tracker decides deleted / moved / modified /
 * restored from observations alone — no file system, no timers, no metrics registry. Time
 * moves only when the test says so, so the move window and the settle delay are exact.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../src/guard/core/clock.js';
import { ShareIndex } from '../src/guard/core/share-index.js';
import { FileTracker, type TrackerGauges, type Transition } from '../src/guard/core/tracker.js';
import type { FileStat } from '../src/guard/types.js';

const MOVE_WINDOW = 500;
const stat = (over: Partial<FileStat> = {}): FileStat => ({ size: 100, mtimeMs: 1_000, ino: 7, dev: 1, ...over });

function setup() {
  const clock = new FakeClock();
  const index = new ShareIndex();
  const totals: number[] = [];
  const perTask = new Map<number, number>();
  const gauges: TrackerGauges = {
    filesMissing: (n) => totals.push(n),
    taskFilesMissing: (taskId, n) => void perTask.set(taskId, n),
  };
  const baselines: number[] = [];
  const tracker = new FileTracker({ index, clock, moveWindowMs: MOVE_WINDOW, gauges, onBaseline: (f) => baselines.push(f) });
  const a = index.addRef('d/a.jpg', 1, 0, 'frame').f;
  const b = index.addRef('d/b.jpg', 1, 1, 'frame').f;
  const kinds = (ts: readonly Transition[]) => ts.map((t) => t.kind);
  return { clock, index, tracker, totals, perTask, baselines, a, b, kinds };
}

describe('tracker (pure core, fake clock)', () => {
  it('first sight takes the baseline; an unchanged stat is silent', () => {
    const { tracker, a, baselines, index } = setup();
    expect(tracker.observe(a, { stat: stat(), source: 'startup' })).toEqual([]);
    expect(baselines).toEqual([a]);
    expect(index.baseline(a)).toEqual(stat());
    expect(tracker.observe(a, { stat: stat(), source: 'scan' })).toEqual([]);
  });

  it('a vanished file counts as missing at once, and becomes `deleted` exactly when the move window has passed', () => {
    const { tracker, a, clock, totals, perTask, kinds } = setup();
    tracker.observe(a, { stat: stat(), source: 'startup' });
    expect(tracker.observe(a, { stat: null, source: 'watch' })).toEqual([]);
    expect(totals.at(-1)).toBe(1);
    expect(perTask.get(1)).toBe(1);
    expect(tracker.nextDue()).toBe(clock.monotonic() + MOVE_WINDOW);
    clock.advance(MOVE_WINDOW - 1);
    tracker.flushDue(clock.monotonic());
    expect(tracker.outbox).toEqual([]);
    clock.advance(1);
    tracker.flushDue(clock.monotonic());
    expect(kinds(tracker.outbox.splice(0))).toEqual(['deleted']);
    expect(tracker.problems.get(a)).toMatchObject({ kind: 'deleted', since: 1_700_000_000_000 });
  });

  it('an appearance of the same dev+inode within the window is a move, not a deletion', () => {
    const { tracker, a, clock, kinds } = setup();
    tracker.observe(a, { stat: stat(), source: 'startup' });
    tracker.observe(a, { stat: null, source: 'watch' });
    clock.advance(100);
    expect(tracker.pairAppearance('e/a.jpg', stat())).toBe(true);
    const out = tracker.outbox.splice(0);
    expect(kinds(out)).toEqual(['moved']);
    expect(out[0]).toMatchObject({ newPath: 'e/a.jpg', source: 'watch' });
    clock.advance(MOVE_WINDOW);
    tracker.flushDue(clock.monotonic());
    expect(tracker.outbox).toEqual([]);
  });

  it('a file back within the window unchanged is as if nothing happened; back with another size it is modified', () => {
    const { tracker, a, b, kinds, totals } = setup();
    for (const f of [a, b]) tracker.observe(f, { stat: stat(), source: 'startup' });
    tracker.observe(a, { stat: null, source: 'watch' });
    expect(tracker.observe(a, { stat: stat(), source: 'watch' })).toEqual([]);
    expect(totals.at(-1)).toBe(0);
    tracker.observe(b, { stat: null, source: 'watch' });
    expect(kinds(tracker.observe(b, { stat: stat({ size: 5 }), source: 'watch' }))).toEqual(['modified']);
  });

  it('a deleted file copied back with another size waits for its settle delay, then is decided with mode settled', () => {
    const { tracker, a, clock, kinds } = setup();
    tracker.observe(a, { stat: stat(), source: 'startup' });
    tracker.observe(a, { stat: null, source: 'scan' }); // a scan has no move window
    tracker.flushDue(clock.monotonic());
    expect(kinds(tracker.outbox.splice(0))).toEqual(['deleted']);
    expect(tracker.observe(a, { stat: stat({ size: 50 }), source: 'watch' })).toEqual([]); // still copying?
    expect(tracker.takeUnsettled(clock.monotonic())).toEqual([]);
    clock.advance(MOVE_WINDOW);
    expect(tracker.takeUnsettled(clock.monotonic())).toEqual([a]);
    expect(kinds(tracker.observe(a, { stat: stat({ size: 50 }), source: 'watch', mode: 'settled' }))).toEqual(['modified']);
    // the full copy restores it
    expect(kinds(tracker.observe(a, { stat: stat({ mtimeMs: 2_000, ino: 9 }), source: 'watch' }))).toEqual(['restored']);
  });

  it('after the share came back, ignore-inode re-baselines a new inode silently where normal mode alerts', () => {
    const { tracker, a, b, kinds, index } = setup();
    for (const f of [a, b]) tracker.observe(f, { stat: stat(), source: 'startup' });
    expect(tracker.observe(a, { stat: stat({ ino: 99 }), source: 'scan', mode: 'ignore-inode' })).toEqual([]);
    expect(index.baseline(a)?.ino).toBe(99);
    expect(kinds(tracker.observe(b, { stat: stat({ ino: 99 }), source: 'scan' }))).toEqual(['modified']);
  });

  it('a problem saved by the last run is still open without a new event, and counted before its file is seen', () => {
    const { tracker, a, totals, perTask } = setup();
    tracker.loadPersisted([{ path: 'd/a.jpg', kind: 'deleted', role: 'frame', since: 5, taskIds: [1] }]);
    expect(totals.at(-1)).toBe(1);
    expect(perTask.get(1)).toBe(1);
    expect(tracker.observe(a, { stat: null, source: 'startup' })).toEqual([]);
    expect(tracker.stillOpen).toEqual(['d/a.jpg']);
    expect(tracker.problems.get(a)).toEqual({ kind: 'deleted', since: 5 });
    expect(totals.at(-1)).toBe(1);
  });
});
