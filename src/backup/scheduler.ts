/**
 * The service's backups: each share task once its data is ready, again after its media
 * or jobs change (the newest `updated_date` of the task and its jobs: CVAT touches the task only when its aggregated status changes), one export at a time
 * (CVAT's export worker is shared with every user's exports). Failures are logged and
 * counted; a failure because a share file is missing names the file and raises the
 * "share task without a good backup" alert through the metrics. A stuck or failing export
 * costs at most --backup-timeout, then waits its retry while the other tasks go first.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import { describeError } from '../errors.js';
import type { GuardTask } from '../guard/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { backupTask, type BackupResult } from './backup-task.js';
import { supportsBackupExport, type ExportOptions } from './cvat-export.js';
import { BackupStore } from './store.js';

/** Series of cvat_warden_task_backup_age_seconds: the tasks with the oldest backups only. */
const AGE_SERIES = 100;

interface TaskState {
  task: GuardTask;
  updatedDate: string | null;
  /** `updated_date` the newest good backup was taken at (null: none yet). */
  backedUpAt: string | null;
  newestGoodMs: number | null;
  /** `updated_date` a backup CVAT would refuse was made at: not made again until the task changes. */
  unrestorableAt: string | null;
  last?: BackupResult;
}

export interface BackupSchedulerOptions {
  client: CvatClient;
  dir: string;
  keep: number;
  logger: Logger;
  metrics: Metrics;
  /** Wait after a failure before that task is tried again. @default 1 h */
  retryAfterMs?: number;
  /** Deadline and size bounds of each export (the signal is the scheduler's own). */
  exportOptions: Omit<ExportOptions, 'signal'>;
  /** Size each task's cap from this share (see BackupTaskDeps.sizeFromShare). */
  sizeFromShare?: string;
  /** Where context images are read from (BackupTaskDeps.shareDir). */
  shareDir?: string;
  now?: () => number;
}

/** What /status says of backups: lists capped at 200 task ids, as the schema says. */
export interface BackupSchedulerStatus {
  dir: string;
  keep: number;
  shareTasks: number;
  withoutGoodBackup: number[];
  madeButNotRestorable: number[];
  cvatVersion: string | null;
  failures: Array<{ taskId: number; outcome: string; message: string; missingFile: string | null }>;
}

export class BackupScheduler {
  readonly store: BackupStore;
  readonly #o: BackupSchedulerOptions;
  readonly #tasks = new Map<number, TaskState>();
  readonly #failedAt = new Map<number, number>();
  /** Attempt number of each task's latest try: the least recently tried due task goes next. */
  readonly #triedAt = new Map<number, number>();
  #attempts = 0;
  readonly #stop = new AbortController();
  #features: CvatFeatures | undefined;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #unsupportedLogged = false;

  constructor(o: BackupSchedulerOptions) {
    this.#o = o;
    this.store = new BackupStore(o.dir);
  }

