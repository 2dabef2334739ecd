import { describe, expect, it } from 'vitest';
import { AdaptiveConcurrency, percentile, type AdaptiveOptions, type AdaptiveState, type WarmSample } from '../src/daemon/adaptive.js';
import { createMetrics } from '../src/metrics.js';

function setup(options: Omit<AdaptiveOptions, 'clock'>) {
  const clock = { t: 1_000_000, now: () => clock.t };
  const controller = new AdaptiveConcurrency({ ...options, clock });
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
    expect(controller.reason).toMatch(/configured maximum of 4/);
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
    expect(controller.reason).toMatch(/maximum/);
    feed(20, build(20_000)); // ×4: annotators (or someone) are queueing too
    expect(controller.limit).toBe(2);
    expect(controller.reason).toMatch(/build p90 22\.0 s is 2\.0× the expected 11\.0 s \(baseline 5\.5 s × 4\/2 workers\)/);
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
    expect(() => new AdaptiveConcurrency({ max: 0 })).toThrow(RangeError);
    expect(() => new AdaptiveConcurrency({ max: 2.5 })).toThrow(RangeError);
  });

  it('pace() waits the current pause and returns early on abort', async () => {
    const { controller, feed } = setup({ max: 1, pauseInitialMs: 200 });
    let t = performance.now();
    await controller.pace();
    expect(performance.now() - t).toBeLessThan(50);
    feed(20, (i) => (i < 3 ? { latencyMs: 50_000, status: 429, chunk: `x${i}` } : hit(50)(i)));
    expect(controller.pauseMs).toBe(200);
    t = performance.now();
    await controller.pace();
    expect(performance.now() - t).toBeGreaterThanOrEqual(190);
    const abort = new AbortController();
    t = performance.now();
    setTimeout(() => abort.abort(), 20);
    await controller.pace(abort.signal);
    expect(performance.now() - t).toBeLessThan(150);
  });

  it('percentile uses nearest rank', () => {
    expect(percentile([5], 0.9)).toBe(5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBe(9);
    expect(percentile([10, 1, 5], 0.5)).toBe(5);
  });
});
