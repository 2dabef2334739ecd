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
import { affectedTasksOf } from './shell/alerts.js';
import { withFs, type GuardFs } from './shell/fsio.js';
import { detectFsType } from './shell/fstype.js';
import { earliestOf, mergeJobs, type LastWarmedAt } from './core/mapping.js';
import { ShareRootResolver } from './shell/paths.js';
import { DirLister } from './shell/related.js';
import { statEach } from './shell/scanner.js';
import { ShareIndex } from './core/share-index.js';
import { loadBaselineFiles } from './shell/baseline-file.js';
import { BaselineTable, KeySet, pathKey, type PathKey } from './core/baseline-table.js';
import { errorCode } from './shell/fsio.js';
import { loadState } from './shell/state.js';
import { addTaskToIndex } from './shell/task-files.js';
import { sameAsBaseline } from './core/tracker.js';
import type { AffectedJob, FileStat, GuardTask, IndexWarning, RejectedName } from './types.js';
import { GUARD_DEFAULTS, scanRateFor } from './guard-options.js';

export interface CheckOptions {
  shareDir: string;
  /** Read the guard's baseline/state from here (never written). */
  stateDir?: string;
  includeUnknownStorage?: boolean;
  /** Stats per second (default: see scanRateFor in guard-options.ts). */
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
   * Share tasks keep no copy of their media: CVAT's backups of them do not import before
   * 2.52 (cvat#9972) and lack context images on every version (cvat#9978), so the share
   * files are the only complete copy. Every share task is at
   * risk; `broken` ones already miss a file.
   */
  backupRisk: { atRisk: number; broken: number; tasks: Array<{ taskId: number; taskName?: string; files: number; missing: number; broken: boolean }> };
}

/** A file's verdict, counted once however many tasks read it. */
const Verdict = { present: 1, missing: 2, moved: 3, modified: 4, unreadable: 5 } as const;
type Verdict = (typeof Verdict)[keyof typeof Verdict];

export async function runCheck(tasks: Iterable<GuardTask> | AsyncIterable<GuardTask>, options: CheckOptions): Promise<CheckReport> {
  const logger = options.logger ?? silentLogger();
  const fs = withFs(options.fs);
  const clock = options.clock ?? Date.now;
  const resolver = new ShareRootResolver(path.resolve(options.shareDir), fs);
  const fsInfo = await detectFsType(await resolver.realRoot(), { override: options.fsTypeOverride });
  const ctx = {
    fs,
    resolver,
    lister: new DirLister(fs, (rel) => resolver.abs(rel)),
    includeUnknownStorage: options.includeUnknownStorage ?? GUARD_DEFAULTS.includeUnknownStorage,
  };
  const skipped: Array<{ taskId: number; reason: string }> = [];
  let baseline = new BaselineTable();
  const movedTo = new Map<string, string>();
  if (options.stateDir) {
    const loaded = await loadBaselineFiles(options.stateDir).catch((error: unknown) => {
      logger.warn({ err: error }, 'baseline unreadable; reporting missing files only');
    });
    if (loaded) baseline = loaded.table;
    const state = await loadState(options.stateDir).catch(() => undefined);
    for (const p of state?.problems ?? []) if (p.kind === 'moved' && p.newPath) movedTo.set(p.path, p.newPath);
  }

  // Streaming: each task is indexed on its own, its files stat-ed, its problems kept, and
  // its index dropped, so memory holds one task's files plus a 64-bit key per distinct file.
  const seen = new KeySet();
  const counts = { expected: 0, present: 0, missing: 0, moved: 0, modified: 0, unreadable: 0 };
  const problems: CheckTaskProblem[] = [];
  const warnings: IndexWarning[] = [];
  const backupTasks: CheckReport['backupRisk']['tasks'] = [];
  let rejectedNames = 0;
  let taskCount = 0;
  let shareTasks = 0;
  let scanSeconds = 0;
  for await (const task of tasks) {
    taskCount++;
    const index = new ShareIndex();
    let created: number[];
    try {
      const result = await addTaskToIndex(index, task, ctx);
      if (!result.indexed) {
        skipped.push({ taskId: task.taskId, reason: result.skipped ?? 'skipped' });
        continue;
      }
      created = result.created;
    } catch (error) {
      skipped.push({ taskId: task.taskId, reason: error instanceof Error ? error.message : String(error) });
      logger.warn({ taskId: task.taskId, err: error }, 'task skipped by check');
      continue;
    }
    shareTasks++;
    const keys = new Map<number, PathKey>();
    for (const f of created) {
      const key = pathKey(index.relPath(f));
      keys.set(f, key);
      const st = baseline.unclaimed > 0 ? baseline.get(key) : undefined;
      if (st) index.setBaseline(f, st);
    }
    const verdicts = new Map<number, { verdict: Verdict; code?: string }>();
    const started = performance.now();
    await statEach(index.liveSlotsByDir(), {
      sync: !fsInfo.network,
      concurrency: 32,
      ratePerSecond: scanRateFor(options.scanRatePerSecond, fsInfo.network),
      stopped: () => false,
      statSync: (f) => fs.statSync(index.absPath(f, resolver.root)),
      statAsync: (f) => fs.stat(index.absPath(f, resolver.root)),
      before: () => 0,
      onResult: (f, st: FileStat | null) => {
        const b = index.baseline(f);
        if (!st) verdicts.set(f, { verdict: movedTo.has(index.relPath(f)) ? Verdict.moved : Verdict.missing });
        else if (b && !sameAsBaseline(b, st)) verdicts.set(f, { verdict: Verdict.modified });
        else verdicts.set(f, { verdict: Verdict.present });
      },
      onError: (f, error) => void verdicts.set(f, { verdict: Verdict.unreadable, code: errorCode(error) }),
    });
    scanSeconds += (performance.now() - started) / 1000;

    const indexed = index.tasks.get(task.taskId)!;
    const p: CheckTaskProblem = {
      taskId: task.taskId,
      missing: [],
      moved: [],
      modified: [],
      unreadable: [],
      rejected: indexed.rejected.map(({ name, reason }) => ({ name, reason })),
      jobs: [],
      expiresAt: 'unknown',
    };
    if (indexed.mapping.taskName !== undefined) p.taskName = indexed.mapping.taskName;
    const jobLists: AffectedJob[][] = [];
    const expiries: Array<number | 'unknown'> = [];
    for (const [f, { verdict, code }] of verdicts) {
      const key = keys.get(f)!;
      if (seen.add(key.hi, key.lo)) {
        counts.expected++;
        if (verdict === Verdict.present) counts.present++;
        else if (verdict === Verdict.missing) counts.missing++;
        else if (verdict === Verdict.moved) counts.moved++;
        else if (verdict === Verdict.modified) counts.modified++;
        else counts.unreadable++;
      }
      if (verdict === Verdict.present) continue;
      const rel = index.relPath(f);
      if (verdict === Verdict.unreadable) p.unreadable.push({ path: rel, code: code ?? 'UNKNOWN' });
      else if (verdict === Verdict.modified) p.modified.push(rel);
      else if (verdict === Verdict.moved) p.moved.push({ path: rel, newPath: movedTo.get(rel)! });
      else p.missing.push(rel);
      for (const affected of affectedTasksOf(index, f, options.lastWarmedAt)) {
        jobLists.push(affected.jobs);
        expiries.push(affected.expiresAt);
      }
    }
    warnings.push(...indexed.warnings);
    rejectedNames += indexed.rejected.length;
    const gone = p.missing.length + p.moved.length;
    if (gone + p.modified.length + p.unreadable.length + p.rejected.length > 0) {
      p.jobs = mergeJobs(jobLists);
      p.expiresAt = earliestOf(expiries);
      p.missing.sort();
      p.modified.sort();
      p.moved.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      p.unreadable.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      problems.push(p);
    }
    const entry: CheckReport['backupRisk']['tasks'][number] = { taskId: task.taskId, files: indexed.distinctFiles, missing: gone, broken: gone > 0 };
    if (indexed.mapping.taskName !== undefined) entry.taskName = indexed.mapping.taskName;
    backupTasks.push(entry);
  }

  backupTasks.sort((a, b) => a.taskId - b.taskId);
  problems.sort((a, b) => a.taskId - b.taskId);
  return {
    version: 1,
    generatedAt: new Date(clock()).toISOString(),
    shareDir: resolver.root,
    fsType: fsInfo.fsType,
    network: fsInfo.network,
    ok: counts.missing + counts.moved + counts.modified + counts.unreadable === 0 && rejectedNames === 0,
    totals: {
      tasks: taskCount,
      shareTasks,
      skippedTasks: skipped.length,
      filesExpected: counts.expected,
      filesPresent: counts.present + counts.modified,
      filesMissing: counts.missing,
      filesMoved: counts.moved,
      filesModified: counts.modified,
      statErrors: counts.unreadable,
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
