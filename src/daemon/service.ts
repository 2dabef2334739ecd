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
import { type ConfigError, WardenError, describeError } from '../errors.js';
import { ShareGuard } from '../guard/index.js';
import type { Logger } from '../log.js';
import { recordCredentials, setCvatInfo, type Metrics } from '../metrics.js';
import { SERVICE_DEFAULTS } from '../config/presets.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { WarmResult } from '../warm/engine.js';
import { Ledger } from '../warm/ledger.js';
import { CloudComponent } from './cloud-component.js';
import { impactRoute } from './impact-route.js';
import { startHttpServer, type HttpServerHandle, type ReadinessReport } from './http.js';
import { Protection } from './protection.js';
import { CvatReachability } from './reachability.js';
import { statusDocument } from './status.js';
import type { WebhookEvent } from './webhook.js';
import { series } from '../series.js';
import { warmWhileCredentialsWork } from './warm-loop.js';
import { buildWarming, type Warming, type WarmingTuning } from './warming.js';
import { Milestone } from './milestone.js';
import { WebhookBacklog } from './webhook-backlog.js';

/** Test and tuning knobs (clock, retry, checkIntervalMs, coldThresholdMs, discoveryFullEvery: see WarmingTuning); defaults suit production. */
export interface ServiceOptions extends WarmingTuning {
  config: CommandConfig;
  logger: Logger;
  metrics: Metrics;
  /** Overrides --cloud-interval (tests: rounds milliseconds apart). */
  cloudIntervalMs?: number;
  reconnectIntervalMs?: number;
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
  private readonly backlog: WebhookBacklog;
  private readonly reachability: CvatReachability;
  /** Cloud-storage tasks: the warmer's gate and the listing guard (cloud-component.ts). */
  private readonly cloud: CloudComponent;

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
    this.backlog = new WebhookBacklog({
      capacity: this.config.options.values['webhook-max-pending'],
      metrics: this.metrics,
      logger: this.logger,
      onDelivery: () => this.wakeDiscovery?.(),
    });
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

  /** Resolves once the first discovery has ended, or when the service stops before that. */
  firstDiscoveryDone(): Promise<void> {
    return this.firstDiscovery.until(this.stopIntake.signal);
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
        ...(guard ? { impact: impactRoute(guard, () => this.firstDiscovery.reached) } : {}),
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
    guard.on('share_restored', () => this.rewarmTasks(this.warming?.intake.guardedTaskIds ?? []));
    await guard.start();
    return guard;
  }

  private async connectAndRun(started: Started): Promise<void> {
    const features = await this.connect();
    if (!features || this.stopIntake.signal.aborted) return;
    const warming = await this.startWarming(features, started);
    await this.discoveryLoop(warming);
  }

  /** Asks CVAT what it is until it answers (or intake stops); undefined once stopped. */
  private async connect(): Promise<CvatFeatures | undefined> {
    const signal = this.stopIntake.signal;
    while (!signal.aborted) {
      try {
        const features = await this.client.features(signal);
        setCvatInfo(this.metrics, features.version.raw);
        this.logger.info({ version: features.version.raw }, 'connected to CVAT');
        return features;
      } catch (error) {
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the signal may have been aborted during the await above; TS narrowing does not see that
        if (signal.aborted) return undefined;
        const fatal = error instanceof WardenError && error.code === 'CVAT_UNSUPPORTED_VERSION';
        const refused = error instanceof WardenError && error.code === 'CVAT_AUTH_REFUSED';
        this.logger.error(
          { err: describeError(error) },
          fatal ? 'CVAT version not supported' : refused ? 'CVAT refuses the credentials; retrying' : 'CVAT not reachable yet; retrying',
        );
        await sleep(this.options.reconnectIntervalMs ?? SERVICE_DEFAULTS.reconnectIntervalMs, undefined, { signal }).catch(() => undefined);
      }
    }
    return undefined;
  }

