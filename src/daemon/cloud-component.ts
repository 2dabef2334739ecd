/**
 * Cloud storage inside `run`: discovery hands each task record here; every `--cloud-interval`
 * a round (1) re-asks the status of storages the warmer stopped on and lifts their block when
 * AVAILABLE (the scheduler is woken to warm them), then (2) lists the buckets' directories
 * within `--cloud-list-budget` and raises / clears problems (metrics, alerts, logs).
 *
 * Kept beside src/guard on purpose: the share guard is being reshaped into a core with
 * "sources"; CloudGuard exposes what such a source needs (expected keys, observed presence per
 * directory, raised/cleared problems), so moving it under the core is a wiring change here.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CloudGuard,
  ListBudget,
  cloudExpectation,
  storageStatus,
  type CloudProblem,
  type CloudRoundResult,
  type CloudTaskExpectation,
} from '../cloud/index.js';
import type { CvatClient } from '../cvat/client.js';
import type { TaskRecord } from '../cvat/inventory.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { CloudGate } from '../warm/cloud-gate.js';

export interface CloudComponentOptions {
  client: CvatClient;
  logger: Logger;
  metrics: Metrics;
  intervalMs: number;
  listBudgetPerHour: number;
  /** Called after a storage the warmer skipped is AVAILABLE again. */
  onStorageBack?: (storageIds: number[]) => void;
  clock?: { now(): number };
}

export class CloudComponent {
  readonly #o: CloudComponentOptions;
  readonly #tasks = new Map<number, CloudTaskExpectation>();
  /** Task → storage for the warmer's gate, every cloud task (also detached ones are absent). */
  readonly #storageOf = new Map<number, number>();
  readonly gate: CloudGate;
  readonly #guard: CloudGuard;
  #last: CloudRoundResult | undefined;
  #closed = false;

  constructor(options: CloudComponentOptions) {
    this.#o = options;
    this.gate = new CloudGate((taskId) => this.#storageOf.get(taskId));
    this.#guard = new CloudGuard({
      client: options.client,
      budget: new ListBudget(options.listBudgetPerHour, options.clock),
      logger: options.logger,
      metrics: options.metrics,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  }

  onRecord(record: TaskRecord): void {
    const storageId = record.meta?.cloud_storage_id ?? record.task.data_cloud_storage_id;
    if (typeof storageId === 'number') this.#storageOf.set(record.task.id, storageId);
    else this.#storageOf.delete(record.task.id);
    const expectation = cloudExpectation(record);
    if (expectation) this.#tasks.set(record.task.id, expectation);
    else this.#tasks.delete(record.task.id);
  }

  onRemoved(taskId: number): void {
    this.#tasks.delete(taskId);
    this.#storageOf.delete(taskId);
  }

  problems(): CloudProblem[] {
    return this.#guard.problems();
  }

  get lastRound(): CloudRoundResult | undefined {
    return this.#last;
  }

  /** One round: lift blocks of storages back to AVAILABLE, then list within the budget. */
  async round(signal?: AbortSignal): Promise<CloudRoundResult> {
    const lifted = await this.gate.refresh(async (id) => (await storageStatus(this.#o.client, id, signal)).status);
    if (lifted.length) {
      this.#o.logger.info({ storages: lifted }, 'cloud storage AVAILABLE again: warming its tasks resumes');
      this.#o.onStorageBack?.(lifted);
    }
    this.#guard.setTasks([...this.#tasks.values()]);
    this.#last = await this.#guard.round(signal);
    return this.#last;
  }

  /** Rounds every `intervalMs` until `signal` aborts; a failed round is logged and retried next time. */
  async loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted && !this.#closed) {
      if (this.#tasks.size > 0 || this.gate.blockedStorages().length > 0) {
        try {
          await this.round(signal);
        } catch (error) {
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the signal may have been aborted during the await above; TS narrowing does not see that
          if (signal.aborted) return;
          this.#o.logger.error({ err: describeError(error) }, 'cloud listing round failed; next round as scheduled');
        }
      }
      await sleep(this.#o.intervalMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#guard.close();
  }
}
