/**
 * `cvat-warden impact PATH… | --task ID`: what breaks if these share paths go. The
 * tasks in scope stream from CVAT; only those whose frame names (or context-image
 * folders) can lie under the paths are put in the guard's share index (from CVAT's task
 * data, nothing stat-ed, no share scan), which then answers the tasks, jobs and chunks
 * that read the files. Around that: job state, stage and assignee; when the cached
 * chunks expire (the warm ledger, when this process may read it); whether the vault and
 * a good backup cover each task. Exit 1 when a task not completed reads any of them.
 */
import type { CommandConfig } from '../config/index.js';
import { BackupStore } from '../backup/store.js';
import { restorabilityOf } from '../backup/restorability.js';
import { collectTaskRecords, type InventoryIssue, type Scope } from '../cvat/inventory.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { Job } from '../cvat/shapes.js';
import { ConfigError, EXIT } from '../errors.js';
import {
  addTaskToIndex,
  checkName,
  DirLister,
  impactOf,
  nodeFs,
  resolveUserPath,
  ShareIndex,
  ShareRootResolver,
  toGuardTask,
  type GuardTask,
  type TaskImpact,
} from '../guard/index.js';
import { recoverableFromVault } from '../vault/recoverable.js';
import { createClient, type CommandContext } from './context.js';
import { writeCommandJson } from './json-output.js';
import { openLedgerForReading, requireShareDir } from './shared.js';

/** Paths listed per task in the output (the count is always exact). */
const SAMPLE_FILES = 20;

interface JobInfo {
  state: string | null;
  stage: string | null;
  assignee: string | null;
}

interface ImpactTaskOut {
  taskId: number;
  taskName: string | null;
  /** CVAT's task status (annotation, validation, completed); null when CVAT does not say. */
  status: string | null;
  completed: boolean;
  files: number;
  sampleFiles: string[];
  frames: number;
  jobs: Array<JobInfo & { jobId: number; type: string; chunks: number[]; expiresAt: string }>;
  expiresAt: string;
  expiryNote: string | null;
  vault: { recoverable: number; missing: number; covered: boolean } | null;
  backup: { good: boolean; file: string | null; at: string | null; note: string | null } | null;
}

const iso = (v: number | 'unknown') => (v === 'unknown' ? 'unknown' : new Date(v).toISOString());

function userOf(job: Job): string | null {
  const assignee = (job as { assignee?: unknown }).assignee;
  if (assignee && typeof assignee === 'object' && typeof (assignee as { username?: unknown }).username === 'string')
    return (assignee as { username: string }).username;
  return null;
}

function ancestorsOf(rel: string): string[] {
  const out = [rel];
  for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) out.push(rel.slice(0, i));
  out.push('');
  return out;
}

/**
 * Cheap pre-filter on CVAT's frame names: can this task read anything under the
 * selectors? A frame under one, or a frame with context images whose folder (up to
 * three levels up: `dir/related_images/…`, Supervisely's sibling `related_images/`,
 * KITTI's `IMAGE_NN/`) is an ancestor of one. The index then decides exactly.
 */
function mayRead(task: GuardTask, selectors: ReadonlySet<string>, selectorAncestors: ReadonlySet<string>): boolean {
  if (selectors.has('')) return true;
  const frames = task.meta.frames ?? [];
  const count = task.isVideo ? Math.min(1, frames.length) : frames.length;
  for (let i = 0; i < count; i++) {
    const verdict = checkName(frames[i]!.name);
    if (!verdict.ok) continue;
    let at = verdict.rel;
    for (;;) {
      if (selectors.has(at)) return true;
      const cut = at.lastIndexOf('/');
      if (cut < 0) break;
      at = at.slice(0, cut);
    }
    if ((frames[i]!.related_files ?? 0) > 0) {
      let up = verdict.rel;
      for (let k = 0; k < 3 && up !== ''; k++) up = up.slice(0, Math.max(0, up.lastIndexOf('/')));
      if (selectorAncestors.has(up)) return true;
    }
  }
  return false;
}

