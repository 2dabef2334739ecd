/**
 * Keeps every job in scope warm: runs warm passes over the known tasks, new or changed
 * tasks first. CVAT drops a chunk 24 h after building it and a read does not extend
 * that, so asking for a chunk earlier only confirms the old copy; the ledger keeps each
 * chunk's build time and a chunk is requested again once that copy has expired, when
 * the request rebuilds it. Re-warming therefore follows the original build times: at
 * most one check interval (plus the build) of cold time per chunk and day, and a load
 * no burstier than the first warm pass.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { planRequests, summarizePlan } from '../plan/planner.js';
import type { PlanOptions, PlanTask, WarmRequest } from '../plan/types.js';
import { CHUNK_CACHE_TTL_MS } from '../cvat/features.js';
import type { Clock, WarmEngine, WarmResult } from '../warm/engine.js';
import type { Ledger } from '../warm/ledger.js';

const EXPIRING_SOON_MS = 4 * 3_600_000;

export interface SchedulerOptions {
  engine: WarmEngine;
  ledger: Ledger;
  logger: Logger;
  metrics: Metrics;
  planOptions: PlanOptions;
  /** How often to look for chunks that came due when nothing else wakes the loop. */
  checkIntervalMs?: number;
  clock?: Clock;
}

export class WarmScheduler {
  private readonly options: SchedulerOptions;
  private readonly tasks = new Map<number, PlanTask>();
  private readonly urgent = new Set<number>();
  private wakeUp: (() => void) | undefined;
  private pendingWake = false;
  private currentDrain: AbortController | undefined;
  private passes = 0;
  private passWaiters: Array<{ after: number; resolve: (r: WarmResult) => void }> = [];
  lastResult: WarmResult | undefined;
  lastPassEndedAt: number | undefined;
  running = false;

  constructor(options: SchedulerOptions) {
    this.options = options;
  }

  get taskCount(): number {
    return this.tasks.size;
  }

  get passCount(): number {
    return this.passes;
  }

  jobCount(): number {
    let n = 0;
    for (const task of this.tasks.values()) n += task.jobs.length;
    return n;
  }

  /** Adds or replaces a task; jobs that disappeared are forgotten. `urgent` puts it first. */
  upsert(task: PlanTask, urgent: boolean): void {
    const previous = this.tasks.get(task.id);
    if (previous) {
      const now = new Set(task.jobs.map((j) => j.id));
      for (const job of previous.jobs) if (!now.has(job.id)) this.forgetJob(job.id);
    }
    this.tasks.set(task.id, task);
    if (urgent) {
      this.urgent.add(task.id);
      // Cut the running pass short (in-flight requests finish) so new work goes first.
      this.currentDrain?.abort();
    }
    this.wake();
  }

  /** Puts these tasks first, cutting the running pass short (its in-flight requests finish). */
  prioritize(taskIds: readonly number[]): void {
    let any = false;
    for (const id of taskIds) {
      if (!this.tasks.has(id)) continue;
      this.urgent.add(id);
      any = true;
    }
    if (!any) return;
    this.currentDrain?.abort();
    this.wake();
  }

  remove(taskId: number): void {
    const task = this.tasks.get(taskId);
    if (!task) return;
    for (const job of task.jobs) this.forgetJob(job.id);
    for (const suffix of ['compressed', 'original', 'context', 'preview', 'dates']) this.options.ledger.forgetSeries(`t${taskId}/${suffix}`);
    this.tasks.delete(taskId);
    this.urgent.delete(taskId);
  }

  private forgetJob(jobId: number): void {
    for (const suffix of ['compressed', 'original', 'preview']) {
      this.options.ledger.forgetSeries(`j${jobId}/${suffix}`);
      this.options.ledger.forgetSeries(`g${jobId}/${suffix}`);
    }
  }

  wake(): void {
    this.pendingWake = true;
    this.wakeUp?.();
  }

  private *plan(urgent: PlanTask[], rest: PlanTask[]): Generator<WarmRequest> {
    yield* planRequests(urgent, this.options.planOptions);
    yield* planRequests(rest, this.options.planOptions);
  }

