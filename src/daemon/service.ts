/**
 * `cvat-warden run` as one object: HTTP first (so /healthz answers while CVAT is still
 * unreachable), then — once CVAT answers — the warming parts (discovery, the re-warm
 * scheduler with adaptive concurrency), built at once from what CVAT said, and the share
 * guard. Stopping is a list of ordered steps (`shutdownSteps`): the shutdown coordinator
 * of `run` registers them one by one; `close()` runs the same list.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandConfig } from '../config/index.js';
import { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import { type ConfigError, WardenError, describeError } from '../errors.js';
import { ShareGuard, toGuardTask } from '../guard/index.js';
import type { Logger } from '../log.js';
import { recordCredentials, setCvatInfo, type Metrics } from '../metrics.js';
import type { InventoryIssue } from '../cvat/inventory.js';
import { SERVICE_DEFAULTS } from '../config/presets.js';
import { CHUNK_CACHE_TTL_MS } from '../cvat/features.js';
import { WarmEngine, type Clock, type WarmResult } from '../warm/engine.js';
import { planRecord } from '../warm/freshness.js';
import { taskSegments } from '../plan/planner.js';
import type { WarmRequest } from '../plan/types.js';
import { Ledger } from '../warm/ledger.js';
import type { RetryPolicy } from '../warm/policy.js';
import type { AdaptiveConcurrency } from './adaptive.js';
import { createWarmControl } from './warm-control.js';
import { IntakeLog, PendingTasks, type IntakeSummary } from './coalesce.js';
import { Discovery } from './discovery.js';
import { CloudComponent } from './cloud-component.js';
import { ImpactPacer, type ImpactQuery, type ImpactReply } from './impact-route.js';
import { startHttpServer, type HttpServerHandle, type ReadinessReport } from './http.js';
import { WarmScheduler } from './scheduler.js';
import { Protection } from './protection.js';
import { CvatReachability } from './reachability.js';
import { statusDocument } from './status.js';
import type { WebhookEvent } from './webhook.js';
import { isJobChunks, series } from '../series.js';
import { DeepMode } from '../deep/deep-mode.js';
import { keySchemeFor } from '../deep/keys.js';
import { CacheCanary } from './canary.js';
import { CacheTruth } from './cache-truth.js';
import { Milestone } from './milestone.js';

export interface ServiceOptions {
  config: CommandConfig;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
  /** Test and tuning knobs; defaults suit production. */
  retry?: Partial<RetryPolicy>;
  checkIntervalMs?: number;
  /** Overrides --cloud-interval (tests: rounds milliseconds apart). */
  cloudIntervalMs?: number;
  reconnectIntervalMs?: number;
  /** See WarmEngineOptions.coldThresholdMs. */
  coldThresholdMs?: number;
  discoveryFullEvery?: number;
  guard?: { fsTypeOverride?: string; rootCheckIntervalMs?: number; rootPollMs?: number; rootSettleMs?: number; debounceMs?: number; moveWindowMs?: number };
  /** How long CVAT may stay unreachable before /readyz fails. @default the poll interval, at most 30 s */
  readinessGraceMs?: number;
  /** A configuration error found while running (the vault misplaced for a task): `run` stops with exit 2. */
  onFatal?: (error: ConfigError) => void;
}

/** One ordered step of stopping; `deadline` aborts when the graceful time is used up. */
export interface ServiceStep {
  name: string;
  run(deadline: AbortSignal): Promise<void>;
}

/** What exists once `start()` has returned. */
interface Started {
  ledger: Ledger;
  http: HttpServerHandle;
  guard: ShareGuard | undefined;
}

/** What exists once CVAT has answered: everything that depends on its version. */
interface Warming {
  features: CvatFeatures;
  adaptive: AdaptiveConcurrency;
  scheduler: WarmScheduler;
  discovery: Discovery;
}

/** Webhook activity is logged as a summary at most this often (the first after a quiet spell at once). */
const WEBHOOK_SUMMARY_EVERY_MS = 60_000;

function once(fn: (deadline: AbortSignal) => Promise<void>): (deadline: AbortSignal) => Promise<void> {
  let running: Promise<void> | undefined;
  return (deadline) => (running ??= fn(deadline));
}

