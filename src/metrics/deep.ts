/**
 * Deep mode's metrics (registered by `createMetrics` with the other areas). Bounded series: one per
 * store, and the per-task byte gauge holds the TOP_TASKS largest tasks only (like the share
 * problem gauge, `task_id` is the one id label; never a key, chunk or path).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export const DEEP_STORES = ['cache', 'database', 'queue'] as const;
export type DeepStore = (typeof DEEP_STORES)[number];
/** Series of cvat_warden_task_cached_bytes: the largest tasks by cached bytes. */
export const TOP_TASKS = 20;

export function deepMetrics(registry: Registry) {
  const registers = [registry];
  return {
    deepMode: new Gauge({
      name: 'cvat_warden_deep_mode',
      help: "1 while deep mode reads CVAT's cache and database; 0 when it is configured but a store is unreachable (shallow fallback) or not configured.",
      registers,
    }),
    deepStoreUp: new Gauge({
      name: 'cvat_warden_deep_store_up',
      help: 'Whether the last read of a configured CVAT store (cache, database, queue) succeeded.',
      labelNames: ['store'] as const,
      registers,
    }),
    cachedBytes: new Gauge({
      name: 'cvat_warden_cached_bytes',
      help: 'Bytes CVAT holds in its media cache for the reads in scope (sum of STRLEN; deep mode).',
      registers,
    }),
    taskCachedBytes: new Gauge({
      name: 'cvat_warden_task_cached_bytes',
      help: `Bytes CVAT holds in its media cache per task, for the ${TOP_TASKS} largest tasks in scope (deep mode).`,
      labelNames: ['task_id'] as const,
      registers,
    }),
    cacheBudgetBytes: new Gauge({
      name: 'cvat_warden_cache_budget_bytes',
      help: 'The --cache-budget: above it the warden adds nothing to the cache (0: no budget).',
      registers,
    }),
    cacheKeys: new Gauge({
      name: 'cvat_warden_cache_keys',
      help: 'Reads in scope by what the media cache holds for them (deep mode): cached, missing, or unknown (no key could be named).',
      labelNames: ['state'] as const,
      registers,
    }),
    cacheWipes: new Counter({
      name: 'cvat_warden_cache_wipes_total',
      help: 'Times the media cache was found wiped or invalidated behind the warden: by deep mode (every key gone) or by the shallow canary.',
      labelNames: ['detected_by'] as const,
      registers,
    }),
    cacheEntriesVoided: new Counter({
      name: 'cvat_warden_cache_entries_voided_total',
      help: 'Ledger entries found gone from the media cache before their TTL (deep mode or canary) and so warmed again.',
      registers,
    }),
    deepSyncDuration: new Gauge({
      name: 'cvat_warden_deep_sync_duration_seconds',
      help: "Duration of the last deep-mode read of CVAT's stores.",
      registers,
    }),
    chunkQueueLength: new Gauge({
      name: 'cvat_warden_chunk_queue_length',
      help: "Length of CVAT's RQ queue `chunks` (CVAT_WARDEN_QUEUE_URL).",
      registers,
    }),
  };
}

export type DeepMetrics = ReturnType<typeof deepMetrics>;