  /** Builds the warming parts (warming.ts) and starts the warm and cloud loops; discovery's loop is the caller's. */
  private async startWarming(features: CvatFeatures, started: Started): Promise<Warming> {
    const signal = this.stopIntake.signal;
    const warming = await buildWarming({
      features,
      config: this.config,
      tuning: this.options,
      client: this.client,
      logger: this.logger,
      metrics: this.metrics,
      ledger: started.ledger,
      guard: started.guard,
      cloud: this.cloud,
      protection: this.protection,
      signal,
      firstDiscoveryDone: () => this.firstDiscovery.reached,
    });
    this.warming = warming;
    const onError = (error: unknown) => this.onLoopError('warm', error);
    const warm = () =>
      warmWhileCredentialsWork({ client: this.client, scheduler: warming.scheduler, logger: this.logger, stop: signal, hard: this.hardStop.signal, onError });
    // With a guard, the first discovery is the share's first scan: every expected file is
    // stat-ed and indexed. Warming waits for it instead of competing for the main thread
    // (at 300,000 files, chunk requests were ~30 % of the CPU before ready).
    this.loops.push(started.guard ? this.firstDiscovery.until(signal).then(warm) : warm());
    this.loops.push(this.cloud.loop(signal));
    return warming;
  }

  private async discoveryLoop(warming: Warming): Promise<void> {
    const { discovery, scheduler, intake, cacheTruth } = warming;
    const signal = this.stopIntake.signal;
    const coalesceMs = this.config.options.values['webhook-coalesce'];
    while (!signal.aborted) {
      const look = this.backlog.take();
      let failed = false;
      try {
        // The guard stats new files in batches across tasks (scanBatchFiles): the pass's last ones now.
        const pass = await discovery.pass(signal, look).finally(() => this.started?.guard?.settle());
        this.backlog.passed(look, pass);
        if (pass.refreshed + pass.removed > 0) scheduler.wake();
        if (!this.firstDiscovery.reached) this.logger.info({ tasks: discovery.taskCount, jobs: scheduler.jobCount() }, 'first discovery done');
        this.firstDiscovery.reach();
        await this.protection?.onDiscoveryPass((id) => intake.hasIssue(id));
        await cacheTruth.afterPoll(signal).catch((error: unknown) => this.onLoopError('cache check', error));
      } catch (error) {
        this.backlog.putBack(look);
        failed = true;
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the signal may have been aborted during the await above; TS narrowing does not see that
        if (signal.aborted) return;
        this.onLoopError('discovery', error);
      }
      // After a failure the tasks put back do not make the next pass come sooner: the poll
      // interval or a new delivery does, as without webhooks (no retry loop against a CVAT in trouble).
      if (failed || !this.backlog.waiting) {
        const wake = new Promise<void>((resolve) => (this.wakeDiscovery = resolve));
        await Promise.race([wake, sleep(this.config.pollIntervalMs, undefined, { signal }).catch(() => undefined)]);
        this.wakeDiscovery = undefined;
      }
      // Gather the burst: deliveries within the window share one pass, so webhook-driven
      // passes (and the requests they cost) come at most once per window.
      if (this.backlog.waiting && coalesceMs > 0) await sleep(coalesceMs, undefined, { signal }).catch(() => undefined);
    }
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
    if (!this.stopIntake.signal.aborted) this.backlog.deliver(event);
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
    const share = this.started?.guard?.availability();
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
      issues: warming?.intake.issues ?? [],
      webhooks: {
        enabled: Boolean(this.config.webhookSecret),
        startedAt: this.startedAt,
        lastAcceptedAt: this.lastWebhookAt,
        ...this.backlog.status(),
      },
      protection: this.protection?.status() ?? null,
      cache: warming?.cacheTruth.status() ?? null,
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
          this.backlog.close();
        }),
      },
      {
        name: 'close the CVAT client',
        run: once(async () => {
          await this.warming?.deep?.close();
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
