/**
 * The warm engine: pulls requests from the (streaming) plan, skips chunks the ledger
 * confirms fresh, and sends the rest through a p-limit pool with the per-status policy
 * of policy.ts. Every response body is consumed; every request carries the run's
 * AbortSignal; 401/403 stop the run. Results go to the ledger, metrics and callbacks.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { CvatClient } from '../cvat/client.js';
import { CHUNK_CACHE_TTL_MS, type CvatFeatures } from '../cvat/features.js';
import { WardenError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ChunkOutcome } from '../domain.js';
import type { Metrics } from '../metrics.js';
import type { WarmRequest } from '../plan/types.js';
import { Sleeper } from './sleeper.js';
import { DEFAULT_RETRY_POLICY, judge, type AttemptCounts, type RetryPolicy, type Verdict } from './policy.js';
import { readCapped } from '../cvat/limits.js';
import { CLOUD_ERROR_BODY_MAX_BYTES, classifyCloudError, describeCloudCause, mayBeCloudError, type CloudCause } from './cloud-errors.js';
import type { CloudBlock, CloudBlockSummary, CloudGate } from './cloud-gate.js';
import { RunTally, type ChunkFailure, type WarmProgress } from './run-tally.js';

export type { ChunkFailure, WarmProgress } from './run-tally.js';

/** The part of the ledger the engine needs. */
export interface WarmLedger {
  isFresh(series: string, slot: number, maxAgeMs: number, currentUpdatedDate?: string): boolean;
  get(series: string, slot: number): { confirmedAt: number; outcome: 'warm' | 'failed' | 'stuck' } | undefined;
  record(series: string, slot: number, entry: { confirmedAt: number; outcome: 'warm' | 'failed' | 'stuck'; checksum?: number }, updatedDate?: string): void;
  updatedDate(series: string): string | undefined;
  setUpdatedDate(series: string, date: string): void;
}

export interface Clock {
  now(): number;
}

export interface WarmEngineOptions {
  client: CvatClient;
  features: CvatFeatures;
  ledger: WarmLedger;
  metrics?: Metrics;
  logger: Logger;
  /** In-flight chunk requests. CVAT has 2 chunk workers by default and annotators share them. */
  concurrency: number;
  /** A chunk whose recorded build time is more recent than this is not requested again (TTL is 24 h). */
  maxAgeMs: number;
  retry?: Partial<RetryPolicy>;
  /** Overrides the client's chunk deadline (whole request, body included; the server itself answers 429 after 50 s). */
  chunkTimeoutMs?: number;
  /**
   * A response slower than this (or any 429 on the way) means the server built the chunk
   * for this request; faster ones were cache hits. Hits with Range take milliseconds,
   * builds take the chunk worker's time (about a second for 36 images).
   */
  coldThresholdMs: number;
  /** Age assumed for a chunk found already cached with no build time of ours on record (someone else built it). @default maxAgeMs */
  assumedAgeMs?: number;
  clock?: Clock;
  random?: () => number;
  /** Called after every HTTP attempt; feeds the adaptive concurrency controller. */
  onSample?: (sample: WarmSample) => void;
  /** Pause before each new attempt (ms), for yielding below one request in flight. */
  pacingMs?: () => number;
  /**
   * Whether `run` sets the chunk-state gauge from its own progress (the one-shot `warm`).
   * The service's scheduler keeps it over everything in scope instead. @default true
   */
  chunkStateGauge?: boolean;
  /**
   * A better reason for a chunk that failed with HTTP 500, when the caller can tell the
   * cause (the guard: CVAT's chunk worker cannot see the share). Never throws into the pass.
   */
  explainServerError?: (request: WarmRequest) => Promise<string | undefined>;
  /**
   * Tells CVAT's cloud-storage errors from its permission errors (cloud-errors.ts) and skips the
   * tasks of a bucket CVAT may no longer read (cloud-gate.ts). Absent: every 403 stops the run.
   */
  cloudGate?: CloudGate;
}

