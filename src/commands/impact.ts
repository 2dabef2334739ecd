/**
 * `cvat-warden impact PATH… | --task ID`: what breaks if these share paths go. The
 * tasks in scope stream from CVAT; only those whose frame names (or context-image
 * folders) can lie under the paths are put in the guard's share index (from CVAT's task
 * data, nothing stat-ed, no share scan), which then answers the tasks, jobs and chunks
 * that read the files. Around that: job state, stage and assignee; when the cached
 * chunks expire (the warm ledger, when this process may read it); whether the vault and
 * a good backup cover each task. Exit 1 when a task not completed reads any of them.
 */
import path from 'node:path';
import type { CommandConfig } from '../config/index.js';
import { BackupStore } from '../backup/store.js';
import { restorabilityOf } from '../backup/restorability.js';
import type { CvatClient } from '../cvat/client.js';
import { collectTaskRecords, type InventoryIssue, type Scope, type TaskRecord } from '../cvat/inventory.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { Job } from '../cvat/shapes.js';
import { IMPACT_MAX_PATHS, IMPACT_MAX_TASKS } from '../daemon/impact-route.js';
import { ConfigError, EXIT, describeError } from '../errors.js';
import {
  addTaskToIndex,
  checkName,
  DirLister,
  impactAnswer,
  nodeFs,
  resolveUserPath,
  ShareIndex,
  ShareRootResolver,
  toGuardTask,
  type GuardTask,
  type ImpactAnswer,
  type LastWarmedAt,
  type TaskImpact,
} from '../guard/index.js';
import type { Logger } from '../log.js';
import { recoverableFromVault } from '../vault/recoverable.js';
import { createClient, type CommandContext } from './context.js';
import { writeCommandJson } from './json-output.js';
import { parseImpactAnswer } from './impact-answer.js';
import { getServiceText, serviceUrl } from './service-client.js';
import { openLedgerForReading, requireShareDir } from './shared.js';

/** Paths listed per task in the output (the count is always exact). */
const SAMPLE_FILES = 20;
/** The service answers from memory; its answer names every matched file (tens of MB at a million). */
const SERVICE_LIMITS = { timeoutMs: 30_000, maxBytes: 512 * 1024 * 1024 };

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

interface TaskInfo {
  status: string | null;
  jobs: Map<number, JobInfo>;
}

/** The index's answer and CVAT's word on the tasks in it, from the running service or built here. */
interface Found {
  answer: ImpactAnswer;
  info: Map<number, TaskInfo>;
  /** Task records read from CVAT. */
  considered: number;
  answeredBy: 'service' | 'cvat';
}

const infoOf = (record: TaskRecord): TaskInfo => ({
  status: record.task.status ?? null,
  jobs: new Map(record.jobs.map((j) => [j.id, { state: j.state ?? null, stage: j.stage ?? null, assignee: userOf(j) }])),
});

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
  const scope: Scope = config.scope.taskIds.length + config.scope.projectIds.length > 0 ? config.scope : { ...config.scope, all: true };

  const client = createClient(config.cvat, context);
  const ledger = await openLedgerForReading(config.stateDir, logger);
  context.shutdown.onShutdown('close the ledger', () => ledger.close());
  context.shutdown.onShutdown('close the CVAT client', () => client.close());
  try {
    const features: CvatFeatures = await client.features(signal);
    const issues: InventoryIssue[] = [];
    const onIssue = (issue: InventoryIssue) => issues.push(issue);
    const fromService = await askService(config.listen, selectors, config.scope.taskIds, logger);
    const found = fromService
      ? await describeServiceAnswer(fromService, { client, features, scope, onIssue, signal })
      : await indexFromCvat(selectors, {
          client,
          features,
          scope,
          onIssue,
          signal,
          shareDir,
          shareTasks: config.shareTasks,
          lastWarmedAt: ledger.lastWarmedAt,
        });
    const { answer, info } = found;

    const vaultDir = config.protection.vaultDir;
    const vault = vaultDir ? await recoverableFromVault(vaultDir, [...new Set(answer.filesOf.flat())]) : undefined;
    const recoverable = new Set(vault?.recoverable);
    const store = config.protection.backupDir ? new BackupStore(config.protection.backupDir) : undefined;

    const tasks: ImpactTaskOut[] = [];
    for (const [i, t] of answer.tasks.entries())
      tasks.push(await describeTask(t, info.get(t.taskId), answer.filesOf[i] ?? [], recoverable, vault !== undefined && !vault.problem, store, features));
    const blocking = tasks.filter((t) => !t.completed);
    const ledgerNote =
      found.answeredBy === 'service'
        ? null
        : ledger.lastWarmedAt
          ? ledger.source === 'read without the lock'
            ? `chunk expiry from the warm ledger in ${config.stateDir}, read beside the service that holds it`
            : null
          : `chunk expiry unknown: no readable warm ledger in ${config.stateDir} (point --state-dir at the service's)`;
    const problems = issues.filter((i) => i.severity === 'problem');
    if (config.json)
      writeCommandJson(context.stdout, 'impact', {
        cvat: { url: client.baseUrl, version: features.version.raw },
        shareDir: path.resolve(shareDir),
        paths: selectors,
        answeredBy: found.answeredBy,
        tasksConsidered: found.considered,
        files: answer.files,
        tasks,
        blockingTasks: blocking.map((t) => t.taskId),
        ledgerNote,
        vault: vault ? { dir: vault.dir, problem: vault.problem ?? null } : null,
        inventoryIssues: issues,
      });
    else context.stdout.write(formatImpact(selectors, answer.files, tasks, ledgerNote, vault?.problem, problems.length, found.answeredBy));
    return blocking.length > 0 || problems.length > 0 ? EXIT.problems : EXIT.ok;
  } finally {
    await ledger.close();
    await client.close();
  }
}

