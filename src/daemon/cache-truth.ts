/**
 * After every discovery poll: learn what CVAT's cache really holds. Deep mode reads it
 * (src/deep) and the ledger takes the truth; without deep mode, or while a store is
 * unreachable, the shallow canary re-reads one chunk of known build time and, when the
 * cache was wiped, voids the ledger's warm entries in scope (bounded by the yield below and
 * re-warmed at the engine's bounded concurrency). Either way the scheduler evaluates the
 * tasks whose entries changed, so a wiped cache is warm again within two polls.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { DeepMode, DeepStatus } from '../deep/deep-mode.js';
import { planRequests } from '../plan/planner.js';
import type { Ledger } from '../warm/ledger.js';
import type { CacheCanary, CanaryVerdict } from './canary.js';
import type { WarmScheduler } from './scheduler.js';

const YIELD_EVERY = 5_000;

export interface CacheTruthOptions {
  deep: DeepMode | undefined;
  canary: CacheCanary;
  scheduler: WarmScheduler;
  ledger: Ledger;
  metrics: Metrics;
  logger: Logger;
  ttlMs: number;
  clock?: { now(): number };
}

/** Deep mode's state (or why it is off), the wipes seen and the shallow canary's last look. */
export type CacheTruthStatus = (DeepStatus | Pick<DeepStatus, 'configured' | 'mode' | 'reason'>) & {
  wipesDetected: number;
  canary: { state: CanaryVerdict['state']; at: string; checks: number } | null;
};

export class CacheTruth {
  private readonly options: CacheTruthOptions;
  private readonly clock: { now(): number };
  private lastCanary: (CanaryVerdict & { at: number }) | undefined;
  private wipes = 0;

  constructor(options: CacheTruthOptions) {
    this.options = options;
    this.clock = options.clock ?? Date;
  }

  async afterPoll(signal?: AbortSignal): Promise<void> {
    const { deep, scheduler } = this.options;
    if (deep?.configured) {
      const result = await deep.poll(scheduler.tasksInScope(), scheduler.planOptions, signal);
      if (result) {
        if (result.wipeSuspected) this.wipes++;
        scheduler.reevaluate(result.changedTasks);
        scheduler.wake(); // the first read lifts the hold on warming
        return;
      }
    }
    const verdict = await this.options.canary.check(signal);
    this.lastCanary = { ...verdict, at: Date.now() };
    if (verdict.state !== 'wiped') return;
    this.wipes++;
    this.options.metrics.deep.cacheWipes.inc({ detected_by: 'canary' });
    const voided = await this.voidWarm(signal);
    this.options.canary.reset();
    this.options.logger.warn(
      { voided, checked: verdict.checked, latencyMs: Math.round(verdict.latencyMs) },
      'chunks the warden saw built had to be built again: the cache was wiped or invalidated; re-warming everything in scope',
    );
  }

  /** Every warm, unexpired ledger entry in scope recorded as expiring now; returns how many. */
  private async voidWarm(signal?: AbortSignal): Promise<number> {
    const { scheduler, ledger, ttlMs } = this.options;
    const now = this.clock.now();
    let voided = 0;
    let sinceYield = 0;
    const changed: number[] = [];
    for (const task of scheduler.tasksInScope()) {
      let any = false;
      for (const request of planRequests([task], scheduler.planOptions)) {
        const entry = ledger.get(request.series, request.slot);
        if (entry?.outcome === 'warm' && entry.confirmedAt + ttlMs > now) {
          ledger.record(request.series, request.slot, { confirmedAt: now - ttlMs, outcome: 'warm' });
          voided++;
          any = true;
        }
        if (++sinceYield >= YIELD_EVERY) {
          sinceYield = 0;
          await yieldToLoop();
          if (signal?.aborted) break;
        }
      }
      if (any) changed.push(task.id);
    }
    this.options.metrics.deep.cacheEntriesVoided.inc(voided);
    scheduler.reevaluate(changed);
    return voided;
  }

  /** /status `cache` (schemas/status.schema.json). */
  status(): CacheTruthStatus {
    const canary = this.lastCanary;
    return {
      ...(this.options.deep
        ? this.options.deep.status()
        : { configured: false, mode: 'shallow' as const, reason: 'not configured (set CVAT_WARDEN_CACHE_URL and CVAT_WARDEN_DB_URL)' }),
      wipesDetected: this.wipes,
      canary: canary ? { state: canary.state, at: new Date(canary.at).toISOString(), checks: this.options.canary.checks } : null,
    };
  }
}
