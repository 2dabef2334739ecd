/**
 * The warming controller: uses every CVAT chunk worker while no annotator waits, and
 * leaves one the moment one does (issue 21). Annotators share CVAT's FIFO `chunks` queue
 * with the warmer (cvat-facts §4.1, "chunks queue is FIFO with 2 workers"): a cold chunk an
 * annotator opens waits behind every build queued before it, ours included.
 *
 * Control law (numbers and what they were tuned on: adaptive-tuning.ts):
 * 1. Idle: limit = the ceiling (`--concurrency`, default `--chunk-workers`, 2 as CVAT's
 *    compose and Helm chart). With L ≤ K of ours in flight on K workers, each of our builds
 *    takes the build time B (the median of recent clean builds).
 * 2. Contention — someone else's work ahead of ours — is seen four ways, each acted on at
 *    once (not at the end of a window):
 *    · our own queueing above B: one foreign build inserted into the queue adds one whole
 *      build time to our next one or two answers, so the excess (latency − B·max(1, L/K)
 *      − 25 ms − 0.1 B) summed over our last 4 builds ≥ max(0.5 B, 50 ms) means contention;
 *    · 429 from 2 different chunks (each waited CVAT's 50 s);
 *    · `reportExternalQueue()`: items in the `chunks` queue the warmer did not ask for
 *      (deep mode's RQ reader);
 *    · `reportActivity()`: job activity seen through CVAT's API (or a webhook).
 * 3. On contention: limit → K − 1 (an annotator opening one chunk at a time then always
 *    finds a free worker), held 30 s; already there and still seen over 4 more builds, it
 *    halves (never below 1, and never a pause: that is the overload law's, below).
 * 4. After the hold, back to where it was. Contention found again within one hold of
 *    going back doubles the hold (≤ 10 min): an annotator who stays costs at most one chunk
 *    delayed by ≤ B per hold; capacity lost after they leave is at most one hold at K − 1.
 * Overload of CVAT itself (issue 4's loss + delay AIMD, per window of samples) is kept:
 * 429s from 3 chunks, half the requests failing with 502/503/504/network errors, or a
 * class's p90 (hits, builds, probes; builds normalised by max(1, L/K)) above 1.5× its
 * 30-minute windowed minimum + 50 ms halve the limit; a healthy window halves the pause,
 * then adds one, never above the ceiling and never during a hold.
 *
 * Deterministic: time comes from the injected clock, decisions only from samples and the
 * two report calls. Wiring: warm-control.ts (engine samples in, limit and pause out).
 */
import type { Metrics } from '../metrics.js';
import { ADAPTIVE_TUNING, type AdaptiveTuning } from './adaptive-tuning.js';

export interface WarmSample {
  /** Time from sending the request to the end of its response. */
  latencyMs: number;
  /** HTTP status, or 'network' for a connection error or timeout. */
  status: number | 'network';
  /**
   * Whether the server built the chunk for this request (cache miss). The client can only
   * guess; when omitted: latency ≥ `coldThresholdMs`.
   */
  cold?: boolean;
  /** Identity of the chunk (e.g. `${series}#${slot}`), to count *different* chunks answering 429. */
  chunk?: string;
  /** Our requests in flight when this one was sent, itself included (when unknown: the limit). */
  inFlight?: number;
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
  /** Why the last decision moved (or kept) the limit; for logs and /status. */
  reason: string;
  /** p90 / expected latency in the last window for the class that decided (1 = no slow-down). */
  latencyRatio: number | undefined;
  /** Until when (clock ms) the limit stays lowered after contention; undefined when not held. */
  holdUntil: number | undefined;
}

export interface AdaptiveOptions {
  /** The ceiling: `--concurrency` (default: the chunk-worker count). */
  max: number;
  /** CVAT's chunk workers (`--chunk-workers`): our own builds queue beyond this many. */
  workers: number;
  /** `--cold-threshold`: a sample without `cold` slower than this was a build. */
  coldThresholdMs: number;
  /** @default max */
  initial?: number;
  /** Overrides of the preset (tests, tuning); see adaptive-tuning.ts. */
  tuning?: Partial<AdaptiveTuning>;
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
  private readonly o: AdaptiveTuning & { max: number; workers: number; coldThresholdMs: number };
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
  /** Recent clean build latencies, normalised by our own queueing (their median is B). */
  private builds: number[] = [];
  /** Excess latency of our most recent judged builds (since the last contention). */
  private excess: number[] = [];
  /** Builds judged since contention last lowered the limit or paced: lowering further needs a full window of them. */
  private judgedSinceContention = Infinity;
  /** Chunks that answered 429 since the last contention. */
  private readonly recent429 = new Set<string>();
  /** Current hold length; doubles when contention comes back soon after a hold ended. */
  private holdMs: number;
  /** The limit to go back to when the hold ends. */
  private restoreTo: number;
  private lastHoldEndedAt: number | undefined;

