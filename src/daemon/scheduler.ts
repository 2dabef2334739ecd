/**
 * Keeps every job in scope warm, with work proportional to what changed. CVAT drops a
 * chunk 24 h after building it and a read does not extend that, so asking for a chunk
 * earlier only confirms the old copy; the ledger keeps each chunk's build time and a
 * chunk is requested again once that copy has expired, when the request rebuilds it.
 *
 * Per event:
 * - `upsert` only marks the task for evaluation (O(1));
 * - evaluation plans that one task's chunks and asks the ledger when each comes due,
 *   giving the task's due time (its earliest chunk) and its chunk counts; tasks wait in
 *   a heap by due time (DueQueue), so an expiry wakes exactly the task it belongs to and
 *   nothing scans the ledger;
 * - a pass plans only the tasks that are due (urgent ones first) and the engine
 *   requests only their chunks that are not fresh;
 * - long loops (evaluation, the engine's skipping of fresh chunks) yield to the event
 *   loop, so /healthz answers whatever the plan's size;
 * - the chunk-state gauge is kept from the per-task counts; expiring-soon and oldest-warm
 *   are computed from the ledger when Prometheus scrapes.
 * A restart therefore costs one evaluation of every task (one ledger lookup per chunk)
 * and requests nothing that is still fresh.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Gauge } from 'prom-client';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { planRequests } from '../plan/planner.js';
import type { PlanOptions, PlanTask, WarmRequest } from '../plan/types.js';
import { SCHEDULER_DEFAULTS } from '../config/presets.js';
import { CHUNK_CACHE_TTL_MS } from '../cvat/features.js';
import type { Clock, WarmEngine, WarmProgress, WarmResult } from '../warm/engine.js';
import { OUTCOME, type Ledger } from '../warm/ledger.js';
import { DueQueue } from './due-queue.js';
import { jobSeries, taskSeries } from '../series.js';

/** Ledger lookups between two yields to the event loop. */
const YIELD_EVERY = 2_000;

export interface SchedulerOptions {
  engine: WarmEngine;
  ledger: Ledger;
  logger: Logger;
  metrics: Metrics;
  planOptions: PlanOptions;
  /** A chunk is due again this long after it was built (default CVAT's TTL, CHUNK_CACHE_TTL_MS). */
  maxAgeMs?: number;
  /**
   * Longest sleep when nothing is due (the clock may jump), and how soon a failed or
   * stuck chunk is tried again (default SCHEDULER_DEFAULTS.checkIntervalMs).
   */
  checkIntervalMs?: number;
  clock?: Clock;
  /**
   * Why warming must add nothing to CVAT's cache now (deep mode's `--cache-budget`), or
   * undefined: while it says so, passes are skipped (chunks stay due, nothing is lost).
   */
  holdReason?: () => string | undefined;
}

export interface ChunkCounts {
  total: number;
  warm: number;
  failed: number;
  stuck: number;
}

interface TaskEntry {
  task: PlanTask;
  counts: ChunkCounts;
}

const zero = (): ChunkCounts => ({ total: 0, warm: 0, failed: 0, stuck: 0 });

function addCounts(into: ChunkCounts, from: ChunkCounts, sign: 1 | -1): void {
  into.total += sign * from.total;
  into.warm += sign * from.warm;
  into.failed += sign * from.failed;
  into.stuck += sign * from.stuck;
}

export class WarmScheduler {
  private readonly options: SchedulerOptions;
  private readonly clock: Clock;
  private readonly checkIntervalMs: number;
  private readonly maxAgeMs: number;
  private readonly tasks = new Map<number, TaskEntry>();
  /** Tasks whose due time and counts must be computed again (new, changed, or just warmed). */
  private readonly stale = new Set<number>();
  private readonly urgent = new Set<number>();
  private readonly due = new DueQueue();
  private readonly totals = zero();
  private jobs = 0;
  private wakeUp: (() => void) | undefined;
  private pendingWake = false;
  private currentDrain: AbortController | undefined;
  private passes = 0;
  private evaluations = 0;
  private passWaiters: Array<{ after: number; resolve: (r: WarmResult) => void }> = [];
  private lastHold: string | undefined;
  lastResult: WarmResult | undefined;
  lastPassEndedAt: number | undefined;
  running = false;