interface CvatReads {
  client: CvatClient;
  features: CvatFeatures;
  scope: Scope;
  onIssue: (issue: InventoryIssue) => void;
  signal: AbortSignal;
}

/**
 * The running service's guard holds the share index already: ask it (GET /impact), then CVAT
 * only about the tasks in the answer. Undefined when no service answers as one (none there,
 * an older one, something else on the port): the caller builds the index itself.
 */
async function askService(
  listen: { host: string; port: number },
  selectors: readonly string[],
  taskIds: readonly number[],
  logger: Logger,
): Promise<ImpactAnswer | undefined> {
  const base = serviceUrl(listen);
  if (!base || selectors.length > IMPACT_MAX_PATHS || taskIds.length > IMPACT_MAX_TASKS) return undefined;
  const query = new URLSearchParams();
  for (const s of selectors) query.append('path', s);
  for (const id of taskIds) query.append('task', String(id));
  try {
    const answer = parseImpactAnswer(JSON.parse(await getServiceText(`${base}/impact?${query.toString()}`, SERVICE_LIMITS)));
    if (answer) return answer;
    logger.info({ service: base }, 'the service did not answer /impact as cvat-warden does; building the share index from CVAT instead');
  } catch (error) {
    logger.info(
      { service: base, err: describeError(error) },
      'no running service answered /impact; building the share index from CVAT (slow on a large share)',
    );
  }
  return undefined;
}

async function describeServiceAnswer(answer: ImpactAnswer, reads: CvatReads): Promise<Found> {
  const info = new Map<number, TaskInfo>();
  let considered = 0;
  if (answer.tasks.length > 0) {
    const ids: Scope = { all: false, taskIds: answer.tasks.map((t) => t.taskId), projectIds: [], jobIds: [] };
    const options = { features: reads.features, withMeta: false, signal: reads.signal, onIssue: reads.onIssue };
    for await (const record of collectTaskRecords(reads.client, ids, options)) {
      considered++;
      // The service guards its own scope; keep only the tasks of this command's projects.
      if (reads.scope.projectIds.length > 0 && !reads.scope.projectIds.includes(record.task.project_id ?? -1)) continue;
      info.set(record.task.id, infoOf(record));
    }
  }
  const keep = answer.tasks.map((t) => info.has(t.taskId) || reads.scope.projectIds.length === 0);
  const tasks = answer.tasks.filter((_, i) => keep[i]);
  const filesOf = answer.filesOf.filter((_, i) => keep[i]);
  return { answer: { files: new Set(filesOf.flat()).size, tasks, filesOf }, info, considered, answeredBy: 'service' };
}

/** Without a service: stream every task in scope from CVAT and index only those that may read the paths. */
async function indexFromCvat(
  selectors: readonly string[],
  reads: CvatReads & { shareDir: string; shareTasks: readonly number[]; lastWarmedAt: LastWarmedAt | undefined },
): Promise<Found> {
  const selectorSet = new Set(selectors);
  const selectorAncestors = new Set(selectors.flatMap(ancestorsOf));
  const fs = nodeFs;
  const resolver = new ShareRootResolver(reads.shareDir, fs);
  const ctx = { fs, resolver, lister: new DirLister(fs, (rel) => resolver.abs(rel)), includeUnknownStorage: !reads.features.storageInMeta };
  const index = new ShareIndex();
  const info = new Map<number, TaskInfo>();
  const share = new Set(reads.shareTasks);
  let considered = 0;
  const options = { features: reads.features, withMeta: true, signal: reads.signal, onIssue: reads.onIssue };
  for await (const record of collectTaskRecords(reads.client, reads.scope, options)) {
    considered++;
    const task = toGuardTask(record, reads.features, share);
    if (!task || !mayRead(task, selectorSet, selectorAncestors)) continue;
    const added = await addTaskToIndex(index, task, ctx);
    if (added.indexed) info.set(task.taskId, infoOf(record));
  }
  return { answer: impactAnswer(index, selectors, reads.lastWarmedAt), info, considered, answeredBy: 'cvat' };
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
  answeredBy: Found['answeredBy'],
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
  if (answeredBy === 'service') lines.push('', "From the running service's share index and warm ledger; job states from CVAT.");
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
