/**
 * Read-only views of the guard's state for problems(), status() and indexIssues().
 */
import { affectedTask, type LastWarmedAt } from './mapping.js';
import type { ShareIndex } from './share-index.js';
import type { FileTracker } from './tracker.js';
import type { AffectedTask, IndexWarning, OpenProblem, RejectedName } from '../types.js';

export interface IndexIssues {
  rejected: RejectedName[];
  warnings: IndexWarning[];
  skipped: Array<{ taskId: number; reason: string }>;
}

export function openProblems(index: ShareIndex, tracker: FileTracker, lastWarmedAt: LastWarmedAt | undefined): OpenProblem[] {
  const list: OpenProblem[] = [];
  for (const [f, record] of tracker.problems) {
    const tasks = affectedTasksOf(index, f, lastWarmedAt);
    const p: OpenProblem = {
      path: index.relPath(f),
      kind: record.kind,
      role: index.roleOf(f),
      since: record.since,
      taskIds: tasks.map((t) => t.taskId),
      tasks,
    };
    if (record.newPath !== undefined) p.newPath = record.newPath;
    list.push(p);
  }
  return list.sort((a, b) => a.path.localeCompare(b.path));
}

export function indexIssues(index: ShareIndex, skipped: ReadonlyMap<number, string>): IndexIssues {
  const rejected: RejectedName[] = [];
  const warnings: IndexWarning[] = [];
  for (const task of index.tasks.values()) {
    rejected.push(...task.rejected);
    warnings.push(...task.warnings);
  }
  return { rejected, warnings, skipped: [...skipped].map(([taskId, reason]) => ({ taskId, reason })) };
}

export function problemCounts(index: ShareIndex, tracker: FileTracker, skipped: ReadonlyMap<number, string>) {
  const problems = { deleted: 0, moved: 0, modified: 0, pending: tracker.pendingCount };
  for (const record of tracker.problems.values()) problems[record.kind]++;
  const tasksWithProblems = new Set<number>();
  for (const f of tracker.problems.keys()) for (const t of index.taskIdsOf(f)) tasksWithProblems.add(t);
  const issues = indexIssues(index, skipped);
  return {
    tasks: index.tasks.size,
    tasksWithProblems: tasksWithProblems.size,
    filesExpected: index.liveFiles,
    filesWithProblems: tracker.problemFiles,
    problems,
    directories: index.dirCount,
    rejectedNames: issues.rejected.length,
    warnings: issues.warnings.length,
    skippedTasks: issues.skipped.length,
  };
}

/** The tasks a file is expected by, with the jobs and chunks that read it. */
export function affectedTasksOf(index: ShareIndex, f: number, lastWarmedAt: LastWarmedAt | undefined): AffectedTask[] {
  const tasks: AffectedTask[] = [];
  for (const [taskId, frames] of index.refsByTask(f)) {
    const task = index.tasks.get(taskId);
    if (task) tasks.push(affectedTask(task.mapping, frames, lastWarmedAt));
  }
  return tasks.sort((a, b) => a.taskId - b.taskId);
}
