/**
 * Keeps every job in scope warm: runs warm passes over the known tasks, new or changed
 * tasks first, and re-confirms each chunk before its ledger age passes max-age. Chunks
 * warmed in one burst would all come due together 20 h later, so each chunk's max-age
 * is shortened by a stable per-chunk offset (up to `spreadMs`), spreading re-warming.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { planRequests, summarizePlan } from '../plan/planner.js';
import type { PlanOptions, PlanTask, WarmRequest } from '../plan/types.js';
import type { Clock, WarmEngine, WarmResult } from '../warm/engine.js';
import type { Ledger } from '../warm/ledger.js';

/** CVAT_CHUNK_CACHE_TTL: every cached chunk disappears this long after it was built. */
export const CHUNK_TTL_MS = 24 * 3_600_000;
const EXPIRING_SOON_MS = 4 * 3_600_000;

export interface SchedulerOptions {
  engine: WarmEngine;
  ledger: Ledger;
  logger: Logger;
  metrics: Metrics;
  planOptions: PlanOptions;
  maxAgeMs: number;
  /** Width of the window over which re-confirmations are spread (default a quarter of max-age). */
  spreadMs?: number;
  /** How often to look for chunks that came due when nothing else wakes the loop. */
  checkIntervalMs?: number;
  clock?: Clock;
}

/** FNV-1a over series and slot: a stable offset per chunk, no state to keep. */
function chunkHash(series: string, slot: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < series.length; i++) h = Math.imul(h ^ series.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ slot, 0x01000193);
  return (h >>> 0) / 0x100000000;
}

export class WarmScheduler {
  private readonly options: SchedulerOptions;
  private readonly tasks = new Map<number, PlanTask>();
  private readonly urgent = new Set<number>();
  private wakeUp: (() => void) | undefined;
  private pendingWake = false;
  private currentDrain: AbortController | undefined;
  private passes = 0;
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

  /** Effective max-age of one chunk: max-age minus a stable share of the spread window. */
  maxAgeFor = (series: string, slot: number): number => {
    const spread = this.options.spreadMs ?? this.options.maxAgeMs / 4;
    return this.options.maxAgeMs - chunkHash(series, slot) * spread;
  };

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
        if (entry.confirmedAt + CHUNK_TTL_MS - now < EXPIRING_SOON_MS) expiring++;
      }
    }
    metrics.chunksExpiringSoon.set(expiring);
    metrics.oldestWarmChunkTimestamp.set(Number.isFinite(oldest) ? oldest / 1000 : 0);
  }
}