export class WardenService implements AsyncDisposable {
  private readonly options: ServiceOptions;
  private readonly config: CommandConfig;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly client: CvatClient;
  private readonly stopIntake = new AbortController();
  private readonly hardStop = new AbortController();
  private started: Started | undefined;
  private warming: Warming | undefined;
  /** Ids of tasks the guard holds; their file lists live only in the guard's compact index. */
  private readonly guarded = new Set<number>();
  private readonly issues = new Map<number, InventoryIssue>();
  /** Live segments (owner job ids) per task, to put a task first when one of its segments comes alive (a job reopened). */
  private readonly liveSegments = new Map<number, Set<number>>();
  private readonly loops: Promise<void>[] = [];
  /** The first discovery pass ended (with a guard: the share's first scan has indexed every file). */
  private readonly firstDiscovery = new Milestone();
  private wakeDiscovery: (() => void) | undefined;
  private readonly steps: readonly ServiceStep[];
  private closing: Promise<void> | undefined;
  private readonly startedAt = Date.now();
  /** When the last signed webhook delivery was accepted (doctor reads it from /status). */
  private lastWebhookAt: number | undefined;
  private protection: Protection | undefined;
  /** Tasks named by webhooks, waiting for the next discovery pass (bounded: --webhook-max-pending). */
  private readonly pending: PendingTasks;
  private readonly intakeLog = new IntakeLog(WEBHOOK_SUMMARY_EVERY_MS);
  private readonly reachability: CvatReachability;
  /** Cloud-storage tasks: the warmer's gate and the listing guard (cloud-component.ts). */
  private readonly cloud: CloudComponent;
  /** What CVAT's cache really holds: deep mode's reads, or the shallow canary. */
  private cacheTruth: CacheTruth | undefined;
  private deep: DeepMode | undefined;

  constructor(options: ServiceOptions) {
    this.options = options;
    this.config = options.config;
    this.logger = options.logger;
    this.metrics = options.metrics;
    // A poll finds CVAT gone within one interval, the grace adds at most one more: /readyz fails within two.
    this.reachability = new CvatReachability({ graceMs: options.readinessGraceMs ?? Math.min(this.config.pollIntervalMs, 30_000) });
    this.client = new CvatClient({
      baseUrl: this.config.cvat.url,
      credentials: this.config.cvat.credentials,
      ...(this.config.cvat.organization !== undefined ? { organization: this.config.cvat.organization } : {}),
      limits: this.config.cvat.limits,
      maxPages: this.config.cvat.maxPages,
      logger: this.logger,
      onReachability: (up, error) => {
        this.metrics.cvatUp.set(up ? 1 : 0);
        this.reachability.record(up, error);
      },
      onCredentials: (state) => recordCredentials(this.metrics, state.accepted),
    });
    this.pending = new PendingTasks(this.config.options.values['webhook-max-pending']);
    this.cloud = new CloudComponent({
      client: this.client,
      logger: this.logger,
      metrics: this.metrics,
      stateDir: this.config.stateDir,
      intervalMs: options.cloudIntervalMs ?? this.config.options.values['cloud-interval'],
      listBudgetPerHour: this.config.options.values['cloud-list-budget'],
      onStorageBack: () => this.warming?.scheduler.wake(),
    });
    this.steps = this.buildSteps();
  }

  get url(): string | undefined {
    return this.started?.http.url;
  }

  /** Opens the ledger, the guard and the HTTP endpoints, then connects to CVAT in the background. */
  async start(): Promise<void> {
    const clock = this.options.clock;
    // Flush often: a kill -9 loses at most this much of confirmed work (writes survive a killed process).
    const ledger = await Ledger.open(this.config.stateDir, { logger: this.logger, flushIntervalMs: 10, ...(clock ? { clock } : {}) });
    for (const d of ledger.damage) this.metrics.stateRecordsDamaged.inc({ store: d.store }, d.recordsSkipped);
    let guard: ShareGuard | undefined;
    try {
      // The vault and backups start first: the guard must skip the vault's directory.
      this.protection = await Protection.start({
        config: this.config,
        client: this.client,
        logger: this.logger,
        metrics: this.metrics,
        ...(this.options.onFatal ? { onFatal: this.options.onFatal } : {}),
      });
      guard = this.config.shareDir ? await this.startGuard(this.config.shareDir, ledger) : undefined;
      await this.cloud.start(); // its persisted problems count before the first round
      const http = await startHttpServer({
        host: this.config.listen.host,
        port: this.config.listen.port,
        logger: this.logger,
        registry: this.metrics.registry,
        metrics: this.metrics,
        health: () => this.readiness(),
        status: () => this.status(),
        ...(this.config.webhookSecret ? { webhook: { secret: this.config.webhookSecret, onEvent: (event: WebhookEvent) => this.onWebhook(event) } } : {}),
        ...(guard ? { impact: this.impactRoute(guard) } : {}),
      });
      this.started = { ledger, http, guard };
    } catch (error) {
      await guard?.close();
      await this.protection?.close();
      await ledger.close();
      throw error;
    }
    this.logger.info({ url: this.started.http.url, cvat: this.client.baseUrl, share: this.config.shareDir ?? null }, 'cvat-warden service listening');
    this.loops.push(this.connectAndRun(this.started));
  }

