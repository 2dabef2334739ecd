/**
 * `cvat-warden run` as one object: HTTP first (so /healthz answers while CVAT is still
 * unreachable), then — once CVAT answers — discovery, the re-warm scheduler with
 * adaptive concurrency, and the share guard. `close()` stops intake, lets in-flight
 * chunk requests finish, flushes the ledger and closes everything, in that order.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandConfig } from '../config/index.js';
import { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import { WardenError, describeError } from '../errors.js';
import { ShareGuard, toGuardTask } from '../guard/index.js';
import type { Logger } from '../log.js';
import { recordCredentials, setCvatInfo, type Metrics } from '../metrics.js';
import type { InventoryIssue } from '../cvat/inventory.js';
import { toPlanTask } from '../plan/from-records.js';
import { CHUNK_CACHE_TTL_MS } from '../cvat/features.js';
import { WarmEngine, type Clock } from '../warm/engine.js';
import { syncChunkDates } from '../warm/freshness.js';
import { Ledger } from '../warm/ledger.js';
import type { RetryPolicy } from '../warm/policy.js';
import { AdaptiveConcurrency } from './adaptive.js';
import { Discovery } from './discovery.js';
import { startHttpServer, type HttpServerHandle, type ReadinessReport } from './http.js';
import { WarmScheduler } from './scheduler.js';
import { Protection } from './protection.js';
import type { WebhookEvent } from './webhook.js';

export interface ServiceOptions {
  config: CommandConfig;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
  /** Test and tuning knobs; defaults suit production. */
  retry?: Partial<RetryPolicy>;
  checkIntervalMs?: number;
  reconnectIntervalMs?: number;
  /** See WarmEngineOptions.coldThresholdMs. */
  coldThresholdMs?: number;
  discoveryFullEvery?: number;
  guard?: { fsTypeOverride?: string; rootCheckIntervalMs?: number; rootPollMs?: number; rootSettleMs?: number; debounceMs?: number; moveWindowMs?: number };
}

export class WardenService {
  private readonly options: ServiceOptions;
  private readonly config: CommandConfig;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly client: CvatClient;
  private readonly stopIntake = new AbortController();
  private readonly hardStop = new AbortController();
  private http: HttpServerHandle | undefined;
  private ledger: Ledger | undefined;
  private guard: ShareGuard | undefined;
  private features: CvatFeatures | undefined;
  private scheduler: WarmScheduler | undefined;
  private discovery: Discovery | undefined;
  private adaptive: AdaptiveConcurrency | undefined;
  /** Ids of tasks the guard holds; their file lists live only in the guard's compact index. */
  private readonly guarded = new Set<number>();
  private readonly issues = new Map<number, InventoryIssue>();
  private loops: Promise<void>[] = [];
  private firstDiscoveryDone = false;
  private wakeDiscovery: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private readonly startedAt = Date.now();
  /** When the last signed webhook delivery was accepted (doctor reads it from /status). */
  private lastWebhookAt: number | undefined;
  private protection: Protection | undefined;

  constructor(options: ServiceOptions) {
    this.options = options;
    this.config = options.config;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.client = new CvatClient({
      baseUrl: this.config.cvat.url,
      credentials: this.config.cvat.credentials,
      ...(this.config.cvat.organization !== undefined ? { organization: this.config.cvat.organization } : {}),
      limits: this.config.cvat.limits,
      maxPages: this.config.cvat.maxPages,
      logger: this.logger,
      onReachability: (up) => this.metrics.cvatUp.set(up ? 1 : 0),
      onCredentials: (state) => recordCredentials(this.metrics, state.accepted),
    });
  }

  get url(): string | undefined {
    return this.http?.url;
  }

