/**
 * Deep mode as the service runs it: the readers of CVAT's stores, one `DeepSync` per poll,
 * and the fall back to shallow mode when a store cannot be read — said in the log (once per
 * change), the metrics (`cvat_warden_deep_mode`, `cvat_warden_deep_store_up{store}`) and
 * /status. A failed poll changes nothing in the ledger; the next poll tries the stores again.
 */
import type { Logger } from '../log.js';
import type { PlanOptions, PlanTask } from '../plan/types.js';
import type { Ledger } from '../warm/ledger.js';
import { redactSecrets } from '../secrets.js';
import { describeError } from '../errors.js';
import { CacheReader } from './cache-reader.js';
import { DeepSync, type DeepSyncResult, type StoreClock } from './deep-sync.js';
import type { KeyScheme } from './keys.js';
import { TOP_TASKS, type DeepMetrics, type DeepStore } from '../metrics/deep.js';
import { SegmentReader } from './segment-reader.js';
import type { StoreUrl } from './store-url.js';

/**
 * RQ keeps a queue's pending job ids in the list `rq:queue:<name>` (rq `Queue.redis_queue_namespace_prefix`);
 * CVAT's chunk builds go to the queue `chunks` (`settings.CVAT_QUEUES.CHUNKS`, cache.py `MediaCache._QUEUE_NAME`).
 */
export const CHUNK_QUEUE_KEY = 'rq:queue:chunks';

/**
 * The pace of each poll's SCAN of the media cache. A SCAN of 1,000,000 keys cost a
 * redis-server ~1 s of CPU (docs/benchmarks.md, deep section), each SCAN call (1000 keys)
 * ~1 ms; at this pace a 1 M-key cache is listed in 5 s using about a fifth of one store
 * core meanwhile — 1.7 % over the default 60 s poll — and annotators' reads wait at most
 * one call's millisecond behind it.
 */
export const SYNC_SCAN_KEYS_PER_SECOND = 200_000;

export interface DeepStores {
  cache: StoreUrl | undefined;
  database: StoreUrl | undefined;
  queue: StoreUrl | undefined;
}

export interface DeepModeOptions {
  stores: DeepStores;
  ledger: Ledger;
  metrics: DeepMetrics;
  logger: Logger;
  /** Bytes above which the warden adds nothing to the cache; undefined: no budget. */
  budgetBytes?: number | undefined;
  timeoutMs?: number;
  clock?: StoreClock;
}

export interface DeepStatus {
  configured: boolean;
  mode: 'deep' | 'shallow';
  /** Why deep mode is not in use (a store unreachable, not configured), when it is not. */
  reason?: string;
  stores: Partial<Record<DeepStore, { label: string; up: boolean | null }>>;
  syncs: number;
  /** Redis commands and SQL queries sent so far (all reads). */
  cost: { redisCommands: number; queries: number };
  lastSync?: {
    at: string;
    requests: number;
    cached: number;
    missing: number;
    unknown: number;
    voided: number;
    learned: number;
    bytes: number;
    durationMs: number;
  };
  chunkQueueLength?: number;
  budgetBytes?: number;
  overBudget: boolean;
}

export class DeepMode {
  private readonly options: DeepModeOptions;
  private readonly cache: CacheReader | undefined;
  private readonly segments: SegmentReader | undefined;
  private readonly queue: CacheReader | undefined;
  private readonly sync: DeepSync | undefined;
  private readonly up: Partial<Record<DeepStore, boolean | null>> = {};
  private reason: string | undefined;
  private active = false;
  private last: (DeepSyncResult & { at: number }) | undefined;
  private queueLength: number | undefined;
  private closed = false;
  /** Whether the last poll's SCAN was complete and saw every key (a change to false is logged once). */
  private scanTrusted = true;
  /** Whether a poll has tried the stores yet (warming waits for the first, so it asks for nothing cached). */
  attempted = false;
  /** Completed reads of the stores (one per poll while deep mode is up). */
  syncs = 0;
  scheme: KeyScheme = 'segment';

  constructor(options: DeepModeOptions) {
    this.options = options;
    const { stores } = options;
    const timeoutMs = options.timeoutMs ?? 5000;
    if (stores.cache) this.cache = new CacheReader({ store: stores.cache, timeoutMs, scanKeysPerSecond: SYNC_SCAN_KEYS_PER_SECOND });
    if (stores.database) this.segments = new SegmentReader({ store: stores.database, timeoutMs });
    if (stores.queue) this.queue = new CacheReader({ store: stores.queue, timeoutMs });
    if (this.cache && this.segments) {
      this.sync = new DeepSync({
        cache: this.cache,
        segments: this.segments,
        ledger: options.ledger,
        scheme: 'segment',
        ...(options.clock ? { clock: options.clock } : {}),
      });
    } else if (this.cache || this.segments) {
      this.reason = `deep mode needs both CVAT_WARDEN_CACHE_URL and CVAT_WARDEN_DB_URL (only the ${this.cache ? 'cache' : 'database'} is set)`;
    }
    for (const store of ['cache', 'database', 'queue'] as const) if (stores[store]) this.up[store] = null;
    options.metrics.cacheBudgetBytes.set(options.budgetBytes ?? 0);
    options.metrics.deepMode.set(0);
  }

  /** Whether deep mode is configured (both stores given). */
  get configured(): boolean {
    return this.sync !== undefined;
  }

  /** Whether the last poll read the stores: the ledger holds the cache's truth. */
  get isActive(): boolean {
    return this.active;
  }

  get lastResult(): DeepSyncResult | undefined {
    return this.last;
  }

  /** Whether the cache holds more than the budget for the reads in scope (warming adds nothing then). */
  get overBudget(): boolean {
    const budget = this.options.budgetBytes;
    return budget !== undefined && this.active && (this.last?.bytes ?? 0) > budget;
  }