/** Fresh chunks skipped between two yields to the event loop (a restart skips a million). */
const SKIPS_PER_YIELD = 1_000;

export interface WarmSample {
  latencyMs: number;
  /** HTTP status, or undefined for a network error. */
  status: number | undefined;
  kind: WarmRequest['kind'];
  /** `series#slot`: lets the controller count *different* chunks answering 429. */
  chunk: string;
  /** This engine's chunk requests in flight when this one was sent, itself included. */
  inFlight: number;
  /** The request itself (the shallow-mode canary re-reads one the warden saw built). */
  request: WarmRequest;
  /** A successful answer the server had to build (slow, or after a 429): its build time is known. */
  built: boolean;
}

export interface WarmResult extends WarmProgress {
  failures: ChunkFailure[];
  /** Failures beyond the ones listed in `failures` (the list is capped). */
  moreFailures: number;
  aborted: boolean;
  durationMs: number;
  /** Cloud storages (or detached tasks) whose requests were skipped after CVAT named them unreadable. */
  cloudBlocked: CloudBlockSummary[];
}

/** One run's signals and tally, shared by the requests it sends. */
interface RunContext {
  /** Hard stop: in-flight requests are cancelled. */
  signal: AbortSignal;
  /** Hard stop or drain: no new attempt, no retry. */
  stopping: AbortSignal;
  sleeper: Sleeper;
  tally: RunTally;
  /** Ends the run at once (401/403): `fatal` says why. */
  stop: () => void;
  fatal: WardenError | undefined;
  /** Requests skipped behind a cloud block, for yielding now and then. */
  skips: number;
}

/** What one turn in the pool's slot ended with: a retry after a delay outside it, or the request's end. */
type SlotStep = { done: false; delayMs: number } | { done: true; skipped: CloudBlock } | { done: true; verdict: AttemptVerdict | undefined }; // undefined: aborted mid-request, record nothing

type AttemptVerdict = Verdict & { cloud?: CloudCause };

export class WarmEngine {
  private readonly options: WarmEngineOptions;
  private readonly policy: RetryPolicy;
  private readonly limit: LimitFunction;
  private readonly clock: Clock;
  /** HTTP requests on the wire now (not those sleeping in a back-off). */
  private sending = 0;

  constructor(options: WarmEngineOptions) {
    this.options = options;
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.limit = pLimit(Math.max(1, options.concurrency));
    this.clock = options.clock ?? { now: () => Date.now() };
    options.metrics?.warmConcurrency.set(this.limit.concurrency);
  }

  /** Lowers or raises the number of in-flight requests while a run is going on. */
  setConcurrency(concurrency: number): void {
    this.limit.concurrency = Math.max(1, Math.round(concurrency));
    this.options.metrics?.warmConcurrency.set(this.limit.concurrency);
  }

  get concurrency(): number {
    return this.limit.concurrency;
  }