  /** Opens the ledger and the HTTP endpoints, then connects to CVAT in the background. */
  async start(): Promise<void> {
    const clock = this.options.clock;
    // Flush often: a kill -9 loses at most this much of confirmed work (writes survive a killed process).
    this.ledger = await Ledger.open(this.config.stateDir, { logger: this.logger, flushIntervalMs: 10, ...(clock ? { clock } : {}) });
    this.protection = await Protection.start({ config: this.config, client: this.client, logger: this.logger, metrics: this.metrics });
    if (this.config.shareDir) {
      const lastWarmedAt = (jobId: number, chunk: number) => {
        const entry = this.ledger?.get(`j${jobId}/compressed`, chunk);
        return entry?.outcome === 'warm' ? entry.confirmedAt : undefined;
      };
      this.guard = new ShareGuard({
        shareDir: this.config.shareDir,
        stateDir: this.config.stateDir,
        metrics: this.metrics,
        logger: this.logger,
        scanIntervalMs: this.config.scanIntervalMs,
        lastWarmedAt,
        ...(clock ? { clock: () => clock.now() } : {}),
        ...this.options.guard,
        ...(this.protection ? { ignoredPrefixes: this.protection.ignoredPrefixes } : {}),
      });
      this.protection?.attachGuard(this.guard);
      // A file back in place: retry the chunks that failed while it was gone.
      this.guard.on('restored', (alert) => this.rewarmTasks(alert.tasks.map((t) => t.taskId)));
      this.guard.on('share_restored', () => this.rewarmTasks([...this.guarded]));
      await this.guard.start();
    }
    this.http = await startHttpServer({
      host: this.config.listen.host,
      port: this.config.listen.port,
      logger: this.logger,
      registry: this.metrics.registry,
      metrics: this.metrics,
      health: () => this.readiness(),
      status: () => this.status(),
      ...(this.config.webhookSecret ? { webhook: { secret: this.config.webhookSecret, onEvent: (event: WebhookEvent) => this.onWebhook(event) } } : {}),
    });
    this.logger.info({ url: this.http.url, cvat: this.client.baseUrl, share: this.config.shareDir ?? null }, 'cvat-warden service listening');
    this.loops.push(this.connectAndRun());
  }

  private async connectAndRun(): Promise<void> {
    const signal = this.stopIntake.signal;
    while (!signal.aborted && !this.features) {
      try {
        this.features = await this.client.features(signal);
        setCvatInfo(this.metrics, this.features.version.raw);
        this.logger.info({ version: this.features.version.raw }, 'connected to CVAT');
      } catch (error) {
        if (signal.aborted) return;
        const fatal = error instanceof WardenError && error.code === 'CVAT_UNSUPPORTED_VERSION';
        const refused = error instanceof WardenError && error.code === 'CVAT_AUTH_REFUSED';
        this.logger.error({ err: describeError(error) }, fatal ? 'CVAT version not supported' : refused ? 'CVAT refuses the credentials; retrying' : 'CVAT not reachable yet; retrying');
        await sleep(this.options.reconnectIntervalMs ?? 10_000, undefined, { signal }).catch(() => undefined);
      }
    }
    if (!this.features || signal.aborted) return;
    this.setUpWarming(this.features);
    this.loops.push(this.warmWhileCredentialsWork());
    await this.discoveryLoop();
  }

  private setUpWarming(features: CvatFeatures): void {
    const warm = this.config.warm;
    this.adaptive = new AdaptiveConcurrency({ max: warm.concurrency, metrics: this.metrics });
    const engine = new WarmEngine({
      client: this.client,
      features,
      ledger: this.ledger!,
      metrics: this.metrics,
      logger: this.logger,
      concurrency: warm.concurrency,
      // Due once the cached copy has expired; chunks of unknown build time count as max-age old.
      maxAgeMs: CHUNK_CACHE_TTL_MS,
      assumedAgeMs: warm.maxAgeMs,
      coldThresholdMs: this.options.coldThresholdMs ?? warm.coldThresholdMs,
      ...(this.options.retry ? { retry: this.options.retry } : {}),
      ...(this.options.clock ? { clock: this.options.clock } : {}),
      onSample: (s) => this.adaptive!.record({ latencyMs: s.latencyMs, status: s.status ?? 'network', chunk: s.chunk }),
      pacingMs: () => this.adaptive!.pauseMs,
    });
    this.adaptive.onChange((state) => {
      engine.setConcurrency(state.limit);
      this.logger.info({ limit: state.limit, pauseMs: state.pauseMs, reason: state.reason }, 'warm concurrency changed');
    });
    this.scheduler = new WarmScheduler({
      engine,
      ledger: this.ledger!,
      logger: this.logger,
      metrics: this.metrics,
      planOptions: { ...warm, indexChunks: features.indexChunks },
      ...(this.options.checkIntervalMs !== undefined ? { checkIntervalMs: this.options.checkIntervalMs } : {}),
      ...(this.options.clock ? { clock: this.options.clock } : {}),
    });
    const shareTasks = new Set(this.config.shareTasks);
    const onIssue = (issue: InventoryIssue) => {
      if (issue.taskId !== undefined) this.issues.set(issue.taskId, issue);
      if (issue.severity === 'problem') this.logger.warn({ taskId: issue.taskId, jobId: issue.jobId }, issue.message);
    };
    this.discovery = new Discovery({
      client: this.client,
      features,
      logger: this.logger,
      ...(this.options.discoveryFullEvery !== undefined ? { fullEvery: this.options.discoveryFullEvery } : {}),
      onIssue,
      onRecord: async (record, isNew) => {
        this.issues.delete(record.task.id);
        // A segment rebuilt by CVAT (honeypot change) voids its chunks: re-warm that task first.
        const moved = features.checksumHeaders ? await syncChunkDates(this.client, this.ledger!, record, warm.qualities, this.stopIntake.signal) : [];
        if (moved.length) this.logger.info({ taskId: record.task.id, jobs: moved }, 'chunks rebuilt by CVAT since the last pass: re-warming');
        const task = toPlanTask(record, { contextImages: warm.contextImages, onIssue });
        if (task) this.scheduler!.upsert(task, (isNew && this.firstDiscoveryDone) || moved.length > 0);
        // Hand each task to the guard as it comes: holding every task's frame list until
        // the pass ends would cost gigabytes on a million-file share.
        const guarded = this.guard ? toGuardTask(record, features, shareTasks) : undefined;
        if (guarded) {
          await this.guard!.upsertTasks([guarded]);
          this.guarded.add(record.task.id);
        }
        await this.protection?.onRecord(record, features);
      },
      onRemoved: async (taskId) => {
        this.scheduler!.remove(taskId);
        if (this.guarded.delete(taskId)) await this.guard?.removeTasks([taskId]);
        await this.protection?.onRemoved(taskId);
        this.issues.delete(taskId);
        this.logger.info({ taskId }, 'task deleted in CVAT: no longer warmed or guarded');
      },
    });
  }

