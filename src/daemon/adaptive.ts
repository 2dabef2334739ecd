/**
 * Adaptive concurrency for the warmer: warming must yield to annotators, who share
 * CVAT's chunk workers and server slots with it (field notes D; cvat-facts "C").
 *
 * Model (loss + delay based AIMD, evaluated per window of samples):
 * - Every finished warm request is a sample: latency, status, and whether the server
 *   (probably) built the chunk for it ("cold"). Optional probe samples — a request an
 *   annotator would make, timed by the caller — measure what annotators feel directly.
 * - Baselines: for hits, cold builds and probes separately, a windowed minimum (over
 *   `baselineWindowMs`, in 10 buckets, BBR-style) of each window's p90. A cold build
 *   legitimately takes the build time, so builds are only compared with builds. Cold
 *   baselines are normalised by the queueing the warmer causes itself: with L requests
 *   in flight on W chunk workers, our own builds queue behind each other by
 *   max(1, L/W), so that much slow-down is "explained by warming alone".
 * - Each window (every `windowSamples` samples, or `windowMs` with at least
 *   `minWindowSamples`) the controller declares overload when
 *     · 429s came from `overload429Chunks` or more *different* chunks (the chunk queue is
 *       saturated: every build waited > 50 s) — one chunk 429ing over and over is a slow
 *       or stuck build, not overload;
 *     · 502/503/504/network errors reach `errorRate` of the window's requests (or of probes);
 *     · a class's p90 exceeds (1 + tolerance) × its expected latency + slackMs.
 *   Overload: limit × decreaseFactor (min `min`). Once at the minimum, or on 429
 *   saturation, a pacing pause before each request grows (pauseInitialMs, doubling,
 *   ≤ pauseMaxMs), because one in-flight request can still be too much.
 *   Healthy window with successful requests: the pause halves first (to 0 below
 *   pauseInitialMs), then the limit grows by 1 up to `max`.
 *
 * Deterministic: time comes from the injected clock, decisions only from samples.
 * Wiring: `controller.onChange((s) => engine.setConcurrency(s.limit))`, feed
 * `record()` from the engine's per-attempt results, and `await controller.pace(signal)`
 * before each request.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Metrics } from '../metrics.js';

export interface WarmSample {
  /** Time from sending the request to the end of its response. */
  latencyMs: number;
  /** HTTP status, or 'network' for a connection error or timeout. */
  status: number | 'network';
  /**
   * Whether the server built the chunk for this request (cache miss). The client can only
   * guess; when omitted: 429, or latency ≥ `coldThresholdMs`.
   */
  cold?: boolean;
  /** Identity of the chunk (e.g. `${series}#${slot}`), to count *different* chunks answering 429. */
  chunk?: string;
}

export interface ProbeSample {
  latencyMs: number;
  /** False for an error answer or a timeout. */
  ok: boolean;
}

export interface AdaptiveState {
  /** Requests allowed in flight. */
  limit: number;
  /** Pause before each request, in ms (0 = none). */
  pauseMs: number;
  /** Why the last window moved (or kept) the limit; for logs and /status. */
  reason: string;
  /** p90 / expected latency in the last window for the class that decided (1 = no slow-down). */
  latencyRatio: number | undefined;
}

export interface AdaptiveOptions {
  /** Upper bound: the configured concurrency. */
  max: number;
  /** @default 1 */
  min?: number;
  /** @default max */
  initial?: number;
  /** CVAT chunk workers (`cvat_worker_chunks` processes); our own builds queue beyond this. @default 2 */
  workers?: number;
  /** @default 20 */
  windowSamples?: number;
  /** @default 30000 */
  windowMs?: number;
  /** Samples needed to close a window on time alone. @default 4 */
  minWindowSamples?: number;
  /** Samples of a class (hit, cold, probe) needed to judge its p90. @default 3 */
  minClassSamples?: number;
  /** Allowed slow-down over the expected latency before backing off: 0.5 = 1.5×. @default 0.5 */
  tolerance?: number;
  /** Absolute latency slack, so tiny baselines (a 20 ms hit) don't trip on jitter. @default 50 */
  slackMs?: number;
  /** How long a baseline minimum is remembered. @default 1800000 (30 min) */
  baselineWindowMs?: number;
  /** Different chunks answering 429 in one window that mean "saturated". @default 3 */
  overload429Chunks?: number;
  /** Share of 502/503/504/network answers in a window that means overload. @default 0.5 */
  errorRate?: number;
  /** @default 0.5 */
  decreaseFactor?: number;
  /** @default 1000 */
  pauseInitialMs?: number;
  /** @default 60000 */
  pauseMaxMs?: number;
  /** Used when a sample has no `cold`. @default 1000 */
  coldThresholdMs?: number;
  clock?: { now(): number };
  metrics?: Pick<Metrics, 'warmBackoffs' | 'warmPacingDelay' | 'warmLatencyRatio'>;
}

type LatencyClass = 'hit' | 'cold' | 'probe';
const CLASSES: readonly LatencyClass[] = ['probe', 'hit', 'cold'];
const BASELINE_BUCKETS = 10;

