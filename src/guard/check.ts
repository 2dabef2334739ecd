/**
 * One-pass check (`cvat-warden check`): index the tasks as they stream in (each task's
 * frame list is dropped once indexed, so a million files never sit in memory twice),
 * stat every expected file once, report. No watching, nothing written. With a
 * `stateDir` the persisted baseline is read (read-only) to also report files changed
 * since it was taken, and open `moved` problems keep their known new path. A file that
 * cannot be stat-ed (EACCES, EIO…) is a problem of its own kind: `unreadable`.
 */
import path from 'node:path';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { affectedTasksOf } from './alerts.js';
import { withFs, type GuardFs } from './fsio.js';
import { detectFsType } from './fstype.js';
import { earliestOf, mergeJobs, type LastWarmedAt } from './mapping.js';
import { ShareRootResolver } from './paths.js';
import { DirLister } from './related.js';
import { statEach } from './scanner.js';
import { ShareIndex } from './share-index.js';
import { loadBaselineFiles } from './baseline-file.js';
import { BaselineTable, pathKey } from './baseline-table.js';
import { errorCode } from './fsio.js';
import { loadState } from './state.js';
import { addTaskToIndex } from './task-files.js';
import { sameAsBaseline } from './tracker.js';
import type { AffectedJob, FileStat, GuardTask, IndexWarning, RejectedName } from './types.js';

export interface CheckOptions {
  shareDir: string;
  /** Read the guard's baseline/state from here (never written). */
  stateDir?: string;
  includeUnknownStorage?: boolean;
  /** @default unlimited on local disks, 2000 on network filesystems */
  scanRatePerSecond?: number;
  fsTypeOverride?: string;
  lastWarmedAt?: LastWarmedAt;
  logger?: Logger;
  fs?: Partial<GuardFs>;
  clock?: () => number;
}

export interface CheckTaskProblem {
  taskId: number;
  taskName?: string;
  missing: string[];
  moved: Array<{ path: string; newPath: string }>;
  modified: string[];
  /** Present or not, the guard cannot stat them (permissions, I/O errors): CVAT may not read them either. */
  unreadable: Array<{ path: string; code: string }>;
  rejected: Array<{ name: string; reason: RejectedName['reason'] }>;
  /** Jobs and job-relative chunk indexes that read a missing/moved/modified file. */
  jobs: AffectedJob[];
  expiresAt: number | 'unknown';
}

export interface CheckReport {
  version: 1;
  generatedAt: string;
  shareDir: string;
  fsType: string;
  network: boolean;
  /** true when every expected file is present and unchanged and no name was rejected. */
  ok: boolean;
  totals: {
    tasks: number;
    shareTasks: number;
    skippedTasks: number;
    filesExpected: number;
    filesPresent: number;
    filesMissing: number;
    filesMoved: number;
    filesModified: number;
    /** Files that could not be stat-ed (each one is in its task's `unreadable`). */
    statErrors: number;
    rejectedNames: number;
    warnings: number;
    problemTasks: number;
    scanSeconds: number;
  };
  problems: CheckTaskProblem[];
  warnings: IndexWarning[];
  skipped: Array<{ taskId: number; reason: string }>;
  /**
   * Share tasks keep no copy of their media: CVAT's backups of them are unreliable
   * (cvat#8297, #4989), so the share files are the only copy. Every share task is at
   * risk; `broken` ones already miss a file.
   */
  backupRisk: { atRisk: number; broken: number; tasks: Array<{ taskId: number; taskName?: string; files: number; missing: number; broken: boolean }> };
}