  constructor(options: SchedulerOptions) {
    this.options = options;
    this.clock = options.clock ?? Date;
    this.checkIntervalMs = options.checkIntervalMs ?? SCHEDULER_DEFAULTS.checkIntervalMs;
    this.maxAgeMs = options.maxAgeMs ?? CHUNK_CACHE_TTL_MS;
    this.computeAgesOnScrape();
  }

  get taskCount(): number {
    return this.tasks.size;
  }

  get passCount(): number {
    return this.passes;
  }

  /** Task evaluations so far (one per upsert or warmed task): the cost measure tests read. */
  get evaluationCount(): number {
    return this.evaluations;
  }

  jobCount(): number {
    return this.jobs;
  }

  /** Chunks in scope by state, as of the last evaluation of each task. */
  chunkCounts(): ChunkCounts {
    return { ...this.totals };
  }

  /** The tasks in scope as last upserted (deep mode and the canary read their plans). */
  tasksInScope(): PlanTask[] {
    return [...this.tasks.values()].map((e) => e.task);
  }

  get planOptions(): PlanOptions {
    return this.options.planOptions;
  }

  /** The ledger changed for these tasks behind the scheduler's back (deep mode, canary): evaluate them again. */
  reevaluate(taskIds: Iterable<number>): void {
    let any = false;
    for (const id of taskIds) {
      if (!this.tasks.has(id)) continue;
      this.stale.add(id);
      any = true;
    }
    if (any) this.wake();
  }

  /** Adds or replaces a task; jobs that disappeared are forgotten. `urgent` puts it first. */
  upsert(task: PlanTask, { urgent }: { urgent: boolean }): void {
    const previous = this.tasks.get(task.id);
    if (previous) {
      const now = new Set(task.jobs.map((j) => j.id));
      for (const job of previous.task.jobs) if (!now.has(job.id)) this.forgetJob(job.id);
      this.jobs -= previous.task.jobs.length;
      previous.task = task;
    } else {
      this.tasks.set(task.id, { task, counts: zero() });
    }
    this.jobs += task.jobs.length;
    this.stale.add(task.id);
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
    const entry = this.tasks.get(taskId);
    if (!entry) return;
    for (const job of entry.task.jobs) this.forgetJob(job.id);
    for (const name of taskSeries(taskId)) this.options.ledger.forgetSeries(name);
    addCounts(this.totals, entry.counts, -1);
    this.jobs -= entry.task.jobs.length;
    this.tasks.delete(taskId);
    this.urgent.delete(taskId);
    this.stale.delete(taskId);
    this.due.delete(taskId);
    this.publishStates();
  }

  private forgetJob(jobId: number): void {
    for (const name of jobSeries(jobId)) this.options.ledger.forgetSeries(name);
  }

  wake(): void {
    this.pendingWake = true;
    this.wakeUp?.();
  }

  /** Whether `wake()` was called since the loop last cleared it (set across awaits). */
  private wakeRequested(): boolean {
    return this.pendingWake;
  }

  /**
   * Computes the due time and counts of every stale task: one ledger lookup per planned
   * chunk of those tasks only, yielding to the event loop every few thousand.
   */
  private async evaluateStale(signal: AbortSignal): Promise<void> {
    const { ledger, planOptions } = this.options;
    const out = { code: 0 };
    let sinceYield = 0;
    while (this.stale.size > 0 && !signal.aborted) {
      const id = this.stale.values().next().value as number;
      this.stale.delete(id);
      const entry = this.tasks.get(id);
      if (!entry) continue;
      this.evaluations++;
      const counts = zero();
      let dueAt = Infinity;
      const task = entry.task;
      for (const request of planRequests([task], planOptions)) {
        const at = ledger.dueAt(request.series, request.slot, this.maxAgeMs, this.checkIntervalMs, out);
        counts.total++;
        const now = this.clock.now();
        if (out.code === OUTCOME.failed) counts.failed++;
        else if (out.code === OUTCOME.stuck) counts.stuck++;
        else if (out.code === OUTCOME.warm && at > now) counts.warm++;
        if (at < dueAt) dueAt = at;
        if (++sinceYield >= YIELD_EVERY) {
          sinceYield = 0;
          await yieldToLoop();
          // The task may have been replaced or removed meanwhile: evaluate it again later.
          if (this.tasks.get(id) !== entry || entry.task !== task) break;
        }
      }
      if (this.tasks.get(id) !== entry || entry.task !== task) continue;
      addCounts(this.totals, entry.counts, -1);
      entry.counts = counts;
      addCounts(this.totals, counts, 1);
      this.due.set(id, dueAt);
    }
    this.publishStates();
  }

