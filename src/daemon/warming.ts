/**
 * The warming parts of `run`, assembled once CVAT has said what it is (its version decides
 * the chunk layout, range requests, cache key names): the warming controller, the engine,
 * the shallow canary and deep mode, the scheduler, discovery with its task intake, and the
 * cache truth that runs after each poll. The service owns their lifecycle; this module
 * only knows how they fit together.
 */
import type { CommandConfig } from '../config/index.js';
import type { CvatClient } from '../cvat/client.js';
import { CHUNK_CACHE_TTL_MS, type CvatFeatures } from '../cvat/features.js';
import type { DeepMode } from '../deep/deep-mode.js';
import { keySchemeFor } from '../deep/keys.js';
import type { ShareGuard } from '../guard/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { WarmRequest } from '../plan/types.js';
import { isJobChunks } from '../series.js';
import { WarmEngine, type Clock } from '../warm/engine.js';
import type { Ledger } from '../warm/ledger.js';
import type { RetryPolicy } from '../warm/policy.js';
import type { AdaptiveConcurrency } from './adaptive.js';
import { CacheCanary } from './canary.js';
import { CacheTruth } from './cache-truth.js';
import type { CloudComponent } from './cloud-component.js';
import { Discovery } from './discovery.js';
import type { Protection } from './protection.js';
import { WarmScheduler } from './scheduler.js';
import { TaskIntake } from './task-intake.js';
import { createWarmControl, type WarmControl } from './warm-control.js';

/** What exists once CVAT has answered: everything that depends on its version. */
export interface Warming {
  features: CvatFeatures;
  adaptive: AdaptiveConcurrency;
  scheduler: WarmScheduler;
  discovery: Discovery;
  intake: TaskIntake;
  /** What CVAT's cache really holds: deep mode's reads, or the shallow canary. */
  cacheTruth: CacheTruth;
  deep: DeepMode | undefined;
}

/** The service's test and tuning knobs that reach the warming parts. */
export interface WarmingTuning {
  clock?: Clock;
  retry?: Partial<RetryPolicy>;
  checkIntervalMs?: number;
  coldThresholdMs?: number;
  discoveryFullEvery?: number;
}

export interface WarmingContext {
  features: CvatFeatures;
  config: CommandConfig;
  tuning: WarmingTuning;
  client: CvatClient;
  logger: Logger;
  metrics: Metrics;
  ledger: Ledger;
  guard: ShareGuard | undefined;
  cloud: CloudComponent;
  protection: Protection | undefined;
  /** The service's stop-intake signal: planning requests end with it. */
  signal: AbortSignal;
  firstDiscoveryDone: () => boolean;
}

export async function buildWarming(ctx: WarmingContext): Promise<Warming> {
  const { features, config, tuning } = ctx;
  const clock = tuning.clock ? { clock: tuning.clock } : {};
  // One cold threshold for the engine (what counts as a build) and the controller (what it judges).
  const coldThresholdMs = tuning.coldThresholdMs ?? config.warm.coldThresholdMs;
  const control = createWarmControl({ ...config.warm, coldThresholdMs }, { metrics: ctx.metrics, ...clock });
  const canary = new CacheCanary({ client: ctx.client, coldThresholdMs, rangeRequests: features.rangeRequests, ttlMs: CHUNK_CACHE_TTL_MS, ...clock });
  const deep = await buildDeepMode(ctx);
  const engine = buildEngine(ctx, control, canary, coldThresholdMs);
  const scheduler = buildScheduler(ctx, engine, deep);
  const intake = new TaskIntake({
    client: ctx.client,
    features,
    ledger: ctx.ledger,
    scheduler,
    guard: ctx.guard,
    cloud: ctx.cloud,
    protection: ctx.protection,
    logger: ctx.logger,
    warm: config.warm,
    shareTasks: config.shareTasks,
    signal: ctx.signal,
    firstDiscoveryDone: ctx.firstDiscoveryDone,
  });
  const discovery = new Discovery({
    client: ctx.client,
    features,
    logger: ctx.logger,
    ...(tuning.discoveryFullEvery !== undefined ? { fullEvery: tuning.discoveryFullEvery } : {}),
    concurrency: config.options.values['discovery-concurrency'],
    onIssue: intake.onIssue,
    onRecord: intake.onRecord,
    onRemoved: intake.onRemoved,
  });
  const cacheTruth = new CacheTruth({
    deep,
    canary,
    scheduler,
    ledger: ctx.ledger,
    metrics: ctx.metrics,
    logger: ctx.logger,
    ttlMs: CHUNK_CACHE_TTL_MS,
    ...clock,
  });
  return { features, adaptive: control.controller, scheduler, discovery, intake, cacheTruth, deep };
}