export async function runImpact(config: CommandConfig, context: CommandContext): Promise<number> {
  const { logger, signal } = context;
  const shareDir = requireShareDir(config.shareDir);
  const selectors: string[] = [];
  const refused: string[] = [];
  for (const input of config.protection.impactPaths) {
    const verdict = await resolveUserPath(shareDir, input);
    if (verdict.ok) selectors.push(verdict.rel);
    else refused.push(verdict.problem);
  }
  if (refused.length) throw new ConfigError(refused);
  // --task without paths: everything the task reads.
  if (selectors.length === 0) selectors.push('');
  const selectorSet = new Set(selectors);
  const selectorAncestors = new Set(selectors.flatMap(ancestorsOf));
  const scope: Scope = config.scope.taskIds.length + config.scope.projectIds.length > 0 ? config.scope : { ...config.scope, all: true };

  const client = createClient(config.cvat, context);
  const ledger = await openLedgerForReading(config.stateDir, logger);
  context.shutdown.onShutdown('close the ledger', () => ledger.close());
  context.shutdown.onShutdown('close the CVAT client', () => client.close());
  try {
    const features: CvatFeatures = await client.features(signal);
    const issues: InventoryIssue[] = [];
    const fs = nodeFs;
    const resolver = new ShareRootResolver(shareDir, fs);
    const ctx = { fs, resolver, lister: new DirLister(fs, (rel) => resolver.abs(rel)), includeUnknownStorage: !features.storageInMeta };
    const index = new ShareIndex();
    const info = new Map<number, { status: string | null; jobs: Map<number, JobInfo> }>();
    const share = new Set(config.shareTasks);
    let considered = 0;
    for await (const record of collectTaskRecords(client, scope, { features, withMeta: true, signal, onIssue: (i) => issues.push(i) })) {
      considered++;
      const task = toGuardTask(record, features, share);
      if (!task || !mayRead(task, selectorSet, selectorAncestors)) continue;
      const added = await addTaskToIndex(index, task, ctx);
      if (!added.indexed) continue;
      info.set(task.taskId, {
        status: record.task.status ?? null,
        jobs: new Map(record.jobs.map((j) => [j.id, { state: j.state ?? null, stage: j.stage ?? null, assignee: userOf(j) }])),
      });
    }
    const result = impactOf(index, selectors, ledger.lastWarmedAt);

    // Which matched files each task reads (for the vault's answer and the sample).
    const filesOf = new Map<number, string[]>();
    for (const f of result.slots) {
      const rel = index.relPath(f);
      for (const taskId of index.taskIdsOf(f)) {
        let list = filesOf.get(taskId);
        if (!list) filesOf.set(taskId, (list = []));
        list.push(rel);
      }
    }
    const vaultDir = config.protection.vaultDir;
    const vault = vaultDir
      ? await recoverableFromVault(
          vaultDir,
          result.slots.map((f) => index.relPath(f)),
        )
      : undefined;
    const recoverable = new Set(vault?.recoverable);
    const store = config.protection.backupDir ? new BackupStore(config.protection.backupDir) : undefined;

    const tasks: ImpactTaskOut[] = [];
    for (const t of result.tasks)
      tasks.push(await describeTask(t, info.get(t.taskId), filesOf.get(t.taskId) ?? [], recoverable, vault !== undefined && !vault.problem, store, features));
    const blocking = tasks.filter((t) => !t.completed);
    const ledgerNote = ledger.lastWarmedAt
      ? ledger.source === 'read without the lock'
        ? `chunk expiry from the warm ledger in ${config.stateDir}, read beside the service that holds it`
        : null
      : `chunk expiry unknown: no readable warm ledger in ${config.stateDir} (point --state-dir at the service's)`;
    const problems = issues.filter((i) => i.severity === 'problem');
    if (config.json)
      writeCommandJson(context.stdout, 'impact', {
        cvat: { url: client.baseUrl, version: features.version.raw },
        shareDir: resolver.root,
        paths: selectors,
        tasksConsidered: considered,
        files: result.slots.length,
        tasks,
        blockingTasks: blocking.map((t) => t.taskId),
        ledgerNote,
        vault: vault ? { dir: vault.dir, problem: vault.problem ?? null } : null,
        inventoryIssues: issues,
      });
    else context.stdout.write(formatImpact(selectors, result.slots.length, tasks, ledgerNote, vault?.problem, problems.length));
    return blocking.length > 0 || problems.length > 0 ? EXIT.problems : EXIT.ok;
  } finally {
    await ledger.close();
    await client.close();
  }
}

