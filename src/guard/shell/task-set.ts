/**
 * Applies a change of the guarded task set to the index: removes tasks (their files
 * leave the tracker), re-indexes tasks whose file list changed, refreshes only the job
 * list of the others. One bad task is logged and skipped, never fatal.
 */
import { describeError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { GuardFs } from './fsio.js';
import { compileTask } from '../core/mapping.js';
import type { ShareRootResolver } from './paths.js';
import { DirLister } from './related.js';
import type { DirRecord, ShareIndex } from '../core/share-index.js';
import { addTaskToIndex, taskSignature } from './task-files.js';
import type { FileTracker } from '../core/tracker.js';
import type { GuardTask, IndexWarning, RejectedName } from '../types.js';

export interface TaskSetDeps {
  index: ShareIndex;
  tracker: FileTracker;
  fs: GuardFs;
  resolver: ShareRootResolver;
  /** taskId → why it is not guarded (kept up to date here). */
  skipped: Map<number, string>;
  logger: Logger;
  includeUnknownStorage: boolean;
  /** A slot is about to be freed (its last task left). */
  onForget?: (f: number) => void;
  ignoredPrefixes?: readonly string[];
}

export interface TaskSetChange {
  /** New slots, never stat-ed yet. */
  created: number[];
  /** Directories that lost their last expected file. */
  emptied: DirRecord[];
}

function logIndexProblems(logger: Logger, taskId: number, rejected: RejectedName[], warnings: IndexWarning[]): void {
  if (rejected.length) {
    logger.warn(
      { taskId, rejected: rejected.length, names: rejected.slice(0, 5).map((r) => `${r.name} (${r.reason})`) },
      'unsafe share paths rejected (never stat-ed)',
    );
  }
  for (const w of warnings.slice(0, 5)) logger.warn({ taskId, kind: w.kind, path: w.path }, w.message);
  if (warnings.length > 5) logger.warn({ taskId, more: warnings.length - 5 }, 'more index warnings');
}

export async function applyTaskChanges(deps: TaskSetDeps, remove: readonly number[], upsert: readonly GuardTask[]): Promise<TaskSetChange> {
  const { index, tracker, skipped, logger } = deps;
  const ctx = {
    fs: deps.fs,
    resolver: deps.resolver,
    lister: new DirLister(deps.fs, (rel) => deps.resolver.abs(rel)),
    includeUnknownStorage: deps.includeUnknownStorage,
    ...(deps.ignoredPrefixes ? { ignoredPrefixes: deps.ignoredPrefixes } : {}),
  };
  const emptied: DirRecord[] = [];
  const created: number[] = [];
  const drop = (taskId: number) => {
    for (const dir of index.removeTask(taskId, (f) => (tracker.forgetFile(f), deps.onForget?.(f)))) emptied.push(dir);
    tracker.forgetTask(taskId);
  };
  for (const taskId of remove) {
    drop(taskId);
    skipped.delete(taskId);
  }
  for (const task of upsert) {
    try {
      const existing = index.tasks.get(task.taskId);
      if (existing && existing.signature === taskSignature(task)) {
        existing.mapping = compileTask(task);
        continue;
      }
      if (existing) drop(task.taskId);
      const result = await addTaskToIndex(index, task, ctx);
      if (!result.indexed) {
        skipped.set(task.taskId, result.skipped ?? 'skipped');
        continue;
      }
      skipped.delete(task.taskId);
      for (const f of result.created) created.push(f);
      tracker.recountTask(task.taskId);
      logIndexProblems(logger, task.taskId, result.indexed.rejected, result.indexed.warnings);
    } catch (error) {
      skipped.set(task.taskId, describeError(error));
      logger.warn({ taskId: task.taskId, err: describeError(error) }, 'task not guarded: indexing failed');
    }
  }
  return { created, emptied };
}