  /** Urgent tasks, then every task whose earliest chunk is due now. */
  private takeDue(): { urgent: TaskEntry[]; rest: TaskEntry[] } {
    const urgent: TaskEntry[] = [];
    for (const id of this.urgent) {
      const entry = this.tasks.get(id);
      if (entry) urgent.push(entry);
      this.due.delete(id);
    }
    this.urgent.clear();
    const rest: TaskEntry[] = [];
    for (const id of this.due.popDue(this.clock.now())) {
      const entry = this.tasks.get(id);
      if (entry) rest.push(entry);
    }
    return { urgent, rest };
  }

  private *plan(urgent: PlanTask[], rest: PlanTask[]): Generator<WarmRequest> {
    if (urgent.length) yield* planRequests(urgent, this.options.planOptions);
    if (rest.length) yield* planRequests(rest, this.options.planOptions);
  }

  /** One pass over the given tasks; the engine skips their chunks that are still fresh. */
  private async runPass(batch: { urgent: TaskEntry[]; rest: TaskEntry[] }, signal: AbortSignal): Promise<WarmResult> {
    const entries = [...batch.urgent, ...batch.rest];
    const inPass = zero();
    for (const entry of entries) addCounts(inPass, entry.counts, 1);
    const others = { ...this.totals };
    addCounts(others, inPass, -1);
    const drain = new AbortController();
    this.currentDrain = drain;
    this.running = true;
    try {
      const result = await this.options.engine.run(
        this.plan(
          batch.urgent.map((e) => e.task),
          batch.rest.map((e) => e.task),
        ),
        inPass.total,
        { signal, drain: drain.signal, onProgress: (p) => this.publishStates(others, p) },
      );
      this.passes++;
      this.lastResult = result;
      const due = this.passWaiters.filter((w) => w.after < this.passes);
      this.passWaiters = this.passWaiters.filter((w) => w.after >= this.passes);
      for (const w of due) w.resolve(result);
      const now = this.clock.now();
      this.lastPassEndedAt = now;
      if (!result.aborted) this.options.metrics.lastWarmPassTimestamp.set(now / 1000);
      if (result.warm > 0 || result.failed + result.stuck > 0) {
        this.options.logger.info(
          {
            tasks: entries.length,
            warmed: result.warm,
            fresh: result.fresh,
            failed: result.failed,
            stuck: result.stuck,
            total: result.total,
            seconds: Math.round(result.durationMs / 1000),
          },
          result.aborted ? 'warm pass interrupted' : 'warm pass done',
        );
      }
      return result;
    } finally {
      this.running = false;
      this.currentDrain = undefined;
      // What the pass did (or did not get to) decides each task's next due time.
      for (const entry of entries) if (this.tasks.get(entry.task.id) === entry) this.stale.add(entry.task.id);
    }
  }