  /**
   * The scheduler's loop, paused while CVAT refuses the credentials: every chunk would
   * answer 401. Discovery keeps polling, and its first accepted request resumes warming.
   */
  private async warmWhileCredentialsWork(): Promise<void> {
    const stop = this.stopIntake.signal;
    const scheduler = this.scheduler;
    if (!scheduler) return;
    while (!stop.aborted) {
      if (this.client.credentialsState.accepted === false) {
        this.logger.warn('warming paused: CVAT refuses the credentials; it resumes once they are accepted again');
        await this.untilCredentialsChange(stop);
        const now = this.client.credentialsState;
        if (now.accepted === true) this.logger.info('credentials accepted again: warming resumes');
        continue;
      }
      const refused = new AbortController();
      const unsubscribe = this.client.onCredentialsChange((state) => state.accepted === false && refused.abort());
      try {
        await scheduler.loop({ stop: AbortSignal.any([stop, refused.signal]), hard: this.hardStop.signal }, (error) => this.onLoopError('warm', error));
      } finally {
        unsubscribe();
      }
    }
  }

  private untilCredentialsChange(stop: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        unsubscribe();
        stop.removeEventListener('abort', done);
        resolve();
      };
      const unsubscribe = this.client.onCredentialsChange(done);
      stop.addEventListener('abort', done, { once: true });
    });
  }

  private async discoveryLoop(): Promise<void> {
    const signal = this.stopIntake.signal;
    while (!signal.aborted) {
      try {
        const pass = await this.discovery!.pass(signal);
        if (pass.refreshed + pass.removed > 0) this.scheduler!.wake();
        if (!this.firstDiscoveryDone) this.logger.info({ tasks: this.discovery!.taskCount, jobs: this.scheduler!.jobCount() }, 'first discovery done');
        this.firstDiscoveryDone = true;
        await this.protection?.onDiscoveryPass((id) => this.issues.has(id));
      } catch (error) {
        if (signal.aborted) return;
        this.onLoopError('discovery', error);
      }
      const wake = new Promise<void>((resolve) => (this.wakeDiscovery = resolve));
      await Promise.race([wake, sleep(this.config.pollIntervalMs, undefined, { signal }).catch(() => undefined)]);
      this.wakeDiscovery = undefined;
    }
  }

  private onLoopError(loop: string, error: unknown): void {
    const code = error instanceof WardenError ? error.code : undefined;
    this.logger.error({ loop, code, err: describeError(error) }, code === 'CVAT_UNREACHABLE' ? 'CVAT unreachable; will retry' : `${loop} pass failed; will retry`);
  }

  private onWebhook(event: WebhookEvent): void {
    this.lastWebhookAt = Date.now();
    if (!this.discovery || this.stopIntake.signal.aborted) return;
    if ('taskId' in event && typeof event.taskId === 'number') {
      this.logger.info({ event: event.event, kind: event.kind, taskId: event.taskId }, 'webhook');
      this.discovery.refresh(event.taskId);
      this.wakeDiscovery?.();
    }
  }

  /** Files back on the share: the chunks that failed while they were gone come first. */
  private rewarmTasks(taskIds: number[]): void {
    if (!this.scheduler || taskIds.length === 0) return;
    this.scheduler.prioritize(taskIds);
    this.logger.info({ tasks: taskIds.slice(0, 20), count: taskIds.length }, 'share files back: re-warming their chunks');
  }

  /** Waits for a warm pass that starts now (after discovery), e.g. after the clock moved. */
  async warmNow(): Promise<import('../warm/engine.js').WarmResult> {
    const deadline = Date.now() + 30_000;
    while (!this.scheduler || !this.firstDiscoveryDone) {
      if (Date.now() > deadline) throw new WardenError('CVAT_UNREACHABLE', 'service did not connect to CVAT in time');
      await sleep(20);
    }
    return this.scheduler.nextPass();
  }

  readiness(): ReadinessReport {
    const closing = this.stopIntake.signal.aborted;
    const cvatUp = this.features !== undefined && !closing;
    const share = this.guard?.status();
    const credentials = this.client.credentialsState;
    const checks: ReadinessReport['checks'] = {
      accepting: { ok: !closing, ...(closing ? { detail: 'shutting down' } : {}) },
      cvat: { ok: cvatUp, detail: this.features ? `CVAT ${this.features.version.raw}` : 'not connected yet' },
      discovery: { ok: this.firstDiscoveryDone, detail: this.firstDiscoveryDone ? `${this.discovery?.taskCount ?? 0} tasks` : 'first discovery pending' },
      credentials: { ok: credentials.accepted !== false, detail: credentials.detail },
    };
    if (share) checks['share'] = { ok: share.shareAvailable, detail: share.shareAvailable ? `${share.filesExpected} files guarded` : 'share unavailable' };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  status(): unknown {
    const result = this.scheduler?.lastResult;
    return {
      cvat: {
        url: this.client.baseUrl,
        version: this.features?.version.raw ?? null,
        connected: this.features !== undefined,
        credentials: { ...this.client.credentialsState, since: new Date(this.client.credentialsState.since).toISOString() },
      },
      discovery: { done: this.firstDiscoveryDone, tasks: this.discovery?.taskCount ?? 0, jobs: this.scheduler?.jobCount() ?? 0 },
      warm: {
        passes: this.scheduler?.passCount ?? 0,
        running: this.scheduler?.running ?? false,
        lastPassEndedAt: this.scheduler?.lastPassEndedAt ? new Date(this.scheduler.lastPassEndedAt).toISOString() : null,
        chunks: result ? { total: result.total, warm: result.warm + result.fresh, failed: result.failed, stuck: result.stuck } : null,
        failures: result?.failures.slice(0, 100) ?? [],
        concurrency: this.adaptive?.snapshot() ?? null,
        ledger: this.ledger?.stats() ?? null,
      },
      share: this.guard ? { ...this.guard.status(), openProblems: this.guard.problems().slice(0, 200) } : null,
      issues: [...this.issues.values()].slice(0, 100),
      webhooks: {
        enabled: Boolean(this.config.webhookSecret),
        startedAt: new Date(this.startedAt).toISOString(),
        lastAcceptedAt: this.lastWebhookAt ? new Date(this.lastWebhookAt).toISOString() : null,
      },
      protection: this.protection?.status() ?? null,
    };
  }

  /**
   * Graceful stop: no new work, in-flight chunk requests finish (or are cut at the
   * deadline), the ledger is flushed. Idempotent.
   */
  close(deadline?: AbortSignal): Promise<void> {
    this.closing ??= (async () => {
      this.stopIntake.abort();
      this.http?.stopAccepting();
      this.wakeDiscovery?.();
      this.scheduler?.drain();
      const abortHard = () => this.hardStop.abort();
      if (deadline?.aborted) abortHard();
      deadline?.addEventListener('abort', abortHard, { once: true });
      // The loops end once the running pass has drained, or the deadline cuts it.
      if (!this.hardStop.signal.aborted) {
        await Promise.race([Promise.allSettled(this.loops), new Promise((r) => this.hardStop.signal.addEventListener('abort', r, { once: true }))]);
      }
      this.hardStop.abort();
      await Promise.allSettled(this.loops);
      await this.protection?.close();
      await this.guard?.close();
      await this.ledger?.close();
      await this.http?.close();
      await this.client.close();
      this.logger.info('cvat-warden service stopped');
    })();
    return this.closing;
  }
}
