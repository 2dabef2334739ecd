import { describe, expect, it, vi } from 'vitest';
import { AdaptiveConcurrency, percentile, type AdaptiveOptions, type AdaptiveState, type WarmSample } from '../src/daemon/adaptive.js';
import type { AdaptiveTuning } from '../src/daemon/adaptive-tuning.js';
import { createMetrics } from '../src/metrics.js';
import { loadConfig } from '../src/config/index.js';
import { createWarmControl } from '../src/daemon/warm-control.js';

type SetupOptions = Partial<AdaptiveTuning> & Pick<AdaptiveOptions, 'max' | 'initial' | 'metrics'> & { workers?: number; coldThresholdMs?: number };

/**
 * A controller on a fake clock. Unless a test says otherwise, as many workers as the
 * ceiling and no 429 yield rule: the issue-4 window law in isolation.
 */
function setup({ max, initial, metrics, workers = max, coldThresholdMs = 1_000, ...tuning }: SetupOptions) {
  const clock = { t: 1_000_000, now: () => clock.t };
  const controller = new AdaptiveConcurrency({
    max,
    workers,
    coldThresholdMs,
    tuning: { yield429Chunks: 1_000, ...tuning },
    clock,
    ...(initial !== undefined ? { initial } : {}),
    ...(metrics ? { metrics } : {}),
  });
  const changes: AdaptiveState[] = [];
  controller.onChange((s) => changes.push(s));
  /** Feeds `n` samples, 100 ms apart. */
  const feed = (n: number, sample: (i: number) => WarmSample, stepMs = 100) => {
    for (let i = 0; i < n; i++) {
      clock.t += stepMs;
      controller.record(sample(i));
    }
  };
  return { clock, controller, changes, feed };
}

let chunkSeq = 0;
/** A cache hit of about `ms` (±10 %). */
const hit =
  (ms: number) =>
  (i: number): WarmSample => ({ latencyMs: ms * (0.9 + (i % 3) * 0.1), status: 200, cold: false, chunk: `s#${chunkSeq++}` });
const build =
  (ms: number) =>
  (i: number): WarmSample => ({ latencyMs: ms * (0.9 + (i % 3) * 0.1), status: 200, cold: true, chunk: `s#${chunkSeq++}` });