  /** GET /impact, from the guard's index once the first discovery has put every task in it. */
  private impactRoute(guard: ShareGuard): (query: ImpactQuery) => ImpactReply {
    const pacer = new ImpactPacer();
    return (query) => {
      if (!this.firstDiscovery.reached) return { status: 503, body: { error: 'the first discovery has not finished: the share index is not complete yet' } };
      return pacer.run(() => {
        const answer = guard.queries.impact(query.paths, query.taskIds.length > 0 ? new Set(query.taskIds) : undefined);
        return { status: 200, body: { paths: query.paths, ...answer } };
      });
    };
  }

  private async startGuard(shareDir: string, ledger: Ledger): Promise<ShareGuard> {
    const clock = this.options.clock;
    const lastWarmedAt = (jobId: number, chunk: number) => {
      const entry = ledger.get(series.jobChunks(jobId, 'compressed'), chunk);
      return entry?.outcome === 'warm' ? entry.confirmedAt : undefined;
    };
    const guard = new ShareGuard({
      shareDir,
      stateDir: this.config.stateDir,
      metrics: this.metrics,
      logger: this.logger,
      // Not given: the guard picks its own default from the share's file system.
      ...(this.config.scanIntervalMs !== undefined ? { scanIntervalMs: this.config.scanIntervalMs } : {}),
      lastWarmedAt,
      scanBatchFiles: SERVICE_DEFAULTS.guardScanBatchFiles,
      ...(clock ? { clock: () => clock.now() } : {}),
      ...this.options.guard,
      ...(this.protection ? { ignoredPrefixes: this.protection.ignoredPrefixes } : {}),
    });
    this.protection?.attachGuard(guard);
    // A file back in place: retry the chunks that failed while it was gone.
    guard.on('restored', (alert) => this.rewarmTasks(alert.tasks.map((t) => t.taskId)));
    guard.on('share_restored', () => this.rewarmTasks([...this.guarded]));
    await guard.start();
    return guard;
  }

  private async connectAndRun(started: Started): Promise<void> {
    const signal = this.stopIntake.signal;
    let features: CvatFeatures | undefined;
    while (!signal.aborted && !features) {
      try {
        features = await this.client.features(signal);
        setCvatInfo(this.metrics, features.version.raw);
        this.logger.info({ version: features.version.raw }, 'connected to CVAT');
      } catch (error) {
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the signal may have been aborted during the await above; TS narrowing does not see that
        if (signal.aborted) return;
        const fatal = error instanceof WardenError && error.code === 'CVAT_UNSUPPORTED_VERSION';
        const refused = error instanceof WardenError && error.code === 'CVAT_AUTH_REFUSED';
        this.logger.error(
          { err: describeError(error) },
          fatal ? 'CVAT version not supported' : refused ? 'CVAT refuses the credentials; retrying' : 'CVAT not reachable yet; retrying',
        );
        await sleep(this.options.reconnectIntervalMs ?? SERVICE_DEFAULTS.reconnectIntervalMs, undefined, { signal }).catch(() => undefined);
      }
    }
    if (!features || signal.aborted) return;
    const warming = this.buildWarming(features, started);
    this.warming = warming;
    this.loops.push(this.warmWhileCredentialsWork(warming.scheduler));
    this.loops.push(this.cloud.loop(this.stopIntake.signal));
    await this.discoveryLoop(warming);
  }