  /**
   * Evaluate, warm what is due, sleep until the next chunk comes due (at most the check
   * interval, since the clock may jump) or a wake-up, until `stop` aborts. `stop` also
   * drains the running pass (in-flight requests finish); `hard` cancels them.
   */
  async loop(signals: { stop: AbortSignal; hard: AbortSignal }, onError: (error: unknown) => void): Promise<void> {
    const { stop, hard } = signals;
    const onStop = () => this.drain();
    stop.addEventListener('abort', onStop, { once: true });
    try {
      while (!stop.aborted) {
        this.pendingWake = false;
        let failed = false;
        try {
          await this.evaluateStale(stop);
          if (isAborted(stop)) break;
          const hold = this.options.holdReason?.();
          if (hold !== undefined && hold !== this.lastHold) this.options.logger.warn({ reason: hold }, 'warming held: nothing is added to the cache');
          else if (hold === undefined && this.lastHold !== undefined) this.options.logger.info('warming resumes');
          this.lastHold = hold;
          // Held: no pass; the loop sleeps below until a wake-up or the check interval.
          const batch = hold === undefined ? this.takeDue() : { urgent: [], rest: [] };
          if (hold === undefined && (batch.urgent.length + batch.rest.length > 0 || this.passWaiters.length > 0)) {
            await this.runPass(batch, hard);
            continue; // evaluate what the pass warmed, then look again
          }
          // Nothing due: everything in scope is as warm as it can be right now.
          if (hold === undefined) this.options.metrics.lastWarmPassTimestamp.set(this.clock.now() / 1000);
        } catch (error) {
          failed = true;
          onError(error);
        }
        if (isAborted(stop)) break;
        if (!failed && (this.wakeRequested() || this.stale.size > 0)) continue;
        const next = this.due.peek();
        // Held, due chunks stay due: wait the check interval, not until their (past) due time.
        const waitMs =
          failed || this.lastHold !== undefined || next === undefined
            ? this.checkIntervalMs
            : Math.min(this.checkIntervalMs, Math.max(1, next - this.clock.now()));
        await this.sleepUntilWoken(waitMs, stop);
      }
    } finally {
      stop.removeEventListener('abort', onStop);
    }
  }

  /**
   * Sleeps `ms`, or until `wake()` or `stop`. The timer and the abort listener go the
   * moment it ends: a restart wakes the loop once per discovered task (10,000 at
   * 1,000,000 chunks), and a `timers/promises` sleep left pending in a race kept its
   * timer and its listener on `stop` each time, so adding the next listener walked all
   * of them — 0.46 s of a 200,000-chunk restart's CPU profile, growing with the square
   * of the task count.
   */
  private sleepUntilWoken(ms: number, stop: AbortSignal): Promise<void> {
    if (stop.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stop.removeEventListener('abort', done);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      stop.addEventListener('abort', done, { once: true });
      this.wakeUp = done;
    });
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

  /** The chunk-state gauge: per-task counts, plus the running pass's progress over its tasks. */
  private publishStates(others?: ChunkCounts, pass?: WarmProgress): void {
    const gauge = this.options.metrics.chunks;
    const warm = others && pass ? others.warm + pass.warm + pass.fresh : this.totals.warm;
    const failed = others && pass ? others.failed + pass.failed : this.totals.failed;
    const stuck = others && pass ? others.stuck + pass.stuck : this.totals.stuck;
    gauge.set({ state: 'warm' }, warm);
    gauge.set({ state: 'failed' }, failed);
    gauge.set({ state: 'stuck' }, stuck);
    gauge.set({ state: 'pending' }, Math.max(0, this.totals.total - warm - failed - stuck));
  }

  /** Expiring-soon and oldest-warm: one allocation-free pass over the ledger per scrape, none otherwise. */
  private computeAgesOnScrape(): void {
    const { ledger, metrics } = this.options;
    const summary = () => ledger.warmSummary(this.clock.now() + SCHEDULER_DEFAULTS.expiringSoonMs - CHUNK_CACHE_TTL_MS);
    onScrape(metrics.chunksExpiringSoon, (gauge) => gauge.set(summary().count));
    onScrape(metrics.oldestWarmChunkTimestamp, (gauge) => {
      const oldest = summary().oldest;
      gauge.set(oldest === undefined ? 0 : oldest / 1000);
    });
  }
}

/** Read through a call: the signal aborts across awaits, which flow analysis cannot see. */
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

/** prom-client calls a metric's `collect` right before it is exported. */
function onScrape(gauge: Gauge, fn: (gauge: Gauge) => void): void {
  (gauge as Gauge & { collect?: () => void }).collect = () => fn(gauge);
}