describe('AdaptiveConcurrency', () => {
  it('steady latency: grows by one per window up to the configured maximum', () => {
    const { controller, changes, feed } = setup({ max: 4, initial: 1 });
    expect(controller.limit).toBe(1);
    feed(100, hit(50));
    expect(controller.limit).toBe(4);
    expect(changes.map((c) => c.limit)).toEqual([2, 3, 4]);
    expect(controller.pauseMs).toBe(0);
    expect(controller.reason).toMatch(/ceiling of 4/);
  });

  it('latency doubling: halves the limit, settles one window, keeps halving, then paces at 1', () => {
    const metrics = createMetrics({ buildInfo: { version: 't' } });
    const { controller, changes, feed } = setup({ max: 8, metrics });
    feed(40, hit(100)); // two windows: baseline ≈ 110 ms p90
    expect(controller.limit).toBe(8);
    feed(20, hit(200));
    expect(controller.limit).toBe(4);
    expect(controller.reason).toMatch(/hit p90 220 ms is 2\.0× the expected 110 ms.*limit 8→4/);
    expect(controller.snapshot().latencyRatio).toBeCloseTo(2, 1);
    feed(20, hit(200)); // settling: samples may still come from the old limit
    expect(controller.limit).toBe(4);
    expect(controller.reason).toMatch(/settling/);
    feed(20, hit(200));
    expect(controller.limit).toBe(2);
    feed(40, hit(200));
    expect(controller.limit).toBe(1);
    expect(controller.pauseMs).toBe(0);
    feed(40, hit(200));
    expect(controller.limit).toBe(1);
    expect(controller.pauseMs).toBe(1_000);
    expect(changes.map((c) => [c.limit, c.pauseMs])).toEqual([
      [4, 0],
      [2, 0],
      [1, 0],
      [1, 1_000],
    ]);
    return Promise.all([metrics.warmBackoffs.get(), metrics.warmPacingDelay.get(), metrics.warmLatencyRatio.get()]).then(([backoffs, pacing, ratio]) => {
      expect(backoffs.values[0]?.value).toBe(4);
      expect(pacing.values[0]?.value).toBe(1);
      expect(ratio.values[0]?.value).toBeCloseTo(2, 1);
    });
  });

  it('slower builds that our own concurrency explains do not trigger a back-off; worse ones do', () => {
    const { controller, feed } = setup({ max: 4, initial: 2, workers: 2 });
    feed(20, build(5_000)); // at 2 in flight on 2 workers: no self-queueing
    expect(controller.limit).toBe(3);
    feed(20, build(7_500)); // 3 on 2 workers: ×1.5 is our own queue
    expect(controller.limit).toBe(4);
    feed(40, build(10_000)); // 4 on 2 workers: ×2
    expect(controller.limit).toBe(4);
    expect(controller.reason).toMatch(/ceiling/);
    feed(1, build(20_000)); // ×4: annotators (or someone) are queueing too — seen at the first such build
    expect(controller.limit).toBe(1);
    expect(controller.reason).toMatch(/builds waited [\d.]+ s beyond the build time 5\.0 s.*limit 4→1, held 30\.0 s/);
  });

  it('a 429 burst across many chunks backs off and pauses; one chunk 429ing again and again does not', () => {
    const { controller, feed } = setup({ max: 4 });
    // A stuck honeypot chunk: the same URL answers 429 after every Retry-After.
    feed(20, (i) => (i % 2 === 0 ? { latencyMs: 50_000, status: 429, chunk: 'job7#3' } : hit(50)(i)));
    expect(controller.limit).toBe(4);
    expect(controller.pauseMs).toBe(0);

    feed(20, (i) => (i < 5 ? { latencyMs: 50_000, status: 429, chunk: `job${i}#0` } : hit(50)(i)));
    expect(controller.limit).toBe(2);
    expect(controller.pauseMs).toBe(1_000);
    expect(controller.reason).toMatch(/429 from 5 different chunks/);

    feed(20, (i) => (i < 4 ? { latencyMs: 50_000, status: 429 } : hit(50)(i))); // no chunk ids: each counts
    expect(controller.limit).toBe(1);
    expect(controller.pauseMs).toBe(2_000);
  });

  it('recovers: the pause halves away first, then the limit grows back to the maximum', () => {
    const { controller, changes, feed } = setup({ max: 4 });
    feed(20, hit(50));
    for (let burst = 0; burst < 3; burst++) feed(20, (i) => (i < 3 ? { latencyMs: 50_000, status: 429, chunk: `b${burst}#${i}` } : hit(50)(i)));
    expect([controller.limit, controller.pauseMs]).toEqual([1, 4_000]);
    changes.length = 0;
    feed(200, hit(50));
    expect(changes.map((c) => [c.limit, c.pauseMs])).toEqual([
      [1, 2_000],
      [1, 1_000],
      [1, 0],
      [2, 0],
      [3, 0],
      [4, 0],
    ]);
    expect(changes[0]?.reason).toMatch(/pause 4\.0 s→2\.0 s/);
  });

  it('backs off on 502/503/504 and network errors, and ignores 4xx and 500', () => {
    const { controller, feed } = setup({ max: 4 });
    feed(20, (i) => ({ latencyMs: 30, status: i % 4 === 0 ? 404 : 500 }));
    expect(controller.limit).toBe(4);
    expect(controller.reason).toMatch(/no successful requests/);
    feed(20, (i) => (i % 2 === 0 ? { latencyMs: 10_000, status: i % 4 === 0 ? 'network' : 503 } : hit(50)(i)));
    expect(controller.limit).toBe(2);
    expect(controller.reason).toMatch(/10 of 20 requests failed/);
  });

  it('probe latency (what annotators feel) rising triggers a back-off even when warm requests look fine', () => {
    const { clock, controller, feed } = setup({ max: 4 });
    const round = (probeMs: number) => {
      for (let i = 0; i < 10; i++) {
        clock.t += 100;
        controller.recordProbe({ latencyMs: probeMs, ok: true });
        clock.t += 100;
        controller.record(hit(50)(i));
      }
    };
    round(80);
    round(80);
    expect(controller.limit).toBe(4);
    round(300);
    expect(controller.limit).toBe(2);
    expect(controller.reason).toMatch(/probe p90 300 ms/);
    feed(20, hit(50)); // settling
    for (let i = 0; i < 20; i++) controller.recordProbe({ latencyMs: 80, ok: i % 2 === 0 });
    expect(controller.limit).toBe(1);
    expect(controller.reason).toMatch(/10 of 20 probes failed/);
  });

  it('closes a window on time when samples are sparse', () => {
    const { controller, feed } = setup({ max: 3, initial: 1, windowMs: 30_000, minWindowSamples: 4 });
    feed(3, hit(50), 20_000);
    expect(controller.limit).toBe(1); // 60 s but only 3 samples
    feed(1, hit(50), 20_000);
    expect(controller.limit).toBe(2);
  });

  it('is deterministic: the same samples and clock give the same decisions', () => {
    const stream = (i: number): WarmSample =>
      i % 7 === 0
        ? { latencyMs: 50_000, status: 429, chunk: `c${i % 21}` }
        : { latencyMs: 40 + ((i * 37) % 300), status: i % 11 === 0 ? 503 : 200, cold: i % 5 === 0 };
    const run = () => {
      const { controller, changes, feed } = setup({ max: 6, initial: 3 });
      feed(600, stream);
      return { changes, final: controller.snapshot() };
    };
    const a = run();
    expect(a.changes.length).toBeGreaterThan(3);
    expect(run()).toEqual(a);
  });

  it('onChange returns an unsubscribe function; bad options are refused', () => {
    const { controller, feed, changes } = setup({ max: 4, initial: 1 });
    const extra: number[] = [];
    const off = controller.onChange((s) => extra.push(s.limit));
    feed(20, hit(50));
    off();
    feed(20, hit(50));
    expect(extra).toEqual([2]);
    expect(changes.map((c) => c.limit)).toEqual([2, 3]);
    expect(() => new AdaptiveConcurrency({ max: 0, workers: 2, coldThresholdMs: 250 })).toThrow(RangeError);
    expect(() => new AdaptiveConcurrency({ max: 2.5, workers: 2, coldThresholdMs: 250 })).toThrow(RangeError);
    expect(() => new AdaptiveConcurrency({ max: 2, workers: 0, coldThresholdMs: 250 })).toThrow(/workers/);
    expect(() => new AdaptiveConcurrency({ max: 2, workers: 2, coldThresholdMs: -1 })).toThrow(/coldThresholdMs/);
  });

  it('pace() waits the current pause and returns early on abort', async () => {
    // On fake timers: what is held is the order of events, not how long a loaded machine took.
    vi.useFakeTimers();
    try {
      const { controller, feed } = setup({ max: 1, pauseInitialMs: 200 });
      // No pause yet: nothing to wait for, no timer set.
      await controller.pace();
      expect(vi.getTimerCount()).toBe(0);
      feed(20, (i) => (i < 3 ? { latencyMs: 50_000, status: 429, chunk: `x${i}` } : hit(50)(i)));
      expect(controller.pauseMs).toBe(200);
      let paced = false;
      const pacing = controller.pace().then(() => (paced = true));
      expect(vi.getTimerCount()).toBe(1);
      await vi.advanceTimersByTimeAsync(199);
      expect(paced).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await pacing;
      expect(paced).toBe(true);
      // An abort ends the pause at once: no time passes on the clock.
      const abort = new AbortController();
      let aborted = false;
      const held = controller.pace(abort.signal).then(() => (aborted = true));
      await vi.advanceTimersByTimeAsync(20);
      expect(aborted).toBe(false);
      abort.abort();
      await held;
      expect(aborted).toBe(true);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('percentile uses nearest rank', () => {
    expect(percentile([5], 0.9)).toBe(5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBe(9);
    expect(percentile([10, 1, 5], 0.5)).toBe(5);
  });
});

/** `warm --all` as configured from the options table's defaults plus `args`. */
const warmConfig = (args: string[]) =>
  loadConfig('warm', ['--all', ...args], { CVAT_URL: 'https://cvat.example', CVAT_ACCESS_TOKEN: 'secret-token-0123456789' });

describe('warming controller with the default options (issue 21)', () => {
  const B = 250; // emulated build time, ms
  function defaults() {
    const config = warmConfig([]);
    const clock = { t: 5_000_000, now: () => clock.t };
    const control = createWarmControl(config.warm, { clock });
    const limits: number[] = [];
    control.controller.onChange((s) => limits.push(s.limit));
    let seq = 0;
    /** One finished build of ours: `ms` long, `inFlight` of ours on the wire when it was sent (default: the limit). */
    const done = (ms: number, inFlight = control.controller.limit, status = 200) => {
      clock.t += ms;
      const request = {
        kind: 'chunk' as const,
        taskId: 1,
        jobId: 1,
        quality: 'compressed' as const,
        path: '/api/jobs/1/data',
        query: {},
        series: 'j1/compressed',
        slot: seq,
        tier: 0,
      };
      control.engineOptions.onSample({ latencyMs: ms, status, kind: 'chunk', chunk: `s#${seq++}`, inFlight, request, built: status === 200 });
    };
    return { config, clock, control, controller: control.controller, limits, done };
  }
  /** ±60 ms of jitter in a fixed pattern: what a loaded 2-core machine adds. */
  const jitter = (i: number) => [0, 60, 10, 35, 0, 55, 20, 5][i % 8]!;

  it('the defaults: ceiling = chunk workers = 2 (CVAT compose NUMPROCS 2, Helm 2 replicas), cold threshold from the table', () => {
    const { config, controller, control } = defaults();
    expect(config.warm).toMatchObject({ concurrency: 2, chunkWorkers: 2, coldThresholdMs: 250 });
    expect(control.engineOptions.concurrency).toBe(2);
    expect(controller.limit).toBe(2);
    // --concurrency lowers the ceiling; --chunk-workers raises the default ceiling with it.
    expect(warmConfig(['--concurrency', '1']).warm).toMatchObject({ concurrency: 1, chunkWorkers: 2 });
    expect(warmConfig(['--chunk-workers', '4']).warm).toMatchObject({ concurrency: 4, chunkWorkers: 4 });
  });

  it('idle: reaches the worker count and stays there through jitter', () => {
    const { controller, limits, done } = defaults();
    for (let i = 0; i < 2_000; i++) done(B + jitter(i));
    expect(controller.limit).toBe(2);
    expect(limits).toEqual([]);
    expect(controller.snapshot().holdUntil).toBeUndefined();
    // Started lower (a restart after contention, say), it climbs to 2 by healthy windows.
    const low = new AdaptiveConcurrency({ max: 2, workers: 2, coldThresholdMs: 250, initial: 1 });
    for (let i = 0; i < 40; i++) low.record({ latencyMs: B, status: 200, inFlight: 1 });
    expect(low.limit).toBe(2);
  });

  it('an annotator build queued ahead of ours: drops to one worker at once, holds, and comes back', () => {
    const { clock, controller, limits, done } = defaults();
    for (let i = 0; i < 20; i++) done(B + jitter(i));
    // Both workers ours; the annotator's cold chunk is queued: our next answer waits one more build.
    done(B + 180);
    done(B + 90);
    expect(controller.limit).toBe(1);
    expect(controller.reason).toMatch(/beyond the build time .*someone else's builds were queued ahead: limit 2→1, held 30\.0 s/);
    const holdUntil = controller.snapshot().holdUntil!;
    expect(holdUntil).toBe(clock.t + 30_000);
    // The request still on the wire was sent under the old limit (2 in flight): it is not judged again.
    done(B + 200, 2);
    expect(controller.limit).toBe(1);
    // While held, one of ours at a time is never delayed by one annotator; healthy windows do not raise the limit.
    while (clock.t < holdUntil - B) done(B + jitter(clock.t));
    expect(controller.limit).toBe(1);
    expect(controller.reason).toMatch(/holding 1 while others use the chunk workers/);
    done(B);
    done(B);
    expect(controller.limit).toBe(2);
    expect(limits).toEqual([1, 2]);
  });

  it('found again right after coming back: the hold doubles (to 10 min at most); after a quiet spell it is 30 s again', () => {
    const { clock, controller, done } = defaults();
    const collide = () => {
      for (let i = 0; i < 8; i++) done(B);
      done(B + 250);
    };
    const holds: number[] = [];
    for (let round = 0; round < 7; round++) {
      collide();
      expect(controller.limit).toBe(1);
      holds.push(controller.snapshot().holdUntil! - clock.t);
      clock.t = controller.snapshot().holdUntil!;
      done(B, 1); // the hold ends: back to 2
      expect(controller.limit).toBe(2);
    }
    expect(holds).toEqual([30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000]);
    for (let i = 0; i < 3_000; i++) done(B); // 12.5 min at both workers, nobody else
    collide();
    expect(controller.snapshot().holdUntil! - clock.t).toBe(30_000);
  });

  it('429s from two different chunks, foreign items in the chunks queue or job activity: yield at once', () => {
    for (const signal of ['429', 'queue', 'activity'] as const) {
      const { controller, done } = defaults();
      for (let i = 0; i < 8; i++) done(B);
      if (signal === '429') {
        done(50_000, 2, 429);
        expect(controller.limit).toBe(2); // one chunk 429ing is a slow build, not a crowd
        done(50_000, 2, 429);
      } else if (signal === 'queue') {
        controller.reportExternalQueue({ foreignItems: 0, source: 'rq' });
        expect(controller.limit).toBe(2);
        controller.reportExternalQueue({ foreignItems: 3, source: 'rq' });
      } else controller.reportActivity('job 7 changed');
      expect(controller.limit, signal).toBe(1);
      expect(controller.snapshot().holdUntil, signal).toBeDefined();
    }
  });

  it('annotators taking every worker: below one left free it halves only when it persists, and never paces', () => {
    const config = warmConfig(['--chunk-workers', '4']);
    const clock = { t: 0, now: () => clock.t };
    const { controller } = createWarmControl(config.warm, { clock });
    const build = (ms: number) => {
      clock.t += ms;
      controller.record({ latencyMs: ms, status: 200, inFlight: controller.limit });
    };
    for (let i = 0; i < 8; i++) build(B);
    build(B * 2);
    expect(controller.limit).toBe(3);
    build(B * 2); // right after: the same crowd, not yet a persisting one
    expect(controller.limit).toBe(3);
    for (let i = 0; i < 4; i++) build(B * 2);
    expect(controller.limit).toBe(1);
    for (let i = 0; i < 8; i++) build(B * 2);
    expect([controller.limit, controller.pauseMs]).toEqual([1, 0]);
  });

  it('10 ms builds with 40 ms spikes (the emulator under a full test run) are not contention', () => {
    // --cold-threshold 0ms, as test/run-process.test.ts runs it: every answer is a build.
    const clock = { t: 0, now: () => clock.t };
    const { controller } = createWarmControl(warmConfig(['--cold-threshold', '0ms']).warm, { clock });
    const limits: number[] = [];
    controller.onChange((s) => limits.push(s.limit));
    for (let i = 0; i < 2_000; i++) {
      const ms = i % 3 === 0 ? 50 : 10;
      clock.t += ms;
      controller.record({ latencyMs: ms, status: 200, inFlight: 2 });
    }
    expect(limits).toEqual([]);
    // …while a foreign 250 ms build queued ahead of ours is.
    controller.record({ latencyMs: 260, status: 200, inFlight: 2 });
    expect(controller.limit).toBe(1);
  });

  it('an admin ceiling of 1 is never exceeded', () => {
    const config = warmConfig(['--concurrency', '1']);
    const clock = { t: 0, now: () => clock.t };
    const { controller } = createWarmControl(config.warm, { clock });
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      clock.t += B;
      controller.record({ latencyMs: i % 50 === 0 ? B * 2 : B, status: 200, inFlight: 1 });
      seen.add(controller.limit);
    }
    expect([...seen]).toEqual([1]);
  });
});
