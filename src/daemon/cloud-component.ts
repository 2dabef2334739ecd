/**
 * Cloud storage inside `run`: discovery hands each task record here; every `--cloud-interval`
 * a round (1) re-asks the status of storages the warmer stopped on and lifts their block when
 * AVAILABLE (the scheduler is woken to warm them), then (2) runs a listing round of the guard's
 * cloud source (src/guard/cloud-guard.ts: the guard's core with CVAT's paged listing as the way
 * presence is observed) within `--cloud-list-budget`: problems are raised and cleared by the
 * guard's tracker, alerted by its alert sink and persisted under `<state-dir>/cloud-guard`.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListBudget, storageStatus } from '../cloud/index.js';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { TaskRecord } from '../cvat/inventory.js';
import { describeError } from '../errors.js';
import { CloudGuard, cloudGuardTask, type CloudGuardStatus, type CloudProblem, type CloudRoundResult, type OpenProblem } from '../guard/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { CloudGate } from '../warm/cloud-gate.js';

/** The cloud guard's own directory under --state-dir (its problems and baseline; the share's stay beside). */
export const CLOUD_GUARD_STATE_DIR = 'cloud-guard';

export interface CloudComponentOptions {
  client: CvatClient;
  logger: Logger;
  metrics: Metrics;
  stateDir: string;
  intervalMs: number;
  listBudgetPerHour: number;
  /** Called after a storage the warmer skipped is AVAILABLE again. */
  onStorageBack?: (storageIds: number[]) => void;
  clock?: { now(): number };
}

export class CloudComponent {
  readonly #o: CloudComponentOptions;
  /** Task → storage for the warmer's gate, every cloud task (also detached ones are absent). */
  readonly #storageOf = new Map<number, number>();
  /** Tasks handed to the guard (it skips detached ones itself). */
  readonly #guarded = new Set<number>();
  readonly gate: CloudGate;
  readonly guard: CloudGuard;
  #last: CloudRoundResult | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: CloudComponentOptions) {
    this.#o = options;
    this.gate = new CloudGate((taskId) => this.#storageOf.get(taskId));
    this.guard = new CloudGuard({
      client: options.client,
      budget: new ListBudget(options.listBudgetPerHour, options.clock),
      logger: options.logger,
      metrics: options.metrics,
      stateDir: path.join(options.stateDir, CLOUD_GUARD_STATE_DIR),
      intervalMs: options.intervalMs,
      ...(options.clock ? { clock: () => options.clock!.now() } : {}),
    });
  }

  /** Loads the guard's persisted problems (they count in the metrics before any round). */
  start(): Promise<void> {
    return this.guard.start();
  }

  async onRecord(record: TaskRecord, features: CvatFeatures): Promise<void> {
    const storageId = record.meta?.cloud_storage_id ?? record.task.data_cloud_storage_id;
    if (typeof storageId === 'number') this.#storageOf.set(record.task.id, storageId);
    else this.#storageOf.delete(record.task.id);
    const task = cloudGuardTask(record, features);
    if (task) {
      this.#guarded.add(record.task.id);
      await this.guard.upsertTasks([task]);
    } else if (this.#guarded.delete(record.task.id)) await this.guard.removeTasks([record.task.id]);
  }

  async onRemoved(taskId: number): Promise<void> {
    this.#storageOf.delete(taskId);
    if (this.#guarded.delete(taskId)) await this.guard.removeTasks([taskId]);
  }

  problems(): CloudProblem[] {
    return this.guard.cloudProblems();
  }

  /** For /status: the guard's state and its open problems (the core's shape, paths `<storageId>/<key>`). */
  status(): { status: CloudGuardStatus; problems: OpenProblem[] } {
    return { status: this.guard.status(), problems: this.guard.problems() };
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
    this.#last = await this.guard.round('scheduled', signal);
    return this.#last;
  }

  /** Rounds every `intervalMs` until `signal` aborts; a failed round is logged and retried next time. */
  async loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted && this.#closed === undefined) {
      if (this.#guarded.size > 0 || this.gate.blockedStorages().length > 0) {
        try {
          await this.round(signal);
        } catch (error) {
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the signal may have been aborted during the await above; TS narrowing does not see that
          if (signal.aborted || this.#closed) return;
          this.#o.logger.error({ err: describeError(error) }, 'cloud listing round failed; next round as scheduled');
        }
      }
      await sleep(this.#o.intervalMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /** Idempotent: stops a round in progress and writes the guard's state. */
  close(): Promise<void> {
    this.#closed ??= this.guard.close();
    return this.#closed;
  }
}