  /**
   * The scheduler's loop, paused while CVAT refuses the credentials: every chunk would
   * answer 401. Discovery keeps polling, and its first accepted request resumes warming.
   */
  private async warmWhileCredentialsWork(scheduler: WarmScheduler): Promise<void> {
    const stop = this.stopIntake.signal;
    // With a guard, the first discovery is the share's first scan: every expected file is
    // stat-ed and indexed on the main thread. Warming waits for it instead of competing for
    // that thread (at 300,000 files, chunk requests were ~30 % of the CPU before ready).
    if (this.started?.guard) await this.firstDiscovery.until(stop);
    while (!stop.aborted) {
      if (this.client.credentialsState.accepted === false) {
        this.logger.warn('warming paused: CVAT refuses the credentials; it resumes once they are accepted again');
        await this.untilCredentialsChange(stop);
        const now = this.client.credentialsState;
        if (now.accepted === true) {
          this.logger.info('credentials accepted again: warming resumes');
          // One pass at once (it plans only what is due, so it is cheap when nothing is).
          void scheduler.nextPass();
        }
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

  /** Engine, adaptive concurrency, scheduler and discovery, built together once CVAT has said what it is. */
  private buildWarming(features: CvatFeatures, started: Started): Warming {
    const { ledger, guard } = started;
    const warm = this.config.warm;
    // One cold threshold for the engine (what counts as a build) and the controller (what it judges).
    const coldThresholdMs = this.options.coldThresholdMs ?? warm.coldThresholdMs;
    const control = createWarmControl({ ...warm, coldThresholdMs }, { metrics: this.metrics, ...(this.options.clock ? { clock: this.options.clock } : {}) });
    const adaptive = control.controller;
    const canary = new CacheCanary({
      client: this.client,
      coldThresholdMs,
      rangeRequests: features.rangeRequests,
      ttlMs: CHUNK_CACHE_TTL_MS,
      ...(this.options.clock ? { clock: this.options.clock } : {}),
    });
    const deepConfig = this.config.deep;
    if (deepConfig.cache || deepConfig.database || deepConfig.queue) {
      this.deep = new DeepMode({
        stores: { cache: deepConfig.cache, database: deepConfig.database, queue: deepConfig.queue },
        ledger,
        metrics: this.metrics.deep,
        logger: this.logger,
        budgetBytes: deepConfig.budgetBytes,
        ...(this.options.clock ? { clock: this.options.clock } : {}),
      });
      this.deep.scheme = keySchemeFor(features.indexChunks);
    }
    const deep = this.deep;
    const engine = new WarmEngine({
      client: this.client,
      features,
      ledger,
      metrics: this.metrics,
      logger: this.logger,
      ...control.engineOptions,
      // Due once the cached copy has expired; chunks of unknown build time count as max-age old.
      maxAgeMs: CHUNK_CACHE_TTL_MS,
      assumedAgeMs: warm.maxAgeMs,
      coldThresholdMs,
      chunkStateGauge: false,
      ...(this.options.retry ? { retry: this.options.retry } : {}),
      ...(this.options.clock ? { clock: this.options.clock } : {}),
      // A 500 on a guarded share task whose files are all readable here: CVAT's chunk worker lacks the share mount.
      ...(guard
        ? {
            explainServerError: (r: WarmRequest) =>
              guard.queries.explainChunkFailure({ taskId: r.taskId, jobId: r.jobId, chunk: r.kind === 'chunk' && isJobChunks(r.series) ? r.slot : undefined }),
          }
        : {}),
      cloudGate: this.cloud.gate,
      onSample: (s) => {
        control.engineOptions.onSample(s);
        // The shallow canary re-reads chunks the warden saw built, to tell a cache wipe.
        if (s.built) canary.built(s.request);
      },
    });
    control.attach(engine, this.logger);
    const scheduler = new WarmScheduler({
      engine,
      ledger,
      logger: this.logger,
      metrics: this.metrics,
      planOptions: { ...warm, indexChunks: features.indexChunks, emptyPreviews: features.emptyPreviews },
      maxAgeMs: CHUNK_CACHE_TTL_MS,
      holdReason: () =>
        deep?.configured && !deep.attempted
          ? "waiting for deep mode's first read of CVAT's cache (nothing cached is requested)"
          : deep?.overBudget
            ? `CVAT's cache holds ${deep.lastResult?.bytes ?? 0} bytes for the reads in scope, above --cache-budget ${deepConfig.budgetBytes ?? 0}`
            : undefined,
      ...(this.options.checkIntervalMs !== undefined ? { checkIntervalMs: this.options.checkIntervalMs } : {}),
      ...(this.options.clock ? { clock: this.options.clock } : {}),
    });
    const shareTasks = new Set(this.config.shareTasks);
    const onIssue = (issue: InventoryIssue) => {
      if (issue.taskId !== undefined) this.issues.set(issue.taskId, issue);
      if (issue.severity === 'problem') this.logger.warn({ taskId: issue.taskId, jobId: issue.jobId }, issue.message);
    };
    const discovery = new Discovery({
      client: this.client,
      features,
      logger: this.logger,
      ...(this.options.discoveryFullEvery !== undefined ? { fullEvery: this.options.discoveryFullEvery } : {}),
      concurrency: this.config.options.values['discovery-concurrency'],
      onIssue,
      onRecord: async (record, isNew) => {
        this.issues.delete(record.task.id);
        await this.cloud.onRecord(record, features);
        // A segment rebuilt by CVAT (honeypot change) voids its chunks: re-warm that task first.
        const { task, moved } = await planRecord(record, {
          client: this.client,
          ledger,
          features,
          qualities: warm.qualities,
          contextImages: warm.contextImages,
          onIssue,
          signal: this.stopIntake.signal,
        });
        if (moved.length) this.logger.info({ taskId: record.task.id, jobs: moved }, 'chunks rebuilt by CVAT since the last pass: re-warming');
        if (task) {
          const live = new Set(taskSegments(task, { skipCompleted: true }).map((s) => s.via.id));
          const before = this.liveSegments.get(task.id);
          this.liveSegments.set(task.id, live);
          const reopened = before !== undefined && [...live].some((id) => !before.has(id));
          if (reopened)
            this.logger.info({ taskId: task.id, segments: [...live].filter((id) => !before.has(id)) }, 'jobs reopened in CVAT: warming their segments first');
          scheduler.upsert(task, { urgent: (isNew && this.firstDiscovery.reached) || moved.length > 0 || reopened });
        }
        // Hand each task to the guard as it comes: holding every task's frame list until
        // the pass ends would cost gigabytes on a million-file share.
        const guarded = guard ? toGuardTask(record, features, shareTasks) : undefined;
        if (guard && guarded) {
          await guard.upsertTasks([guarded]);
          this.guarded.add(record.task.id);
        }
        await this.protection?.onRecord(record, features);
      },
      onRemoved: async (taskId) => {
        scheduler.remove(taskId);
        await this.cloud.onRemoved(taskId);
        this.liveSegments.delete(taskId);
        if (this.guarded.delete(taskId)) await guard?.removeTasks([taskId]);
        await this.protection?.onRemoved(taskId);
        this.issues.delete(taskId);
        this.logger.info({ taskId }, 'task deleted in CVAT: no longer warmed or guarded');
      },
    });
    this.cacheTruth = new CacheTruth({
      deep,
      canary,
      scheduler,
      ledger,
      metrics: this.metrics,
      logger: this.logger,
      ttlMs: CHUNK_CACHE_TTL_MS,
      ...(this.options.clock ? { clock: this.options.clock } : {}),
    });
    return { features, adaptive, scheduler, discovery };
  }

  private async discoveryLoop(warming: Warming): Promise<void> {
    const { discovery, scheduler } = warming;
    const signal = this.stopIntake.signal;
    const coalesceMs = this.config.options.values['webhook-coalesce'];
    while (!signal.aborted) {
      const look = this.pending.take();
      this.metrics.webhookPendingTasks.set(this.pending.size);
      let failed = false;
      try {
        // The guard stats new files in batches across tasks (scanBatchFiles): the pass's last ones now.
        const pass = await discovery.pass(signal, look).finally(() => this.started?.guard?.settle());
        this.logIntake(this.intakeLog.record(this.pending.drainStats(), { tasksLooked: pass.named, idLists: pass.idLists, full: look.full }));
        if (pass.refreshed + pass.removed > 0) scheduler.wake();
        if (!this.firstDiscovery.reached) this.logger.info({ tasks: discovery.taskCount, jobs: scheduler.jobCount() }, 'first discovery done');
        this.firstDiscovery.reach();
        await this.protection?.onDiscoveryPass((id) => this.issues.has(id));
        await this.cacheTruth?.afterPoll(signal).catch((error: unknown) => this.onLoopError('cache check', error));
      } catch (error) {
        // A failed pass must not lose the tasks webhooks named: the next one looks at them.
        this.pending.putBack(look);
        failed = true;
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the signal may have been aborted during the await above; TS narrowing does not see that
        if (signal.aborted) return;
        this.onLoopError('discovery', error);
      }
      // After a failure the tasks put back do not make the next pass come sooner: the poll
      // interval or a new delivery does, as without webhooks (no retry loop against a CVAT in trouble).
      if (failed || !this.pending.waiting) {
        const wake = new Promise<void>((resolve) => (this.wakeDiscovery = resolve));
        await Promise.race([wake, sleep(this.config.pollIntervalMs, undefined, { signal }).catch(() => undefined)]);
        this.wakeDiscovery = undefined;
      }
      // Gather the burst: deliveries within the window share one pass, so webhook-driven
      // passes (and the requests they cost) come at most once per window.
      if (this.pending.waiting && coalesceMs > 0) await sleep(coalesceMs, undefined, { signal }).catch(() => undefined);
    }
  }

  private logIntake(summary: IntakeSummary | undefined): void {
    if (summary) this.logger.info({ ...summary, pending: this.pending.size }, 'webhook deliveries since the last summary');
  }

  private onLoopError(loop: string, error: unknown): void {
    const code = error instanceof WardenError ? error.code : undefined;
    this.logger.error(
      { loop, code, err: describeError(error) },
      code === 'CVAT_UNREACHABLE' ? 'CVAT unreachable; will retry' : `${loop} pass failed; will retry`,
    );
  }

  private onWebhook(event: WebhookEvent): void {
    this.lastWebhookAt = Date.now();
    if (this.stopIntake.signal.aborted || !('taskId' in event)) return;
    // Before CVAT answers, tasks wait too: the first discovery pass lists every task anyway.
    const outcome = this.pending.add(event.taskId);
    if (outcome === 'coalesced') this.metrics.webhookCoalesced.inc();
    else if (outcome === 'overflow') this.metrics.webhookOverflowed.inc();
    this.metrics.webhookPendingTasks.set(this.pending.size);
    this.logger.debug({ event: event.event, kind: event.kind, taskId: event.taskId, outcome }, 'webhook');
    this.wakeDiscovery?.();
  }

  /** Files back on the share: the chunks that failed while they were gone come first. */
  private rewarmTasks(taskIds: number[]): void {
    if (!this.warming || taskIds.length === 0) return;
    this.warming.scheduler.prioritize(taskIds);
    this.logger.info({ tasks: taskIds.slice(0, 20), count: taskIds.length }, 'share files back: re-warming their chunks');
  }

  /** Waits for a warm pass that starts now (after discovery), e.g. after the clock moved. */
  async warmNow(): Promise<WarmResult> {
    const deadline = Date.now() + 30_000;
    while (!this.warming || !this.firstDiscovery.reached) {
      if (Date.now() > deadline) throw new WardenError('CVAT_UNREACHABLE', 'service did not connect to CVAT in time');
      await sleep(20);
    }
    return this.warming.scheduler.nextPass();
  }

  readiness(): ReadinessReport {
    const closing = this.stopIntake.signal.aborted;
    const features = this.warming?.features;
    const reach = this.reachability.verdict();
    const share = this.started?.guard?.status();
    const credentials = this.client.credentialsState;
    const checks: ReadinessReport['checks'] = {
      accepting: { ok: !closing, ...(closing ? { detail: 'shutting down' } : {}) },
      cvat: features
        ? { ok: reach.ok && !closing, detail: `CVAT ${features.version.raw}, ${reach.detail}` }
        : { ok: false, detail: `not connected yet${reach.ok ? '' : `: ${reach.detail}`}` },
      discovery: {
        ok: this.firstDiscovery.reached,
        detail: this.firstDiscovery.reached ? `${this.warming?.discovery.taskCount ?? 0} tasks` : 'first discovery pending',
      },
      credentials: { ok: credentials.accepted !== false, detail: credentials.detail },
    };
    if (share) checks['share'] = { ok: share.shareAvailable, detail: share.shareAvailable ? `${share.filesExpected} files guarded` : 'share unavailable' };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  status(): object {
    const warming = this.warming;
    const scheduler = warming?.scheduler;
    const guard = this.started?.guard;
    return statusDocument({
      cvat: {
        url: this.client.baseUrl,
        version: warming?.features.version.raw ?? null,
        reachability: this.reachability.snapshot(),
        credentials: this.client.credentialsState,
      },
      discovery: { done: this.firstDiscovery.reached, tasks: warming?.discovery.taskCount ?? 0, jobs: scheduler?.jobCount() ?? 0 },
      warm: {
        passes: scheduler?.passCount ?? 0,
        evaluations: scheduler?.evaluationCount ?? 0,
        running: scheduler?.running ?? false,
        lastPassEndedAt: scheduler?.lastPassEndedAt,
        chunks: scheduler ? scheduler.chunkCounts() : null,
        failures: scheduler?.lastResult?.failures ?? [],
        concurrency: warming?.adaptive.snapshot() ?? null,
        ledger: this.started?.ledger.stats() ?? null,
        ledgerDamage: this.started?.ledger.damage ?? [],
      },
      share: guard ? { status: guard.status(), problems: guard.problems() } : null,
      cloud: this.cloud.status(),
      issues: [...this.issues.values()],
      webhooks: {
        enabled: Boolean(this.config.webhookSecret),
        startedAt: this.startedAt,
        lastAcceptedAt: this.lastWebhookAt,
        pendingTasks: this.pending.size,
        pendingLimit: this.pending.capacity,
      },
      protection: this.protection?.status() ?? null,
      cache: this.cacheTruth?.status() ?? null,
    });
  }

  /**
   * The ordered steps of stopping, for the shutdown coordinator (each runs once, however
   * often it is called): no new work; the running pass drains (in-flight chunk requests
   * finish, or are cut when the deadline aborts); the guard saves its state; the ledger
   * is flushed; HTTP and the CVAT client close.
   */
  shutdownSteps(): readonly ServiceStep[] {
    return this.steps;
  }

  private buildSteps(): ServiceStep[] {
    return [
      {
        name: 'stop intake',
        run: once(() => {
          this.stopIntake.abort();
          this.started?.http.stopAccepting();
          this.wakeDiscovery?.();
          return Promise.resolve();
        }),
      },
      {
        name: 'drain warming',
        run: once(async (deadline) => {
          this.warming?.scheduler.drain();
          const abortHard = () => this.hardStop.abort();
          if (deadline.aborted) abortHard();
          deadline.addEventListener('abort', abortHard, { once: true });
          // The loops end once the running pass has drained, or the deadline cuts it.
          if (!this.hardStop.signal.aborted) {
            await Promise.race([Promise.allSettled(this.loops), new Promise((r) => this.hardStop.signal.addEventListener('abort', r, { once: true }))]);
          }
          this.hardStop.abort();
          await Promise.allSettled(this.loops);
          deadline.removeEventListener('abort', abortHard);
        }),
      },
      { name: 'close the vault and backups', run: once(async () => await this.protection?.close()) },
      {
        name: 'close the guard',
        run: once(async () => {
          await this.cloud.close();
          await this.started?.guard?.close();
        }),
      },
      { name: 'flush the ledger', run: once(async () => await this.started?.ledger.close()) },
      {
        name: 'close HTTP',
        run: once(async () => {
          await this.started?.http.close();
          // No delivery comes after this: report what the last summary did not.
          this.logIntake(this.intakeLog.record(this.pending.drainStats(), { tasksLooked: 0, idLists: 0, full: false }) ?? this.intakeLog.flush());
        }),
      },
      {
        name: 'close the CVAT client',
        run: once(async () => {
          await this.deep?.close();
          await this.client.close();
          this.logger.info('cvat-warden service stopped');
        }),
      },
    ];
  }

  /**
   * Graceful stop outside the coordinator (tests, `await using`): the same steps in the
   * same order; `deadline` cuts the drain. Idempotent.
   */
  close(deadline?: AbortSignal): Promise<void> {
    this.closing ??= (async () => {
      const signal = deadline ?? new AbortController().signal;
      for (const step of this.steps) await step.run(signal);
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
