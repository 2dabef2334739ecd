/**
 * What happens to a task discovery found, changed or lost: it goes to the cloud gate, the
 * planner and the scheduler (first when its chunks were rebuilt or a job reopened), the
 * guard and the vault. Keeps what the service reports about tasks: the inventory issues
 * of the last pass and which tasks the guard holds.
 */
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { InventoryIssue, TaskRecord } from '../cvat/inventory.js';
import { toGuardTask, type ShareGuard } from '../guard/index.js';
import type { Logger } from '../log.js';
import { taskSegments } from '../plan/planner.js';
import type { PlanOptions } from '../plan/types.js';
import { planRecord } from '../warm/freshness.js';
import type { Ledger } from '../warm/ledger.js';
import type { CloudComponent } from './cloud-component.js';
import type { Protection } from './protection.js';
import type { WarmScheduler } from './scheduler.js';

export interface TaskIntakeOptions {
  client: CvatClient;
  features: CvatFeatures;
  ledger: Ledger;
  scheduler: WarmScheduler;
  guard: ShareGuard | undefined;
  cloud: CloudComponent;
  protection: Protection | undefined;
  logger: Logger;
  warm: Pick<PlanOptions, 'qualities' | 'contextImages'>;
  /** Tasks whose files the guard checks although CVAT does not say they read the share. */
  shareTasks: readonly number[];
  /** Aborts planning requests when the service stops taking work. */
  signal: AbortSignal;
  /** A task new after the first discovery is urgent; during it every task is new. */
  firstDiscoveryDone: () => boolean;
}

export class TaskIntake {
  readonly #o: TaskIntakeOptions;
  readonly #shareTasks: Set<number>;
  /** The last problem discovery saw per task, cleared when the task reads cleanly again. */
  readonly #issues = new Map<number, InventoryIssue>();
  /** Ids of tasks the guard holds; their file lists live only in the guard's compact index. */
  readonly #guarded = new Set<number>();
  /** Live segments (owner job ids) per task, to put a task first when one of its segments comes alive (a job reopened). */
  readonly #liveSegments = new Map<number, Set<number>>();

  constructor(options: TaskIntakeOptions) {
    this.#o = options;
    this.#shareTasks = new Set(options.shareTasks);
  }

  get issues(): InventoryIssue[] {
    return [...this.#issues.values()];
  }

  hasIssue(taskId: number): boolean {
    return this.#issues.has(taskId);
  }

  get guardedTaskIds(): number[] {
    return [...this.#guarded];
  }

  readonly onIssue = (issue: InventoryIssue): void => {
    if (issue.taskId !== undefined) this.#issues.set(issue.taskId, issue);
    if (issue.severity === 'problem') this.#o.logger.warn({ taskId: issue.taskId, jobId: issue.jobId }, issue.message);
  };

  readonly onRecord = async (record: TaskRecord, isNew: boolean): Promise<void> => {
    const { features, cloud, protection } = this.#o;
    this.#issues.delete(record.task.id);
    await cloud.onRecord(record, features);
    await this.#schedule(record, isNew);
    await this.#guard(record);
    await protection?.onRecord(record, features);
  };

  readonly onRemoved = async (taskId: number): Promise<void> => {
    this.#o.scheduler.remove(taskId);
    await this.#o.cloud.onRemoved(taskId);
    this.#liveSegments.delete(taskId);
    if (this.#guarded.delete(taskId)) await this.#o.guard?.removeTasks([taskId]);
    await this.#o.protection?.onRemoved(taskId);
    this.#issues.delete(taskId);
    this.#o.logger.info({ taskId }, 'task deleted in CVAT: no longer warmed or guarded');
  };

  /** Plans the task and hands it to the scheduler; urgent when new, rebuilt by CVAT or reopened. */
  async #schedule(record: TaskRecord, isNew: boolean): Promise<void> {
    const { client, ledger, features, warm, logger, signal } = this.#o;
    // A segment rebuilt by CVAT (honeypot change) voids its chunks: re-warm that task first.
    const { task, moved } = await planRecord(record, {
      client,
      ledger,
      features,
      qualities: warm.qualities,
      contextImages: warm.contextImages,
      onIssue: this.onIssue,
      signal,
    });
    if (moved.length) logger.info({ taskId: record.task.id, jobs: moved }, 'chunks rebuilt by CVAT since the last pass: re-warming');
    if (!task) return;
    const live = new Set(taskSegments(task, { skipCompleted: true }).map((s) => s.via.id));
    const before = this.#liveSegments.get(task.id);
    this.#liveSegments.set(task.id, live);
    const reopened = before !== undefined && [...live].some((id) => !before.has(id));
    if (reopened) logger.info({ taskId: task.id, segments: [...live].filter((id) => !before.has(id)) }, 'jobs reopened in CVAT: warming their segments first');
    this.#o.scheduler.upsert(task, { urgent: (isNew && this.#o.firstDiscoveryDone()) || moved.length > 0 || reopened });
  }

  /**
   * Hands each task to the guard as it comes: holding every task's frame list until the
   * pass ends would cost gigabytes on a million-file share.
   */
  async #guard(record: TaskRecord): Promise<void> {
    const guard = this.#o.guard;
    const guarded = guard ? toGuardTask(record, this.#o.features, this.#shareTasks) : undefined;
    if (!guard || !guarded) return;
    await guard.upsertTasks([guarded]);
    this.#guarded.add(record.task.id);
  }
}
