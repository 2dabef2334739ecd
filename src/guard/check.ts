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

interface CheckContext {
  fs: GuardFs;
  resolver: ShareRootResolver;
  lister: DirLister;
  includeUnknownStorage: boolean;
  network: boolean;
  baseline: BaselineTable;
  /** Files the guard last saw moved, with where to. */
  movedTo: Map<string, string>;
  options: CheckOptions;
}

type Counts = { expected: number; present: number; missing: number; moved: number; modified: number; unreadable: number };
type Verdicts = Map<number, { verdict: Verdict; code?: string }>;

/** The guard's baseline and its last known moves, read-only (check never fights run for the state). */
async function loadCheckState(options: CheckOptions, logger: Logger): Promise<{ baseline: BaselineTable; movedTo: Map<string, string> }> {
  let baseline = new BaselineTable();
  const movedTo = new Map<string, string>();
  if (!options.stateDir) return { baseline, movedTo };
  const loaded = await loadBaselineFiles(options.stateDir).catch((error: unknown) => {
    logger.warn({ err: error }, 'baseline unreadable; reporting missing files only');
  });
  if (loaded) baseline = loaded.table;
  const state = await loadState(options.stateDir).catch(() => undefined);
  for (const p of state?.problems ?? []) if (p.kind === 'moved' && p.newPath) movedTo.set(p.path, p.newPath);
  return { baseline, movedTo };
}

/** Stats every file of one task's index and judges it against the baseline; returns the verdicts and the seconds it took. */
async function statTask(index: ShareIndex, ctx: CheckContext): Promise<{ verdicts: Verdicts; seconds: number }> {
  const { fs, resolver, movedTo } = ctx;
  const verdicts: Verdicts = new Map();
  const started = performance.now();
  await statEach(index.liveSlotsByDir(), {
    sync: !ctx.network,
    concurrency: 32,
    ratePerSecond: scanRateFor(ctx.options.scanRatePerSecond, ctx.network),
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
  return { verdicts, seconds: (performance.now() - started) / 1000 };
}

const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** One task's problems from its verdicts; distinct files are counted once across tasks (`seen`). */
function taskProblems(
  index: ShareIndex,
  taskId: number,
  verdicts: Verdicts,
  keys: Map<number, PathKey>,
  run: { seen: KeySet; counts: Counts; ctx: CheckContext },
): CheckTaskProblem {
  const indexed = index.tasks.get(taskId)!;
  const p: CheckTaskProblem = {
    taskId,
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
  const { counts } = run;
  for (const [f, { verdict, code }] of verdicts) {
    const key = keys.get(f)!;
    if (run.seen.add(key.hi, key.lo)) {
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
    else if (verdict === Verdict.moved) p.moved.push({ path: rel, newPath: run.ctx.movedTo.get(rel)! });
    else p.missing.push(rel);
    for (const affected of affectedTasksOf(index, f, run.ctx.options.lastWarmedAt)) {
      jobLists.push(affected.jobs);
      expiries.push(affected.expiresAt);
    }
  }
  p.jobs = mergeJobs(jobLists);
  p.expiresAt = earliestOf(expiries);
  p.missing.sort();
  p.modified.sort();
  p.moved.sort(byPath);
  p.unreadable.sort(byPath);
  return p;
}

interface CheckRun {
  ctx: CheckContext;
  seen: KeySet;
  counts: Counts;
  problems: CheckTaskProblem[];
  warnings: IndexWarning[];
  skipped: Array<{ taskId: number; reason: string }>;
  backupTasks: CheckReport['backupRisk']['tasks'];
  rejectedNames: number;
  shareTasks: number;
  scanSeconds: number;
}

/** Indexes one task on its own, stats its files, keeps its problems; its index is dropped after. */
async function checkTask(task: GuardTask, run: CheckRun, logger: Logger): Promise<void> {
  const index = new ShareIndex();
  let created: number[];
  try {
    const result = await addTaskToIndex(index, task, run.ctx);
    if (!result.indexed) {
      run.skipped.push({ taskId: task.taskId, reason: result.skipped ?? 'skipped' });
      return;
    }
    created = result.created;
  } catch (error) {
    run.skipped.push({ taskId: task.taskId, reason: error instanceof Error ? error.message : String(error) });
    logger.warn({ taskId: task.taskId, err: error }, 'task skipped by check');
    return;
  }
  run.shareTasks++;
  const keys = new Map<number, PathKey>();
  for (const f of created) {
    const key = pathKey(index.relPath(f));
    keys.set(f, key);
    const st = run.ctx.baseline.unclaimed > 0 ? run.ctx.baseline.get(key) : undefined;
    if (st) index.setBaseline(f, st);
  }
  const { verdicts, seconds } = await statTask(index, run.ctx);
  run.scanSeconds += seconds;
  const indexed = index.tasks.get(task.taskId)!;
  const p = taskProblems(index, task.taskId, verdicts, keys, run);
  run.warnings.push(...indexed.warnings);
  run.rejectedNames += indexed.rejected.length;
  const gone = p.missing.length + p.moved.length;
  if (gone + p.modified.length + p.unreadable.length + p.rejected.length > 0) run.problems.push(p);
  const entry: CheckReport['backupRisk']['tasks'][number] = { taskId: task.taskId, files: indexed.distinctFiles, missing: gone, broken: gone > 0 };
  if (indexed.mapping.taskName !== undefined) entry.taskName = indexed.mapping.taskName;
  run.backupTasks.push(entry);
}

export async function runCheck(tasks: Iterable<GuardTask> | AsyncIterable<GuardTask>, options: CheckOptions): Promise<CheckReport> {
  const logger = options.logger ?? silentLogger();
  const fs = withFs(options.fs);
  const clock = options.clock ?? Date.now;
  const resolver = new ShareRootResolver(path.resolve(options.shareDir), fs);
  const fsInfo = await detectFsType(await resolver.realRoot(), { override: options.fsTypeOverride });
  const ctx: CheckContext = {
    fs,
    resolver,
    lister: new DirLister(fs, (rel) => resolver.abs(rel)),
    includeUnknownStorage: options.includeUnknownStorage ?? GUARD_DEFAULTS.includeUnknownStorage,
    network: fsInfo.network,
    ...(await loadCheckState(options, logger)),
    options,
  };
  // Streaming: each task is indexed on its own, its files stat-ed, its problems kept, and
  // its index dropped, so memory holds one task's files plus a 64-bit key per distinct file.
  const counts: Counts = { expected: 0, present: 0, missing: 0, moved: 0, modified: 0, unreadable: 0 };
  const run: CheckRun = {
    ctx,
    seen: new KeySet(),
    counts,
    problems: [],
    warnings: [],
    skipped: [],
    backupTasks: [],
    rejectedNames: 0,
    shareTasks: 0,
    scanSeconds: 0,
  };
  let taskCount = 0;
  for await (const task of tasks) {
    taskCount++;
    await checkTask(task, run, logger);
  }
  const { problems, warnings, skipped, backupTasks, rejectedNames } = run;
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
      shareTasks: run.shareTasks,
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
      scanSeconds: Math.round(run.scanSeconds * 1000) / 1000,
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