export async function runCheck(tasks: Iterable<GuardTask> | AsyncIterable<GuardTask>, options: CheckOptions): Promise<CheckReport> {
  const logger = options.logger ?? silentLogger();
  const fs = withFs(options.fs);
  const clock = options.clock ?? Date.now;
  const resolver = new ShareRootResolver(path.resolve(options.shareDir), fs);
  const index = new ShareIndex();
  const fsInfo = await detectFsType(await resolver.realRoot(), { override: options.fsTypeOverride });
  const ctx = { fs, resolver, lister: new DirLister(fs, (rel) => resolver.abs(rel)), includeUnknownStorage: options.includeUnknownStorage ?? false };
  const skipped: Array<{ taskId: number; reason: string }> = [];
  const baseline = new BaselineTable();
  const movedTo = new Map<string, string>();
  if (options.stateDir) {
    await loadBaselineFiles(options.stateDir, baseline).catch((error: unknown) => logger.warn({ err: error }, 'baseline unreadable; reporting missing files only'));
    const state = await loadState(options.stateDir).catch(() => undefined);
    for (const p of state?.problems ?? []) if (p.kind === 'moved' && p.newPath) movedTo.set(p.path, p.newPath);
  }
  let taskCount = 0;
  for await (const task of tasks) {
    taskCount++;
    try {
      const result = await addTaskToIndex(index, task, ctx);
      if (!result.indexed) skipped.push({ taskId: task.taskId, reason: result.skipped ?? 'skipped' });
      if (baseline.unclaimed > 0) {
        for (const f of result.created) {
          const st = baseline.take(pathKey(index.relPath(f)));
          if (st) index.setBaseline(f, st);
        }
      }
    } catch (error) {
      skipped.push({ taskId: task.taskId, reason: error instanceof Error ? error.message : String(error) });
      logger.warn({ taskId: task.taskId, err: error }, 'task skipped by check');
    }
  }

  const ids = index.liveSlotsByDir();
  const missing = new Set<number>();
  const modified = new Set<number>();
  const unreadable = new Map<number, string>();
  const started = performance.now();
  await statEach(ids, {
    sync: !fsInfo.network,
    concurrency: 32,
    ratePerSecond: options.scanRatePerSecond ?? (fsInfo.network ? 2000 : Infinity),
    stopped: () => false,
    statSync: (f) => fs.statSync(index.absPath(f, resolver.root)),
    statAsync: (f) => fs.stat(index.absPath(f, resolver.root)),
    before: () => 0,
    onResult: (f, st: FileStat | null) => {
      const b = index.baseline(f);
      if (!st) missing.add(f);
      else if (b && !sameAsBaseline(b, st)) modified.add(f);
    },
    onError: (f, error) => void unreadable.set(f, errorCode(error)),
  });
  const scanSeconds = (performance.now() - started) / 1000;

  const perTask = new Map<number, CheckTaskProblem>();
  const jobLists = new Map<number, AffectedJob[][]>();
  const expiries = new Map<number, Array<number | 'unknown'>>();
  const problemOf = (taskId: number): CheckTaskProblem => {
    let p = perTask.get(taskId);
    if (!p) {
      const task = index.tasks.get(taskId)!;
      p = { taskId, missing: [], moved: [], modified: [], unreadable: [], rejected: task.rejected.map(({ name, reason }) => ({ name, reason })), jobs: [], expiresAt: 'unknown' };
      if (task.mapping.taskName !== undefined) p.taskName = task.mapping.taskName;
      perTask.set(taskId, p);
    }
    return p;
  };
  let filesMoved = 0;
  for (const f of [...missing, ...modified, ...unreadable.keys()]) {
    const rel = index.relPath(f);
    const code = unreadable.get(f);
    const newPath = code === undefined ? movedTo.get(rel) : undefined;
    if (newPath) filesMoved++;
    for (const affected of affectedTasksOf(index, f, options.lastWarmedAt)) {
      const p = problemOf(affected.taskId);
      if (code !== undefined) p.unreadable.push({ path: rel, code });
      else if (modified.has(f)) p.modified.push(rel);
      else if (newPath) p.moved.push({ path: rel, newPath });
      else p.missing.push(rel);
      let lists = jobLists.get(affected.taskId);
      if (!lists) jobLists.set(affected.taskId, (lists = []));
      lists.push(affected.jobs);
      let e = expiries.get(affected.taskId);
      if (!e) expiries.set(affected.taskId, (e = []));
      e.push(affected.expiresAt);
    }
  }
  const warnings: IndexWarning[] = [];
  let rejectedNames = 0;
  for (const [taskId, task] of index.tasks) {
    warnings.push(...task.warnings);
    rejectedNames += task.rejected.length;
    if (task.rejected.length) problemOf(taskId);
  }
  for (const [taskId, p] of perTask) {
    p.jobs = mergeJobs(jobLists.get(taskId) ?? []);
    p.expiresAt = earliestOf(expiries.get(taskId) ?? []);
    p.missing.sort();
    p.modified.sort();
    p.unreadable.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  const backupTasks = [...index.tasks].map(([taskId, task]) => {
    const p = perTask.get(taskId);
    const entry: CheckReport['backupRisk']['tasks'][number] = {
      taskId,
      files: task.distinctFiles,
      missing: p ? p.missing.length + p.moved.length : 0,
      broken: !!p && p.missing.length + p.moved.length > 0,
    };
    if (task.mapping.taskName !== undefined) entry.taskName = task.mapping.taskName;
    return entry;
  });
  backupTasks.sort((a, b) => a.taskId - b.taskId);
  const problems = [...perTask.values()].sort((a, b) => a.taskId - b.taskId);
  const filesExpected = index.liveFiles;
  return {
    version: 1,
    generatedAt: new Date(clock()).toISOString(),
    shareDir: resolver.root,
    fsType: fsInfo.fsType,
    network: fsInfo.network,
    ok: missing.size === 0 && modified.size === 0 && unreadable.size === 0 && rejectedNames === 0,
    totals: {
      tasks: taskCount,
      shareTasks: index.tasks.size,
      skippedTasks: skipped.length,
      filesExpected,
      filesPresent: filesExpected - missing.size - unreadable.size,
      filesMissing: missing.size - filesMoved,
      filesMoved,
      filesModified: modified.size,
      statErrors: unreadable.size,
      rejectedNames,
      warnings: warnings.length,
      problemTasks: problems.length,
      scanSeconds: Math.round(scanSeconds * 1000) / 1000,
    },
    problems,
    warnings,
    skipped,
    backupRisk: { atRisk: backupTasks.length, broken: backupTasks.filter((t) => t.broken).length, tasks: backupTasks },
  };
}

/** CLI exit code for a report: 0 all present and readable, 1 problems found. */
export function checkExitCode(report: CheckReport): 0 | 1 {
  return report.ok ? 0 : 1;
}

export { formatCheckReport } from './check-format.js';