  /** One pass over every known task, urgent ones first. */
  async runPass(signal?: AbortSignal): Promise<WarmResult> {
    const urgent = [...this.urgent].map((id) => this.tasks.get(id)).filter((t): t is PlanTask => t !== undefined);
    this.urgent.clear();
    const urgentIds = new Set(urgent.map((t) => t.id));
    const rest = [...this.tasks.values()].filter((t) => !urgentIds.has(t.id));
    const total = summarizePlan(urgent, this.options.planOptions).requests + summarizePlan(rest, this.options.planOptions).requests;
    const drain = new AbortController();
    this.currentDrain = drain;
    this.running = true;
    try {
      const result = await this.options.engine.run(this.plan(urgent, rest), total, { ...(signal ? { signal } : {}), drain: drain.signal });
      this.passes++;
      this.lastResult = result;
      const due = this.passWaiters.filter((w) => w.after < this.passes);
      this.passWaiters = this.passWaiters.filter((w) => w.after >= this.passes);
      for (const w of due) w.resolve(result);
      const now = (this.options.clock ?? Date).now();
      this.lastPassEndedAt = now;
      if (!result.aborted) this.options.metrics.lastWarmPassTimestamp.set(now / 1000);
      this.updateAgeMetrics(now);
      if (result.warm > 0 || result.failed + result.stuck > 0) {
        this.options.logger.info({ warmed: result.warm, fresh: result.fresh, failed: result.failed, stuck: result.stuck, total: result.total, seconds: Math.round(result.durationMs / 1000) }, result.aborted ? 'warm pass interrupted' : 'warm pass done');
      }
      return result;
    } finally {
      this.running = false;
      this.currentDrain = undefined;
    }
  }

  /**
   * Passes until `stop` aborts: after each, wait for a wake-up or the check interval.
   * `stop` also drains the running pass (in-flight requests finish); `hard` cancels them.
   */
  async loop(signals: { stop: AbortSignal; hard: AbortSignal }, onError: (error: unknown) => void): Promise<void> {
    const { stop, hard } = signals;
    const onStop = () => this.drain();
    stop.addEventListener('abort', onStop, { once: true });
    try {
      while (!stop.aborted) {
        this.pendingWake = false;
        try {
          await this.runPass(hard);
        } catch (error) {
          onError(error);
        }
        if (stop.aborted) break;
        if (this.pendingWake) continue;
        const wait = new Promise<void>((resolve) => (this.wakeUp = resolve));
        await Promise.race([wait, sleep(this.options.checkIntervalMs ?? 60_000, undefined, { signal: stop }).catch(() => undefined)]);
        this.wakeUp = undefined;
      }
    } finally {
      stop.removeEventListener('abort', onStop);
    }
  }

  /** Resolves with the result of the next pass that starts after this call (and wakes the loop). */
  nextPass(): Promise<WarmResult> {
    const after = this.passes + (this.running ? 1 : 0);
    const promise = new Promise<WarmResult>((resolve) => this.passWaiters.push({ after, resolve }));
    this.wake();
    return promise;
  }

  /** Interrupts the running pass after its in-flight requests. */
  drain(): void {
    this.currentDrain?.abort();
  }

  /** Chunks close to expiry and the oldest confirmation, from the ledger (not on the scrape path). */
  private updateAgeMetrics(now: number): void {
    const { ledger, metrics } = this.options;
    let expiring = 0;
    let oldest = Infinity;
    for (const series of ledger.seriesNames()) {
      if (series.endsWith('/dates')) continue;
      for (const [, entry] of ledger.entries(series)) {
        if (entry.outcome !== 'warm') continue;
        if (entry.confirmedAt < oldest) oldest = entry.confirmedAt;
        if (entry.confirmedAt + CHUNK_CACHE_TTL_MS - now < EXPIRING_SOON_MS) expiring++;
      }
    }
    metrics.chunksExpiringSoon.set(expiring);
    metrics.oldestWarmChunkTimestamp.set(Number.isFinite(oldest) ? oldest / 1000 : 0);
  }
}
