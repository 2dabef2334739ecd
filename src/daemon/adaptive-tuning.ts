/**
 * The warming controller's tuning (src/daemon/adaptive.ts), in one place. What an admin
 * sets — the ceiling (`--concurrency`), CVAT's chunk workers (`--chunk-workers`) and the
 * cold threshold (`--cold-threshold`) — lives in the options table; these are the
 * controller's internal constants, with the numbers they were tuned on. Nothing else
 * restates them: the controller takes `{ ...ADAPTIVE_TUNING, ...overrides }`.
 */
export interface AdaptiveTuning {
  /** Lowest limit. */
  min: number;
  /** Samples that close an evaluation window. */
  windowSamples: number;
  /** …or this long, with at least `minWindowSamples`. */
  windowMs: number;
  minWindowSamples: number;
  /** Samples of a class (hit, cold, probe) needed to judge its p90. */
  minClassSamples: number;
  /** Allowed slow-down of a class's p90 over its expected latency before backing off: 0.5 = 1.5×. */
  tolerance: number;
  /** Absolute latency slack, so tiny baselines (a 20 ms hit) don't trip on jitter. */
  slackMs: number;
  /** How long a p90 baseline minimum is remembered. */
  baselineWindowMs: number;
  /** Different chunks answering 429 in one window that mean "saturated" (halve and pace). */
  overload429Chunks: number;
  /** Share of 502/503/504/network answers in a window that means overload. */
  errorRate: number;
  decreaseFactor: number;
  pauseInitialMs: number;
  pauseMaxMs: number;
  /** Clean builds remembered for the build-time baseline (their median). */
  buildHistory: number;
  /** Clean builds needed before a build is judged for contention. */
  minBuildSamples: number;
  /** Our most recent builds whose excess latency is summed. */
  contentionWindow: number;
  /** Contention when that sum reaches this share of the build baseline (one foreign build adds a whole one)… */
  contentionShare: number;
  /** …and at least this: shorter delays cost an annotator nothing noticeable and drown in jitter. */
  contentionMinMs: number;
  /** Excess below this per build (plus `contentionSlackShare` of B) is jitter, not someone else's build. */
  contentionSlackMs: number;
  contentionSlackShare: number;
  /** Different chunks answering 429 (each waited CVAT's 50 s) that mean someone else's builds are queued too. */
  yield429Chunks: number;
  /** How long the limit stays lowered after contention… */
  holdInitialMs: number;
  /** …doubling, up to this, when contention is found again soon after going back up. */
  holdMaxMs: number;
}

/**
 * Tuned on the emulator (bench/annotator.mjs, bench/warm.mjs): K = 2 chunk workers, 250 ms
 * builds, an annotator opening a cold chunk every second and a cached one in between, on
 * a 2-core machine shared with other work (answers jitter by up to ~60 ms there).
 * - B is the median of the last 16 clean builds; per build, 25 ms + 0.1 B of excess is
 *   slack (51 ms at B = 260 ms: the jitter seen there, and the ±10 % builds of one task).
 *   `contentionWindow` 4, `contentionShare` 0.5: one foreign build inserted into the FIFO
 *   `chunks` queue delays our next one or two answers by one build time in total, which
 *   is ≥ B − 2 × 51 ms = 148 ms of excess at B = 250 ms, over the 125 ms threshold; 60 ms
 *   of jitter on each of four answers is 4 × 9 ms. `contentionMinMs` 50: with 10 ms builds
 *   (the emulator in tests, on a machine running the whole suite) 40 ms spikes tripped it.
 * - `holdInitialMs` 30 s, doubling to 10 min: an annotator who stays costs at most one
 *   chunk delayed by up to one build per hold (1 in 30 … 1 in 600 of their cold reads
 *   at one a second); one who left costs at most one hold at K − 1 workers.
 * - The window rules (p90 vs a 30-minute windowed minimum, 1.5× + 50 ms, halving, a pause
 *   of 1 s doubling to 60 s at the minimum) are those of issue 4, unchanged: they catch an
 *   overloaded server (5xx, network errors, slow hits), not annotators.
 */
export const ADAPTIVE_TUNING: Readonly<AdaptiveTuning> = Object.freeze({
  min: 1,
  windowSamples: 20,
  windowMs: 30_000,
  minWindowSamples: 4,
  minClassSamples: 3,
  tolerance: 0.5,
  slackMs: 50,
  baselineWindowMs: 1_800_000,
  overload429Chunks: 3,
  errorRate: 0.5,
  decreaseFactor: 0.5,
  pauseInitialMs: 1_000,
  pauseMaxMs: 60_000,
  buildHistory: 16,
  minBuildSamples: 4,
  contentionWindow: 4,
  contentionShare: 0.5,
  contentionMinMs: 50,
  contentionSlackMs: 25,
  contentionSlackShare: 0.1,
  yield429Chunks: 2,
  holdInitialMs: 30_000,
  holdMaxMs: 600_000,
});
