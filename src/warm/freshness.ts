/**
 * Invalidation by `chunks_updated_date` (CVAT ≥ 2.21): a segment whose chunks were
 * rebuilt (honeypot change) has a newer date, and chunks confirmed before it are void.
 * The task meta carries the max over its segments, so one request per task tells
 * whether anything moved; only then are the task's job metas read.
 */
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { Quality } from '../domain.js';
import type { InventoryIssue, TaskRecord } from '../cvat/inventory.js';
import { toPlanTask } from '../plan/from-records.js';
import type { PlanTask } from '../plan/types.js';
import type { WarmLedger } from './engine.js';
import { series } from '../series.js';

export interface PlanRecordOptions {
  client: CvatClient;
  ledger: WarmLedger;
  features: CvatFeatures;
  qualities: readonly Quality[];
  contextImages: boolean;
  onIssue: (issue: InventoryIssue) => void;
  /** Dry runs plan without touching the ledger. @default true */
  syncDates?: boolean;
  signal?: AbortSignal;
}

/**
 * Records → chunk dates → plan task, the one step `warm` and `run` share: voids the
 * ledger entries of segments CVAT rebuilt (CVAT ≥ 2.21), then reduces the record to the
 * planner's task. `moved` lists the jobs whose chunks were rebuilt (re-warm them first).
 */
export async function planRecord(record: TaskRecord, options: PlanRecordOptions): Promise<{ task: PlanTask | undefined; moved: number[] }> {
  const sync = options.features.checksumHeaders && options.syncDates !== false;
  const moved = sync ? await syncChunkDates(options.client, options.ledger, record, options.qualities, options.signal) : [];
  return { task: toPlanTask(record, { contextImages: options.contextImages, onIssue: options.onIssue }), moved };
}

export function taskDateSeries(taskId: number): string {
  return series.taskDates(taskId);
}

/** Returns the ids of jobs whose chunk date moved (their ledger entries were dropped). */
export async function syncChunkDates(
  client: CvatClient,
  ledger: WarmLedger,
  record: TaskRecord,
  qualities: readonly Quality[],
  signal?: AbortSignal,
): Promise<number[]> {
  const taskDate = record.meta?.chunks_updated_date;
  if (!taskDate) return [];
  const marker = taskDateSeries(record.task.id);
  const known = ledger.updatedDate(marker);
  if (known === taskDate) return [];
  const moved: number[] = [];
  if (known !== undefined) {
    for (const job of record.jobs) {
      if (job.type === 'consensus_replica') continue;
      const meta = await client.jobMeta(job.id, signal);
      const date = meta.ok ? meta.value.chunks_updated_date : undefined;
      if (!date) continue;
      for (const quality of qualities) {
        const name = series.jobChunks(job.id, quality);
        const before = ledger.updatedDate(name);
        if (before !== date) {
          ledger.setUpdatedDate(name, date);
          if (before !== undefined && !moved.includes(job.id)) moved.push(job.id);
        }
      }
    }
  }
  ledger.setUpdatedDate(marker, taskDate);
  return moved;
}