/**
 * Deep mode when a store of CVAT's is configured (--cache-url, --database-url, --queue-url).
 * Loaded only then: its store clients (ioredis, pg) took ~230 ms of every `run`'s start.
 */
async function buildDeepMode(ctx: WarmingContext): Promise<DeepMode | undefined> {
  const deepConfig = ctx.config.deep;
  if (!deepConfig.cache && !deepConfig.database && !deepConfig.queue) return undefined;
  const { DeepMode } = await import('../deep/deep-mode.js');
  const deep = new DeepMode({
    stores: { cache: deepConfig.cache, database: deepConfig.database, queue: deepConfig.queue },
    ledger: ctx.ledger,
    metrics: ctx.metrics.deep,
    logger: ctx.logger,
    budgetBytes: deepConfig.budgetBytes,
    ...(ctx.tuning.clock ? { clock: ctx.tuning.clock } : {}),
  });
  deep.scheme = keySchemeFor(ctx.features.indexChunks);
  return deep;
}

function buildEngine(ctx: WarmingContext, control: WarmControl, canary: CacheCanary, coldThresholdMs: number): WarmEngine {
  const { guard, tuning } = ctx;
  const engine = new WarmEngine({
    client: ctx.client,
    features: ctx.features,
    ledger: ctx.ledger,
    metrics: ctx.metrics,
    logger: ctx.logger,
    ...control.engineOptions,
    // Due once the cached copy has expired; chunks of unknown build time count as max-age old.
    maxAgeMs: CHUNK_CACHE_TTL_MS,
    assumedAgeMs: ctx.config.warm.maxAgeMs,
    coldThresholdMs,
    chunkStateGauge: false,
    ...(tuning.retry ? { retry: tuning.retry } : {}),
    ...(tuning.clock ? { clock: tuning.clock } : {}),
    // A 500 on a guarded share task whose files are all readable here: CVAT's chunk worker lacks the share mount.
    ...(guard
      ? {
          explainServerError: (r: WarmRequest) =>
            guard.queries.explainChunkFailure({ taskId: r.taskId, jobId: r.jobId, chunk: r.kind === 'chunk' && isJobChunks(r.series) ? r.slot : undefined }),
        }
      : {}),
    cloudGate: ctx.cloud.gate,
    onSample: (s) => {
      control.engineOptions.onSample(s);
      // The shallow canary re-reads chunks the warden saw built, to tell a cache wipe.
      if (s.built) canary.built(s.request);
    },
  });
  control.attach(engine, ctx.logger);
  return engine;
}

function buildScheduler(ctx: WarmingContext, engine: WarmEngine, deep: DeepMode | undefined): WarmScheduler {
  const { features, tuning } = ctx;
  const budgetBytes = ctx.config.deep.budgetBytes;
  return new WarmScheduler({
    engine,
    ledger: ctx.ledger,
    logger: ctx.logger,
    metrics: ctx.metrics,
    planOptions: { ...ctx.config.warm, indexChunks: features.indexChunks, emptyPreviews: features.emptyPreviews },
    maxAgeMs: CHUNK_CACHE_TTL_MS,
    holdReason: () =>
      deep?.configured && !deep.attempted
        ? "waiting for deep mode's first read of CVAT's cache (nothing cached is requested)"
        : deep?.overBudget
          ? `CVAT's cache holds ${deep.lastResult?.bytes ?? 0} bytes for the reads in scope, above --cache-budget ${budgetBytes ?? 0}`
          : undefined,
    ...(tuning.checkIntervalMs !== undefined ? { checkIntervalMs: tuning.checkIntervalMs } : {}),
    ...(tuning.clock ? { clock: tuning.clock } : {}),
  });
}