async function describeTask(
  t: TaskImpact,
  info: { status: string | null; jobs: Map<number, JobInfo> } | undefined,
  files: string[],
  recoverable: ReadonlySet<string>,
  haveVault: boolean,
  store: BackupStore | undefined,
  features: CvatFeatures,
): Promise<ImpactTaskOut> {
  const status = info?.status ?? null;
  const inVault = files.filter((f) => recoverable.has(f)).length;
  let backup: ImpactTaskOut['backup'] = null;
  if (store) {
    // Good on this CVAT: judged from what the zip holds when that was recorded, else as recorded when it was made.
    const kept = await store.list(t.taskId);
    const good = kept.find((b) => (b.facts ? restorabilityOf(b.facts, features.version).restorable : b.restorable === true));
    backup = good
      ? { good: true, file: good.file, at: new Date(good.at).toISOString(), note: null }
      : { good: false, file: null, at: null, note: kept.length ? `${kept.length} kept, none CVAT ${features.version.raw} imports` : 'no backup kept' };
  }
  return {
    taskId: t.taskId,
    taskName: t.taskName ?? null,
    status,
    completed: status === 'completed',
    files: t.files,
    sampleFiles: files.sort().slice(0, SAMPLE_FILES),
    frames: t.frames.length,
    jobs: t.jobs.map((j) => ({
      jobId: j.jobId,
      type: j.type,
      ...(info?.jobs.get(j.jobId) ?? { state: null, stage: null, assignee: null }),
      chunks: j.chunks,
      expiresAt: iso(j.expiresAt),
    })),
    expiresAt: iso(t.expiresAt),
    expiryNote: t.expiryNote ?? null,
    vault: haveVault ? { recoverable: inVault, missing: files.length - inVault, covered: files.length > 0 && inVault === files.length } : null,
    backup,
  };
}

function formatImpact(
  selectors: readonly string[],
  files: number,
  tasks: readonly ImpactTaskOut[],
  ledgerNote: string | null,
  vaultProblem: string | undefined,
  inventoryProblems: number,
): string {
  const where = selectors.map((s) => (s === '' ? '(the whole share)' : s)).join(', ');
  const lines = [`${files} expected file(s) under ${where}; ${tasks.length} task(s) read them.`];
  for (const t of tasks) {
    lines.push(
      '',
      `task ${t.taskId}${t.taskName ? ` "${t.taskName}"` : ''}: status ${t.status ?? 'unknown'}${t.completed ? '' : ' (not completed)'}, ${t.files} file(s), ${t.frames} frame(s)`,
    );
    for (const j of t.jobs.slice(0, 50))
      lines.push(
        `  job ${j.jobId} (${j.type}): state ${j.state ?? '?'}, stage ${j.stage ?? '?'}, assignee ${j.assignee ?? '-'}; chunks [${j.chunks.slice(0, 20).join(',')}${j.chunks.length > 20 ? ',…' : ''}] cached until ${j.expiresAt}`,
      );
    if (t.jobs.length > 50) lines.push(`  … (+${t.jobs.length - 50} more jobs)`);
    if (t.expiryNote) lines.push(`  (${t.expiryNote})`);
    if (t.vault) lines.push(`  vault: ${t.vault.recoverable} of ${t.files} file(s) recoverable${t.vault.covered ? '' : ' — NOT covered'}`);
    if (t.backup) lines.push(`  backup: ${t.backup.good ? `good, ${t.backup.at} (${t.backup.file})` : `none good (${t.backup.note})`}`);
    for (const f of t.sampleFiles.slice(0, 5)) lines.push(`  reads ${f}`);
  }
  if (vaultProblem) lines.push('', `vault: ${vaultProblem}`);
  if (ledgerNote) lines.push('', ledgerNote);
  const blocking = tasks.filter((t) => !t.completed).length;
  lines.push(
    '',
    blocking > 0
      ? `Deleting or moving these breaks ${blocking} task(s) not completed (exit 1).`
      : tasks.length > 0
        ? 'Every task that reads them is completed (exit 0); their chunks still go cold once the cached copies expire.'
        : 'No task in scope reads them (exit 0).',
  );
  if (inventoryProblems) lines.push(`${inventoryProblems} problem(s) reading from CVAT: the answer may be incomplete (exit 1).`);
  return `${lines.join('\n')}\n`;
}