  constructor(options: AdaptiveOptions) {
    const o = { ...ADAPTIVE_TUNING, ...options.tuning, max: options.max, workers: options.workers, coldThresholdMs: options.coldThresholdMs };
    for (const [name, value] of [
      ['max', o.max],
      ['workers', o.workers],
      ['min', o.min],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`Expected \`${name}\` to be an integer ≥ 1, got ${value}`);
    }
    if (!(o.coldThresholdMs >= 0)) throw new RangeError(`Expected \`coldThresholdMs\` ≥ 0, got ${o.coldThresholdMs}`);
    o.min = Math.min(o.min, o.max);
    this.o = o;
    this.clock = options.clock ?? { now: () => Date.now() };
    this.metrics = options.metrics;
    const initial = Math.min(o.max, Math.max(o.min, Math.round(options.initial ?? o.max)));
    this.state = { limit: initial, pauseMs: 0, reason: 'initial', latencyRatio: undefined, holdUntil: undefined };
    this.holdMs = o.holdInitialMs;
    this.restoreTo = o.max;
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
    this.maybeEndHold();
    const w = this.window;
    w.samples++;
    w.requests++;
    const { status } = sample;
    if (status === 429) {
      const chunk = sample.chunk ?? `#anonymous-${this.anonymous++}`;
      w.rejected++;
      w.rejectedChunks.add(chunk);
      this.recent429.add(chunk);
      if (this.recent429.size >= this.o.yield429Chunks) this.contend(`429 from ${this.recent429.size} different chunks`);
    } else if (status === 'network' || status === 502 || status === 503 || status === 504) {
      w.errors++;
    } else if (status >= 200 && status < 300) {
      w.successes++;
      const cold = sample.cold ?? sample.latencyMs >= this.o.coldThresholdMs;
      w.latencies[cold ? 'cold' : 'hit'].push(sample.latencyMs);
      if (cold) this.judgeBuild(sample.latencyMs, sample.inFlight ?? this.state.limit);
    }
    // 4xx and 500 say nothing about load (bad address, failing build).
    this.maybeEvaluate();
  }

  /** Feeds one probe: a request timed the way an annotator would feel it. */
  recordProbe(sample: ProbeSample): void {
    this.maybeEndHold();
    const w = this.window;
    w.samples++;
    w.probes++;
    if (sample.ok) w.latencies.probe.push(sample.latencyMs);
    else w.probeErrors++;
    this.maybeEvaluate();
  }

  /**
   * External queue depth: items in CVAT's `chunks` queue (queued or started) that the
   * warmer did not ask for, as read from RQ by deep mode. Any means someone waits.
   */
  reportExternalQueue(input: { foreignItems: number; source: string }): void {
    this.maybeEndHold();
    if (Number.isFinite(input.foreignItems) && input.foreignItems > 0)
      this.contend(`${input.foreignItems} item(s) of others in the chunks queue (${input.source})`);
  }

  /** Someone is annotating (job activity seen through CVAT's API, a webhook): leave them a worker. */
  reportActivity(source: string): void {
    this.maybeEndHold();
    this.contend(`annotator activity (${source})`);
  }