  /** Commands and queries sent so far (benchmarks, /status). */
  cost(): { redisCommands: number; queries: number } {
    let redisCommands = 0;
    for (const reader of [this.cache, this.queue]) for (const n of reader?.sent.values() ?? []) redisCommands += n;
    return { redisCommands, queries: this.segments?.queries ?? 0 };
  }

  private mark(store: DeepStore, ok: boolean): void {
    this.up[store] = ok;
    this.options.metrics.deepStoreUp.set({ store }, ok ? 1 : 0);
  }

  /**
   * One poll: the exact cache state of every request in scope into the ledger. Undefined
   * when deep mode is not configured or a store failed (shallow mode this poll).
   */
  async poll(tasks: readonly PlanTask[], planOptions: PlanOptions, signal?: AbortSignal): Promise<DeepSyncResult | undefined> {
    await this.pollQueue();
    if (!this.sync || this.closed) return undefined;
    const { metrics, logger } = this.options;
    let result: DeepSyncResult;
    try {
      this.sync.scheme = this.scheme;
      result = await this.sync.sync(tasks, planOptions, signal);
    } catch (error) {
      this.attempted = true; // shallow mode this poll: warming goes on by inference
      const store: DeepStore = describeError(error).startsWith(this.segments!.label) ? 'database' : 'cache';
      this.mark(store, false);
      const reason = redactSecrets(`${store} unreachable: ${describeError(error)}`);
      if (this.active || this.reason !== reason)
        logger.warn({ reason }, 'deep mode: falling back to shallow mode (inferring the cache from answer times) until the store answers');
      this.active = false;
      this.reason = reason;
      metrics.deepMode.set(0);
      return undefined;
    }
    this.attempted = true;
    this.mark('cache', true);
    this.mark('database', true);
    if (!this.active) logger.info({ cache: this.cache!.label, database: this.segments!.label }, "deep mode: reading CVAT's cache and database (read-only)");
    this.active = true;
    this.reason = undefined;
    this.last = { ...result, at: Date.now() };
    this.syncs++;
    metrics.deepMode.set(1);
    metrics.cachedBytes.set(result.bytes);
    metrics.cacheKeys.set({ state: 'cached' }, result.cached);
    metrics.cacheKeys.set({ state: 'missing' }, result.missing);
    metrics.cacheKeys.set({ state: 'unknown' }, result.requests - result.keyed);
    metrics.deepSyncDuration.set(result.durationMs / 1000);
    if (result.voided > 0) metrics.cacheEntriesVoided.inc(result.voided);
    if (result.wipeSuspected) {
      metrics.cacheWipes.inc({ detected_by: 'deep' });
      logger.warn({ voided: result.voided }, 'deep mode: every cached read in scope is gone from the media cache (wiped?): warming them again');
    } else if (result.voided > 0) logger.info({ voided: result.voided }, 'deep mode: reads gone from the media cache before their TTL: warming them again');
    if (!result.scanTrusted && this.scanTrusted)
      logger.warn({ scanned: result.scanned }, 'deep mode: the SCAN of the media cache missed keys that are there: reading every key in scope this poll');
    this.scanTrusted = result.scanTrusted;
    metrics.taskCachedBytes.reset();
    const top = [...result.bytesByTask.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP_TASKS);
    for (const [taskId, bytes] of top) metrics.taskCachedBytes.set({ task_id: String(taskId) }, bytes);
    return result;
  }

  private async pollQueue(): Promise<void> {
    if (!this.queue || this.closed) return;
    try {
      this.queueLength = await this.queue.llen(CHUNK_QUEUE_KEY);
      this.options.metrics.chunkQueueLength.set(this.queueLength);
      this.mark('queue', true);
    } catch (error) {
      if (this.up.queue !== false) this.options.logger.warn({ err: describeError(error) }, 'deep mode: the chunk queue cannot be read');
      this.queueLength = undefined;
      this.mark('queue', false);
    }
  }

  /** Chunks waiting in CVAT's `chunks` queue as last read; undefined without a queue URL or when unreadable. */
  get chunkQueueLength(): number | undefined {
    return this.queueLength;
  }

  status(): DeepStatus {
    const stores: DeepStatus['stores'] = {};
    const labels: Record<DeepStore, CacheReader | SegmentReader | undefined> = { cache: this.cache, database: this.segments, queue: this.queue };
    for (const store of ['cache', 'database', 'queue'] as const) {
      const reader = labels[store];
      if (reader) stores[store] = { label: reader.label, up: this.up[store] ?? null };
    }
    const last = this.last;
    return {
      configured: this.configured,
      mode: this.active ? 'deep' : 'shallow',
      ...(this.reason ? { reason: this.reason } : !this.configured ? { reason: 'not configured (set CVAT_WARDEN_CACHE_URL and CVAT_WARDEN_DB_URL)' } : {}),
      stores,
      syncs: this.syncs,
      cost: this.cost(),
      ...(last
        ? {
            lastSync: {
              at: new Date(last.at).toISOString(),
              requests: last.requests,
              cached: last.cached,
              missing: last.missing,
              unknown: last.requests - last.keyed,
              voided: last.voided,
              learned: last.learned,
              bytes: last.bytes,
              durationMs: Math.round(last.durationMs),
            },
          }
        : {}),
      ...(this.queueLength !== undefined ? { chunkQueueLength: this.queueLength } : {}),
      ...(this.options.budgetBytes !== undefined ? { budgetBytes: this.options.budgetBytes } : {}),
      overBudget: this.overBudget,
    };
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.cache?.close(), this.segments?.close(), this.queue?.close()]);
  }
}