interface Window {
  startedAt: number;
  samples: number;
  requests: number;
  errors: number;
  successes: number;
  probes: number;
  probeErrors: number;
  rejected: number;
  rejectedChunks: Set<string>;
  latencies: Record<LatencyClass, number[]>;
}

export class AdaptiveConcurrency {
  private readonly o: Required<Omit<AdaptiveOptions, 'clock' | 'metrics' | 'initial'>>;
  private readonly clock: { now(): number };
  private readonly metrics: AdaptiveOptions['metrics'];
  private readonly listeners = new Set<(state: AdaptiveState) => void>();
  /** Per class: [bucket start, minimum normalised p90] for the last BASELINE_BUCKETS buckets. */
  private readonly baselines: Record<LatencyClass, Array<{ bucket: number; value: number }>> = { hit: [], cold: [], probe: [] };
  private window: Window;
  private state: AdaptiveState;
  private anonymous = 0;
  /** The window after a decrease still holds requests started under the old limit. */
  private settling = false;

  constructor(options: AdaptiveOptions) {
    const max = options.max;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`Expected \`max\` to be an integer ≥ 1, got ${max}`);
    const min = Math.min(options.min ?? 1, max);
    if (!Number.isSafeInteger(min) || min < 1) throw new RangeError(`Expected \`min\` to be an integer ≥ 1, got ${min}`);
    this.o = {
      max,
      min,
      workers: options.workers ?? 2,
      windowSamples: options.windowSamples ?? 20,
      windowMs: options.windowMs ?? 30_000,
      minWindowSamples: options.minWindowSamples ?? 4,
      minClassSamples: options.minClassSamples ?? 3,
      tolerance: options.tolerance ?? 0.5,
      slackMs: options.slackMs ?? 50,
      baselineWindowMs: options.baselineWindowMs ?? 1_800_000,
      overload429Chunks: options.overload429Chunks ?? 3,
      errorRate: options.errorRate ?? 0.5,
      decreaseFactor: options.decreaseFactor ?? 0.5,
      pauseInitialMs: options.pauseInitialMs ?? 1_000,
      pauseMaxMs: options.pauseMaxMs ?? 60_000,
      coldThresholdMs: options.coldThresholdMs ?? 1_000,
    };
    this.clock = options.clock ?? { now: () => Date.now() };
    this.metrics = options.metrics;
    const initial = Math.min(max, Math.max(min, Math.round(options.initial ?? max)));
    this.state = { limit: initial, pauseMs: 0, reason: 'initial', latencyRatio: undefined };
    this.window = this.freshWindow(this.clock.now());
    this.metrics?.warmPacingDelay.set(0);
  }

  get limit(): number {
    return this.state.limit;
  }

  get pauseMs(): number {
    return this.state.pauseMs;
  }

  get reason(): string {
    return this.state.reason;
  }

  /** A copy of the current state (for /status). */
  snapshot(): AdaptiveState {
    return { ...this.state };
  }

  /** Calls `listener` whenever the limit or the pause changes. Returns an unsubscribe function. */
  onChange(listener: (state: AdaptiveState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Feeds one finished warm request (one HTTP attempt, retries included as separate samples). */
  record(sample: WarmSample): void {
    const w = this.window;
    w.samples++;
    w.requests++;
    const { status } = sample;
    if (status === 429) {
      w.rejected++;
      w.rejectedChunks.add(sample.chunk ?? `#anonymous-${this.anonymous++}`);
    } else if (status === 'network' || status === 502 || status === 503 || status === 504) {
      w.errors++;
    } else if (status >= 200 && status < 300) {
      w.successes++;
      const cold = sample.cold ?? sample.latencyMs >= this.o.coldThresholdMs;
      w.latencies[cold ? 'cold' : 'hit'].push(sample.latencyMs);
    }
    // 4xx and 500 say nothing about load (bad address, failing build).
    this.maybeEvaluate();
  }

  /** Feeds one probe: a request timed the way an annotator would feel it. */
  recordProbe(sample: ProbeSample): void {
    const w = this.window;
    w.samples++;
    w.probes++;
    if (sample.ok) w.latencies.probe.push(sample.latencyMs);
    else w.probeErrors++;
    this.maybeEvaluate();
  }

  /** Waits the current pacing pause (resolves at once when there is none, or on abort). */
  async pace(signal?: AbortSignal): Promise<void> {
    const ms = this.state.pauseMs;
    if (ms <= 0 || signal?.aborted) return;
    await sleep(ms, undefined, signal ? { signal } : undefined).catch(() => undefined);
  }

  private freshWindow(now: number): Window {
    return {
      startedAt: now,
      samples: 0,
      requests: 0,
      errors: 0,
      successes: 0,
      probes: 0,
      probeErrors: 0,
      rejected: 0,
      rejectedChunks: new Set(),
      latencies: { hit: [], cold: [], probe: [] },
    };
  }

  private maybeEvaluate(): void {
    const now = this.clock.now();
    const w = this.window;
    const full = w.samples >= this.o.windowSamples;
    const timely = now - w.startedAt >= this.o.windowMs && w.samples >= this.o.minWindowSamples;
    if (full || timely) this.evaluate(now);
  }

  /** Queueing our own concurrency explains for a class at `limit`. */
  private selfFactor(cls: LatencyClass, limit: number): number {
    return cls === 'cold' ? Math.max(1, limit / this.o.workers) : 1;
  }

  private updateBaseline(cls: LatencyClass, now: number, value: number): number {
    const bucketMs = this.o.baselineWindowMs / BASELINE_BUCKETS;
    const bucket = Math.floor(now / bucketMs) * bucketMs;
    const list = this.baselines[cls];
    const last = list[list.length - 1];
    if (last && last.bucket === bucket) last.value = Math.min(last.value, value);
    else list.push({ bucket, value });
    while (list.length > 0 && (list[0]?.bucket ?? Infinity) <= now - this.o.baselineWindowMs) list.shift();
    return Math.min(...list.map((b) => b.value));
  }

  private evaluate(now: number): void {
    const w = this.window;
    const { limit, pauseMs } = this.state;
    const o = this.o;
    const problems: string[] = [];
    let saturated = false;
    let ratio: number | undefined;

    if (w.rejectedChunks.size >= o.overload429Chunks) {
      saturated = true;
      problems.push(`429 from ${w.rejectedChunks.size} different chunks (chunk queue saturated)`);
    }
    if (w.requests >= 2 && w.errors / w.requests >= o.errorRate) {
      problems.push(`${w.errors} of ${w.requests} requests failed with 502/503/504 or network errors`);
    }
    if (w.probes >= 2 && w.probeErrors / w.probes >= o.errorRate) {
      problems.push(`${w.probeErrors} of ${w.probes} probes failed`);
    }
    for (const cls of CLASSES) {
      const values = w.latencies[cls];
      // Right after a decrease, latencies still reflect the old limit: don't judge them twice.
      if (values.length < o.minClassSamples || this.settling) continue;
      const p90 = percentile(values, 0.9);
      // The limit is constant within a window: it only changes here.
      const baseline = this.updateBaseline(cls, now, p90 / this.selfFactor(cls, limit));
      const expected = baseline * this.selfFactor(cls, limit);
      const classRatio = expected > 0 ? p90 / expected : 1;
      ratio ??= classRatio; // probe first, then hits, then builds
      if (p90 > expected * (1 + o.tolerance) + o.slackMs) {
        ratio = classRatio;
        problems.push(
          `${cls === 'cold' ? 'build' : cls} p90 ${fmtMs(p90)} is ${classRatio.toFixed(1)}× the expected ${fmtMs(expected)}` +
            (cls === 'cold' && expected !== baseline ? ` (baseline ${fmtMs(baseline)} × ${limit}/${o.workers} workers)` : ''),
        );
      }
    }

    let next = limit;
    let nextPause = pauseMs;
    let reason: string;
    if (problems.length > 0) {
      next = Math.max(o.min, Math.min(limit - 1, Math.floor(limit * o.decreaseFactor)));
      if (saturated || limit <= o.min) nextPause = pauseMs > 0 ? Math.min(o.pauseMaxMs, pauseMs * 2) : o.pauseInitialMs;
      reason = `${problems.join('; ')}: limit ${limit}→${next}` + (nextPause !== pauseMs ? `, pause ${fmtMs(pauseMs)}→${fmtMs(nextPause)}` : '');
      if (next !== limit || nextPause !== pauseMs) this.metrics?.warmBackoffs.inc();
    } else if (this.settling) {
      reason = 'settling after a back-off: holding';
    } else if (w.successes > 0 || w.latencies.probe.length > 0) {
      if (pauseMs > 0) {
        nextPause = pauseMs / 2 < o.pauseInitialMs ? 0 : Math.round(pauseMs / 2);
        reason = `healthy window: pause ${fmtMs(pauseMs)}→${fmtMs(nextPause)}`;
      } else if (limit < o.max) {
        next = limit + 1;
        reason = `healthy window: limit ${limit}→${next}`;
      } else reason = `healthy window: at the configured maximum of ${o.max}`;
    } else {
      reason = 'no successful requests in the window: holding';
    }

    this.window = this.freshWindow(now);
    this.settling = problems.length > 0 && (next < limit || nextPause > pauseMs);
    const changed = next !== limit || nextPause !== pauseMs;
    this.state = { limit: next, pauseMs: nextPause, reason, latencyRatio: ratio };
    if (ratio !== undefined) this.metrics?.warmLatencyRatio.set(ratio);
    if (changed) {
      this.metrics?.warmPacingDelay.set(nextPause / 1000);
      const snapshot = this.snapshot();
      for (const listener of this.listeners) listener(snapshot);
    }
  }
}

/** Nearest-rank percentile (q in 0..1) of a non-empty list. */
export function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] ?? 0;
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}