  /**
   * Warms every request of `plan`. `total` is the plan's size (for progress and the
   * pending gauge). Resolves with a summary; rejects only on 401/403 (WardenError).
   */
  async run(
    plan: Iterable<WarmRequest>,
    total: number,
    options: {
      /** Hard stop: in-flight requests are cancelled. */
      signal?: AbortSignal;
      /** Soft stop: take no new request and start no retry, let in-flight requests finish. */
      drain?: AbortSignal;
      onProgress?: (p: WarmProgress) => void;
    } = {},
  ): Promise<WarmResult> {
    const started = this.clock.now();
    const internal = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, internal.signal]) : internal.signal;
    const stopping = options.drain ? AbortSignal.any([signal, options.drain]) : signal;
    const tally = new RunTally(total, this.options.logger, (p) => {
      this.updateStateGauge(p);
      options.onProgress?.(p);
    });
    const ctx: RunContext = { signal, stopping, sleeper: new Sleeper(stopping), tally, stop: () => internal.abort(), fatal: undefined, skips: 0 };
    await this.sendAll(plan, ctx);
    if (ctx.fatal) throw ctx.fatal;
    const aborted = (options.signal?.aborted ?? false) || (options.drain?.aborted ?? false);
    const { progress, failures, moreFailures } = tally;
    return { ...progress, failures, moreFailures, aborted, durationMs: this.clock.now() - started, cloudBlocked: this.options.cloudGate?.summary() ?? [] };
  }

  /** Streams the plan: fresh chunks are counted, the rest sent with a bounded look-ahead. */
  private async sendAll(plan: Iterable<WarmRequest>, ctx: RunContext): Promise<void> {
    const { tally, stopping } = ctx;
    const progress = tally.progress;
    const inFlight = new Set<Promise<void>>();
    // Bounded look-ahead: enough queued work to keep the pool busy while some requests
    // sleep in back-off, without materialising the plan.
    const window = Math.max(64, this.limit.concurrency * 8);
    for (const request of plan) {
      if (stopping.aborted) break;
      if (this.options.ledger.isFresh(request.series, request.slot, this.options.maxAgeMs)) {
        progress.fresh++;
        if (progress.fresh % SKIPS_PER_YIELD === 0) {
          tally.report();
          await yieldToLoop();
        }
        continue;
      }
      const task = this.processOne(request, ctx).finally(() => inFlight.delete(task));
      inFlight.add(task);
      progress.inFlight = inFlight.size;
      if (inFlight.size >= window) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    progress.inFlight = 0;
    tally.report();
  }

  /** One request to its end: turns in the pool, with back-off sleeps between them outside it. */
  private async processOne(request: WarmRequest, ctx: RunContext): Promise<void> {
    const counts: Required<AttemptCounts> = { retryAfter: 0, retryAfterWaitedMs: 0, unavailable: 0, serverError: 0, timeouts: 0 };
    for (;;) {
      const step = await this.limit(() => this.turnInSlot(request, counts, ctx));
      if (step.done) {
        await this.settle(request, step, counts, ctx);
        return;
      }
      await ctx.sleeper.sleep(step.delayMs);
      if (ctx.stopping.aborted) return;
    }
  }

  /** Attempts while holding a pool slot; a Retry-After wait that holds the slot stays here. */
  private async turnInSlot(request: WarmRequest, counts: Required<AttemptCounts>, ctx: RunContext): Promise<SlotStep> {
    const { stopping, sleeper } = ctx;
    for (;;) {
      if (stopping.aborted) return { done: true, verdict: undefined };
      const pause = this.options.pacingMs?.() ?? 0;
      if (pause > 0) await sleeper.sleep(pause);
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stopping may be aborted during the sleep above; TS narrowing does not see that
      if (stopping.aborted) return { done: true, verdict: undefined };
      const block = this.options.cloudGate?.blocked(request.taskId);
      if (block) return { done: true, skipped: block };
      const verdict = await this.attempt(request, counts, ctx.signal, ctx.tally.progress);
      if (!verdict) return { done: true, verdict: undefined }; // aborted mid-request: record nothing
      if (verdict.action === 'retry' && verdict.holdSlot) {
        counts.retryAfterWaitedMs += verdict.delayMs;
        await sleeper.sleep(verdict.delayMs);
        continue;
      }
      return verdict.action === 'retry' ? { done: false, delayMs: verdict.delayMs } : { done: true, verdict };
    }
  }

  /** Records a request's end in the ledger and the tally; a 401/403 stops the run. */
  private async settle(request: WarmRequest, step: Extract<SlotStep, { done: true }>, counts: Required<AttemptCounts>, ctx: RunContext): Promise<void> {
    const { ledger, metrics } = this.options;
    if ('skipped' in step) {
      // No request, but recorded failed like any give-up: the chunk comes due again after the
      // retry interval (a service pass must not find it due at once and spin on skips).
      ledger.record(request.series, request.slot, { confirmedAt: this.clock.now(), outcome: 'failed' });
      metrics?.cloudChunkFailures.inc({ cause: step.skipped.cause.kind, skipped: 'true' });
      ctx.tally.finish(request, 'failed', { reason: step.skipped.reason, cloud: step.skipped.cause, listed: false });
      // Skips resolve without I/O: let timers and sockets run now and then.
      if (++ctx.skips % SKIPS_PER_YIELD === 0) await yieldToLoop();
      return;
    }
    const verdict = step.verdict;
    if (!verdict) return; // aborted
    if (verdict.action === 'warm') ctx.tally.finish(request, 'warm');
    else if (verdict.action === 'give_up') {
      ledger.record(request.series, request.slot, { confirmedAt: this.clock.now(), outcome: verdict.state });
      const explained = counts.serverError > 0 ? await this.options.explainServerError?.(request).catch(() => undefined) : undefined;
      ctx.tally.finish(request, verdict.state, { reason: explained ? `${explained}; ${verdict.reason}` : verdict.reason, cloud: verdict.cloud });
    } else if (verdict.action === 'fatal') {
      ctx.fatal ??= fatalError(verdict.status, request);
      ctx.stop();
    }
  }

  /** One HTTP attempt; records a warm chunk in the ledger and returns the policy verdict. */
  private async attempt(request: WarmRequest, counts: Required<AttemptCounts>, signal: AbortSignal, progress: WarmProgress) {
    const { client, features, metrics } = this.options;
    const useRange = request.kind === 'chunk' && features.rangeRequests;
    const begun = performance.now();
    const inFlight = ++this.sending;
    let status: number | undefined;
    let headers: Record<string, string | string[] | undefined> = {};
    let cloud: CloudCause | undefined;
    try {
      const response = await client.raw(request.path, {
        query: request.query,
        headers: { ...request.headers, ...(useRange ? { range: 'bytes=0-0' } : {}) },
        signal,
        kind: 'chunk',
        ...(this.options.chunkTimeoutMs !== undefined ? { deadlineMs: this.options.chunkTimeoutMs } : {}),
      });
      status = response.status;
      headers = response.headers;
      if (this.options.cloudGate && mayBeCloudError(status)) {
        // An error answer is short; read it (bounded) to tell a cloud error from a denial.
        const tooLarge = new WardenError('CVAT_BAD_RESPONSE', 'error body too large');
        const body = await readCapped(response.body, CLOUD_ERROR_BODY_MAX_BYTES, () => tooLarge).catch((error: unknown) => {
          if (error === tooLarge) return undefined; // not one of CVAT's short messages
          throw error;
        });
        progress.bytes += body?.length ?? 0;
        cloud = body ? classifyCloudError(status, body.toString('utf8')) : undefined;
      } else {
        // Consume every body (within the deadline and byte cap): the server built the
        // whole chunk either way, and an unread body pins the connection.
        progress.bytes += await client.drain(response, signal);
      }
    } catch (error) {
      if (signal.aborted) return undefined;
      this.options.logger.debug({ err: describeError(error), path: request.path }, 'chunk request failed');
      if (error instanceof WardenError && error.code === 'CVAT_TIMEOUT') counts.timeouts++;
      status = undefined;
    } finally {
      this.sending--;
    }
    if (status === 429) counts.retryAfter++;
    else if (status === undefined || status === 502 || status === 503 || status === 504) counts.unavailable++;
    else if (status === 500) counts.serverError++;
    const verdict: AttemptVerdict = cloud
      ? { action: 'give_up', state: 'failed', outcome: 'client_error', reason: describeCloudCause(cloud, request), cloud }
      : judge(status, headers['retry-after'], counts, this.policy, this.options.random);
    if (cloud && verdict.action === 'give_up') {
      this.options.cloudGate?.note(request.taskId, cloud, verdict.reason);
      metrics?.cloudChunkFailures.inc({ cause: cloud.kind, skipped: 'false' });
      this.options.logger.warn(
        { taskId: request.taskId, jobId: request.jobId, cause: cloud.kind, bucket: cloud.resource, key: cloud.key },
        'cloud storage error',
      );
    }
    const outcome: ChunkOutcome = verdict.action === 'warm' ? 'warm' : verdict.action === 'fatal' ? 'auth_error' : verdict.outcome;
    const latencyMs = performance.now() - begun;
    metrics?.chunkRequests.inc({ quality: request.quality, outcome });
    metrics?.chunkRequestDuration.observe({ quality: request.quality }, latencyMs / 1000);
    const built = verdict.action === 'warm' && (counts.retryAfter > 0 || latencyMs >= this.options.coldThresholdMs);
    this.options.onSample?.({ latencyMs, status, kind: request.kind, chunk: `${request.series}#${request.slot}`, inFlight, request, built });
    if (verdict.action === 'warm') this.recordWarm(request, headers, built);
    return verdict;
  }

  /**
   * Records when a chunk was built, which is what decides when it expires: CVAT drops a
   * chunk 24 h after building it and reading it does not extend that. A hit on a chunk
   * we saw built keeps that time; a hit on one of unknown age is assumed `assumedAgeMs` old.
   */
  private recordWarm(request: WarmRequest, headers: Record<string, string | string[] | undefined>, built: boolean): void {
    const { ledger } = this.options;
    const now = this.clock.now();
    const updated = headerValue(headers['x-updated-date']);
    if (updated !== undefined && ledger.updatedDate(request.series) !== updated) {
      // The segment was rebuilt since we last looked: earlier confirmations are void.
      ledger.setUpdatedDate(request.series, updated);
    }
    const checksumText = headerValue(headers['x-checksum'])?.trim();
    const checksum = checksumText ? Number(checksumText) : NaN;
    const prior = ledger.get(request.series, request.slot);
    let builtAt: number;
    if (built) builtAt = now;
    else if (prior?.outcome === 'warm' && prior.confirmedAt + CHUNK_CACHE_TTL_MS > now && prior.confirmedAt <= now) builtAt = prior.confirmedAt;
    else builtAt = now - this.unknownAgeMs();
    ledger.record(request.series, request.slot, { confirmedAt: builtAt, outcome: 'warm', ...(Number.isFinite(checksum) ? { checksum } : {}) }, updated);
  }

  /**
   * Age recorded for a chunk found cached with no build time of ours (someone else built
   * it, or a kill -9 lost our record): it is looked at again `TTL − assumedAgeMs` later
   * (4 h by default) whatever this run's max age. Recording `assumedAgeMs` itself made a
   * `warm` whose max age equals it (both 20 h by default) find such chunks due at once,
   * so every later `warm` asked for them again.
   */
  private unknownAgeMs(): number {
    const assumed = this.options.assumedAgeMs ?? this.options.maxAgeMs;
    const recheckMs = Math.max(0, CHUNK_CACHE_TTL_MS - assumed);
    return Math.max(0, Math.min(assumed, this.options.maxAgeMs - recheckMs));
  }

  private updateStateGauge(progress: WarmProgress): void {
    const gauge = this.options.metrics?.chunks;
    if (!gauge || this.options.chunkStateGauge === false) return;
    gauge.set({ state: 'warm' }, progress.warm + progress.fresh);
    gauge.set({ state: 'failed' }, progress.failed);
    gauge.set({ state: 'stuck' }, progress.stuck);
    gauge.set({ state: 'pending' }, Math.max(0, progress.total - progress.warm - progress.fresh - progress.failed - progress.stuck));
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function fatalError(status: 401 | 403, request: WarmRequest): WardenError {
  return status === 401
    ? new WardenError('CVAT_AUTH_REFUSED', `CVAT answered 401 for ${request.path}: the credentials were refused mid-run (token expired or revoked?)`)
    : new WardenError(
        'CVAT_FORBIDDEN',
        `CVAT answered 403 for ${request.path} (task ${request.taskId}): the account may list the job but not read its data; warming needs an admin account or an organization owner/maintainer`,
      );
}