  /** A share task seen by discovery (new or changed). */
  async upsert(task: GuardTask, updatedDate: string | null, features: CvatFeatures): Promise<void> {
    this.#features = features;
    const known = this.#tasks.get(task.taskId);
    if (known) {
      known.task = task;
      if (known.updatedDate !== updatedDate) this.#failedAt.delete(task.taskId);
      known.updatedDate = updatedDate;
    } else {
      const good = await this.store.newestGood(task.taskId);
      const newest = await this.store.newest(task.taskId);
      this.#tasks.set(task.taskId, {
        task,
        updatedDate,
        backedUpAt: good?.taskUpdatedDate ?? null,
        newestGoodMs: good?.at ?? null,
        unrestorableAt: newest && newest.restorable === false ? newest.taskUpdatedDate : null,
      });
    }
    this.#publish();
    this.#wake?.();
  }

  remove(taskId: number): void {
    this.#tasks.delete(taskId);
    this.#failedAt.delete(taskId);
    this.#triedAt.delete(taskId);
    this.#publish();
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /**
   * The due task tried least recently (never tried first): a task whose export is stuck or
   * failing waits out --backup-timeout once, then every other due task goes before it again.
   */
  #due(): TaskState | undefined {
    const now = (this.#o.now ?? Date.now)();
    let best: TaskState | undefined;
    let bestTried = Infinity;
    for (const state of this.#tasks.values()) {
      if (state.newestGoodMs !== null && state.backedUpAt === state.updatedDate) continue;
      // Exporting again would give the same zip this CVAT refuses: wait for a change (or an upgrade and restart).
      if (state.unrestorableAt !== null && state.unrestorableAt === state.updatedDate) continue;
      const failed = this.#failedAt.get(state.task.taskId);
      if (failed !== undefined && now - failed < (this.#o.retryAfterMs ?? 3_600_000)) continue;
      const tried = this.#triedAt.get(state.task.taskId) ?? -1;
      if (tried < bestTried) {
        best = state;
        bestTried = tried;
      }
    }
    return best;
  }

  async #run(): Promise<void> {
    await this.store.clearTemp();
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const state = this.#features && supportsBackupExport(this.#features) ? this.#due() : undefined;
      if (this.#features && !supportsBackupExport(this.#features) && !this.#unsupportedLogged) {
        this.#unsupportedLogged = true;
        this.#o.logger.error({ version: this.#features.version.raw }, 'CVAT is too old for task backups (needs 2.16 or later): --backup-dir does nothing');
      }
      if (!state) {
        this.#publish();
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          setTimeout(resolve, 60_000).unref();
        });
        this.#wake = undefined;
        continue;
      }
      if (this.#features) await this.#backUp(state, this.#features, signal);
    }
  }

  async #backUp(state: TaskState, features: CvatFeatures, signal: AbortSignal): Promise<void> {
    const updatedDate = state.updatedDate;
    this.#triedAt.set(state.task.taskId, ++this.#attempts);
    let result: BackupResult;
    try {
      result = await backupTask(
        {
          client: this.#o.client,
          features,
          store: this.store,
          keep: this.#o.keep,
          exportOptions: { ...this.#o.exportOptions, signal },
          ...(this.#o.sizeFromShare !== undefined ? { sizeFromShare: this.#o.sizeFromShare } : {}),
          ...(this.#o.shareDir !== undefined ? { shareDir: this.#o.shareDir } : {}),
          ...(this.#o.now ? { now: this.#o.now } : {}),
        },
        state.task,
        updatedDate,
      );
    } catch (error) {
      if (signal.aborted) return;
      result = { taskId: state.task.taskId, outcome: 'failed', message: `backup of task ${state.task.taskId} failed: ${describeError(error)}` };
      await sleep(10_000, undefined, { signal }).catch(() => undefined);
    }
    state.last = result;
    this.#o.metrics.backups.inc({ outcome: result.outcome });
    if (result.outcome === 'done' && result.backup) {
      state.backedUpAt = updatedDate;
      state.newestGoodMs = result.backup.at;
      this.#failedAt.delete(state.task.taskId);
      this.#o.logger.info({ taskId: state.task.taskId, file: result.backup.file, bytes: result.backup.bytes }, result.message);
    } else if (result.outcome === 'unrestorable') {
      state.unrestorableAt = updatedDate;
      // An error, not info: the task has no good backup, and the alert says so.
      this.#o.logger.error(
        { taskId: state.task.taskId, outcome: result.outcome, file: result.backup?.file ?? null, cvatVersion: this.#features?.version.raw ?? null },
        result.message,
      );
    } else {
      this.#failedAt.set(state.task.taskId, (this.#o.now ?? Date.now)());
      this.#o.logger.error(
        { taskId: state.task.taskId, outcome: result.outcome, missingFile: result.missingFile ?? null, newestGood: result.newestGood?.file ?? null },
        result.message,
      );
    }
    this.#publish();
  }

  #publish(): void {
    const now = (this.#o.now ?? Date.now)();
    const m = this.#o.metrics;
    let without = 0;
    let current = 0;
    const ages: Array<[number, number]> = [];
    for (const s of this.#tasks.values()) {
      if (s.newestGoodMs === null) without++;
      else {
        ages.push([s.task.taskId, (now - s.newestGoodMs) / 1000]);
        if (s.backedUpAt === s.updatedDate) current++;
      }
    }
    m.shareTasksWithoutBackup.set(without);
    m.shareTasksBackedUp.set(current);
    m.taskBackupAge.reset();
    for (const [taskId, age] of ages.sort((a, b) => b[1] - a[1]).slice(0, AGE_SERIES)) m.taskBackupAge.set({ task_id: String(taskId) }, age);
  }

  /** Idle = nothing due (tests). */
  get pending(): number {
    let n = 0;
    for (const s of this.#tasks.values())
      if ((s.newestGoodMs === null || s.backedUpAt !== s.updatedDate) && !(s.unrestorableAt !== null && s.unrestorableAt === s.updatedDate)) n++;
    return n;
  }

  /** /status `protection.backups` (schemas/status.schema.json). */
  status(): BackupSchedulerStatus {
    const tasks = [...this.#tasks.values()];
    return {
      dir: this.store.dir,
      keep: this.#o.keep,
      shareTasks: tasks.length,
      withoutGoodBackup: tasks
        .filter((s) => s.newestGoodMs === null)
        .map((s) => s.task.taskId)
        .slice(0, 200),
      /** Tasks whose newest backup was made but this CVAT would refuse to import (restorability.ts). */
      madeButNotRestorable: tasks
        .filter((s) => s.newestGoodMs === null && s.unrestorableAt !== null)
        .map((s) => s.task.taskId)
        .slice(0, 200),
      cvatVersion: this.#features?.version.raw ?? null,
      failures: tasks
        .flatMap((s) =>
          s.last && s.last.outcome !== 'done'
            ? [{ taskId: s.task.taskId, outcome: s.last.outcome, message: s.last.message, missingFile: s.last.missingFile ?? null }]
            : [],
        )
        .slice(0, 200),
    };
  }

  async close(): Promise<void> {
    this.#stop.abort();
    this.#wake?.();
    await this.#loop;
  }
}