  /** Waits the current pacing pause (resolves at once when there is none, or on abort). */
  async pace(signal?: AbortSignal): Promise<void> {
    const ms = this.state.pauseMs;
    if (ms <= 0 || signal?.aborted) return;
    await pause(ms, signal);
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

  /** The build-time baseline B: the median of recent clean builds; undefined until there are enough. */
  private buildBaseline(): number | undefined {
    return this.builds.length >= this.o.minBuildSamples ? percentile(this.builds, 0.5) : undefined;
  }

  private pushBuild(normalised: number): void {
    this.builds.push(normalised);
    if (this.builds.length > this.o.buildHistory) this.builds.shift();
  }

  /** Rule 2, first signal: did someone else's build sit in the queue ahead of ours? */
  private judgeBuild(latencyMs: number, inFlight: number): void {
    // Sent under a higher limit, before the last decision: it says nothing about now.
    if (inFlight > this.state.limit) return;
    const self = Math.max(1, inFlight / this.o.workers);
    const base = this.buildBaseline();
    if (base === undefined) {
      this.pushBuild(latencyMs / self);
      return;
    }
    const slack = this.o.contentionSlackMs + this.o.contentionSlackShare * base;
    const excess = Math.max(0, latencyMs - base * self - slack);
    // A foreign build shorter than contentionMinMs delays nobody noticeably (and is lost in jitter).
    const threshold = Math.max(this.o.contentionMinMs, this.o.contentionShare * base);
    // With a worker left free to us a build is a clean measure of B (one annotator cannot
    // delay it); otherwise only builds close to B are, so annotators don't inflate it.
    if (inFlight < this.o.workers || excess < threshold / this.o.contentionWindow) this.pushBuild(latencyMs / self);
    this.excess.push(excess);
    this.judgedSinceContention++;
    if (this.excess.length > this.o.contentionWindow) this.excess.shift();
    const total = this.excess.reduce((a, b) => a + b, 0);
    if (total >= threshold)
      this.contend(
        `our last ${this.excess.length} builds waited ${fmtMs(total)} beyond the build time ${fmtMs(base)}: someone else's builds were queued ahead`,
      );
  }

  /** Rule 3: leave a worker (or more) to whoever else is queueing, and hold. */
  private contend(why: string): void {
    const now = this.clock.now();
    const o = this.o;
    const { limit, pauseMs } = this.state;
    // Lowering below K − 1 (or pacing) needs the contention to persist a whole window after the last step.
    const persisted = this.judgedSinceContention >= o.contentionWindow;
    this.excess = [];
    this.recent429.clear();
    const holding = this.state.holdUntil !== undefined;
    if (!holding) {
      // Back so soon after the last hold: the annotator is still there, wait longer this time.
      const soon = this.lastHoldEndedAt !== undefined && now - this.lastHoldEndedAt <= this.holdMs;
      this.holdMs = soon ? Math.min(o.holdMaxMs, this.holdMs * 2) : o.holdInitialMs;
      this.restoreTo = limit;
    }
    const yieldTo = Math.max(o.min, Math.min(o.max, o.workers) - 1);
    let next = limit;
    // Contention never paces: a pause is the overload law's answer (429 saturation, errors, slow
    // hits); a false alarm here (jitter on a busy machine) then costs at most half speed.
    const nextPause = pauseMs;
    if (limit > yieldTo) next = yieldTo;
    else if (persisted) next = Math.max(o.min, Math.min(limit - 1, Math.floor(limit * o.decreaseFactor)));
    const holdUntil = now + this.holdMs;
    const reason =
      `${why}: limit ${limit}→${next}` + (nextPause !== pauseMs ? `, pause ${fmtMs(pauseMs)}→${fmtMs(nextPause)}` : '') + `, held ${fmtMs(this.holdMs)}`;
    if (next !== limit || nextPause !== pauseMs) {
      this.metrics?.warmBackoffs.inc();
      this.judgedSinceContention = 0;
    }
    this.settling = next < limit || nextPause > pauseMs;
    this.window = this.freshWindow(now);
    this.apply({ limit: next, pauseMs: nextPause, reason, latencyRatio: this.state.latencyRatio, holdUntil });
  }

  /** Rule 4: the hold is over, go back to where we were (a pause is undone by healthy windows first). */
  private maybeEndHold(): void {
    const until = this.state.holdUntil;
    const now = this.clock.now();
    if (until === undefined || now < until) return;
    this.lastHoldEndedAt = now;
    const { limit, pauseMs } = this.state;
    const next = pauseMs === 0 ? Math.max(limit, Math.min(this.o.max, this.restoreTo)) : limit;
    this.settling = false;
    this.apply({
      ...this.state,
      limit: next,
      holdUntil: undefined,
      reason: next !== limit ? `no contention for ${fmtMs(this.holdMs)}: limit ${limit}→${next}` : `hold of ${fmtMs(this.holdMs)} over`,
    });
  }

  private apply(next: AdaptiveState): void {
    const changed = next.limit !== this.state.limit || next.pauseMs !== this.state.pauseMs;
    this.state = next;
    if (changed) {
      this.metrics?.warmPacingDelay.set(next.pauseMs / 1000);
      const snapshot = this.snapshot();
      for (const listener of this.listeners) listener(snapshot);
    }
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
    const held = this.state.holdUntil !== undefined;
    if (problems.length > 0) {
      next = Math.max(o.min, Math.min(limit - 1, Math.floor(limit * o.decreaseFactor)));
      if (saturated || limit <= o.min) nextPause = pauseMs > 0 ? Math.min(o.pauseMaxMs, pauseMs * 2) : o.pauseInitialMs;
      reason = `${problems.join('; ')}: limit ${limit}→${next}` + (nextPause !== pauseMs ? `, pause ${fmtMs(pauseMs)}→${fmtMs(nextPause)}` : '');
      if (next !== limit || nextPause !== pauseMs) this.metrics?.warmBackoffs.inc();
      if (held) this.restoreTo = Math.min(this.restoreTo, next);
    } else if (this.settling) {
      reason = 'settling after a back-off: holding';
    } else if (w.successes > 0 || w.latencies.probe.length > 0) {
      if (pauseMs > 0) {
        nextPause = pauseMs / 2 < o.pauseInitialMs ? 0 : Math.round(pauseMs / 2);
        reason = `healthy window: pause ${fmtMs(pauseMs)}→${fmtMs(nextPause)}`;
      } else if (held) {
        reason = `healthy window: holding ${limit} while others use the chunk workers`;
      } else if (limit < o.max) {
        next = limit + 1;
        reason = `healthy window: limit ${limit}→${next}`;
      } else reason = `healthy window: at the ceiling of ${o.max}`;
    } else {
      reason = 'no successful requests in the window: holding';
    }

    this.window = this.freshWindow(now);
    this.settling = problems.length > 0 && (next < limit || nextPause > pauseMs);
    if (ratio !== undefined) this.metrics?.warmLatencyRatio.set(ratio);
    this.apply({ limit: next, pauseMs: nextPause, reason, latencyRatio: ratio, holdUntil: this.state.holdUntil });
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

/**
 * Waits `ms` or until `signal` aborts, through the global timer (which a test's fake
 * timers drive; `timers/promises` is out of their reach). The timer and the listener go
 * the moment it ends.
 */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
