/**
 * Gathers the tasks and jobs in scope from CVAT (the I/O half of planning). One bad
 * task — malformed, deleted mid-run, without data — is reported and skipped; only
 * unreachable CVAT and refused credentials stop the walk. It belongs with the client:
 * the planner and the guard both consume its records.
 */
import { getMaxListeners, setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import type { CvatClient } from './client.js';
import type { CvatFeatures } from './features.js';
import type { DataMeta, Job, Task } from './shapes.js';
import { keepSaneJobs } from './sanity.js';
import { JobsByTask } from './jobs-by-task.js';
import { CvatHttpError, WardenError, describeError } from '../errors.js';

/** Which tasks and jobs a command works on (`--all`, `--task`, `--project`, `--job`). */
export interface Scope {
  all: boolean;
  taskIds: number[];
  projectIds: number[];
  jobIds: number[];
}

export interface TaskRecord {
  task: Task;
  jobs: Job[];
  /** Task data/meta; present when asked for and well-formed. */
  meta?: DataMeta;
  /** Job data/meta of ground-truth jobs (their included_frames), on every version that has them. */
  jobMetas: Map<number, DataMeta>;
}

export interface InventoryIssue {
  taskId?: number | undefined;
  jobId?: number | undefined;
  /** `skipped` is expected (no data yet); `problem` means something is wrong and counts as a failure. */
  severity: 'skipped' | 'problem';
  message: string;
}

export interface InventoryOptions {
  features: CvatFeatures;
  /** Fetch task data/meta (needed for context images, chunk dates, storage, legacy GT jobs). */
  withMeta: boolean;
  signal?: AbortSignal;
  onIssue: (issue: InventoryIssue) => void;
  /** Tasks whose extras (jobs, data/meta, GT job meta) are fetched at once; polite to CVAT. @default 4 */
  concurrency?: number;
  /**
   * The tasks are all of CVAT's (a first discovery, `--all`): their jobs come from one
   * listing sorted by task, a request per page, instead of one list per task.
   */
  listAllJobs?: boolean;
  /** Called every `progressEvery` tasks handed out (long first discoveries log their progress). */
  onProgress?: (done: number, total: number) => void;
  progressEvery?: number;
}

/** Default of `InventoryOptions.concurrency`. */
export const DEFAULT_INVENTORY_CONCURRENCY = 4;

function isFatal(error: unknown): boolean {
  return (
    error instanceof WardenError && ['CVAT_UNREACHABLE', 'CVAT_AUTH_REFUSED', 'CVAT_FORBIDDEN', 'CVAT_UNSUPPORTED_VERSION', 'ABORTED'].includes(error.code)
  );
}

/** Task ids (and job filters) that make up the scope. */
async function resolveScope(client: CvatClient, scope: Scope, options: InventoryOptions): Promise<{ tasks: Task[]; jobFilter?: Map<number, Set<number>> }> {
  const tasks = new Map<number, Task>();
  const addChecked = (checked: Awaited<ReturnType<CvatClient['task']>>) => {
    if (checked.ok) tasks.set(checked.value.id, checked.value);
    else options.onIssue({ taskId: checked.id, severity: 'problem', message: checked.problem });
  };
  if (scope.all) {
    for await (const checked of client.tasks({ sort: 'id' }, options.signal)) addChecked(checked);
  }
  for (const projectId of scope.projectIds) {
    for await (const checked of client.tasks({ projectId, sort: 'id' }, options.signal)) addChecked(checked);
  }
  const lookup = async (what: 'task' | 'job', id: number, fetch: () => Promise<void>) => {
    try {
      await fetch();
    } catch (error) {
      if (isFatal(error)) throw error;
      const gone = error instanceof CvatHttpError && error.status === 404;
      options.onIssue({
        ...(what === 'task' ? { taskId: id } : { jobId: id }),
        severity: 'problem',
        message: gone ? `${what} ${id} not found` : describeError(error),
      });
    }
  };
  for (const id of scope.taskIds) await lookup('task', id, async () => addChecked(await client.task(id, options.signal)));
  let jobFilter: Map<number, Set<number>> | undefined;
  if (scope.jobIds.length > 0) {
    jobFilter = new Map();
    for (const id of scope.jobIds) {
      await lookup('job', id, async () => {
        const job = await client.job(id, options.signal);
        if (!job.ok) {
          options.onIssue({ jobId: id, severity: 'problem', message: job.problem });
          return;
        }
        if (!jobFilter!.has(job.value.task_id)) jobFilter!.set(job.value.task_id, new Set());
        jobFilter!.get(job.value.task_id)!.add(id);
        if (!tasks.has(job.value.task_id))
          await lookup('task', job.value.task_id, async () => addChecked(await client.task(job.value.task_id, options.signal)));
      });
    }
  }
  return { tasks: [...tasks.values()].sort((a, b) => a.id - b.id), ...(jobFilter ? { jobFilter } : {}) };
}

function hasData(task: Task): boolean {
  return task.data !== null && task.data !== undefined && (task.size ?? 0) > 0 && task.media_type !== '';
}

/**
 * The jobs of one task. Some CVAT versions ignore unknown filters: never trust the server
 * to have filtered. Sanity checks of jobs against their task plug in here (one place where
 * every job enters a record).
 */
async function taskJobs(
  client: CvatClient,
  task: Task,
  wanted: ReadonlySet<number> | undefined,
  options: InventoryOptions,
  listing: JobsByTask | undefined,
): Promise<Job[]> {
  const listed = listing ? await jobsFromListing(listing, task) : undefined;
  if (listed) return keepSaneJobs(task, listed, (r) => options.onIssue({ ...r, severity: 'problem' }));
  const jobs: Job[] = [];
  for await (const checked of client.jobs({ taskId: task.id }, options.signal)) {
    if (!checked.ok) options.onIssue({ taskId: task.id, jobId: checked.id, severity: 'problem', message: checked.problem });
    else if (checked.value.task_id === task.id && (!wanted || wanted.has(checked.value.id))) jobs.push(checked.value);
  }
  return keepSaneJobs(task, jobs, (r) => options.onIssue({ ...r, severity: 'problem' }));
}

/**
 * The task's jobs from the shared listing when it vouches for them and holds as many as
 * the task counts (`jobs.count`); undefined sends the task to its own list.
 */
async function jobsFromListing(listing: JobsByTask, task: Task): Promise<Job[] | undefined> {
  try {
    const jobs = await listing.jobsOf(task.id);
    // Newest first, as the task's own list comes (JobViewSet's default ordering `-id`).
    return jobs && jobs.length === task.jobs?.count ? jobs.reverse() : undefined;
  } catch (error) {
    // The listing failed: this task and the rest list their own jobs.
    if (isFatal(error)) throw error;
    return undefined;
  }
}

/**
 * Pages the all-jobs listing may take: as many as the tasks' job counts need, with room for
 * a tenth more jobs created meanwhile. Not `--max-list-pages`: the listing is as long as the
 * task list says, and past the bound the walk fails and every task lists its own jobs.
 */
function listingPages(client: CvatClient, tasks: readonly Task[]): number {
  let jobs = 0;
  for (const task of tasks) jobs += task.jobs?.count ?? 0;
  return Math.ceil((jobs * 1.1) / client.pageSize) + 1;
}

/** Every task record in scope, fetched a few tasks at a time. */
export async function* collectTaskRecords(client: CvatClient, scope: Scope, options: InventoryOptions): AsyncGenerator<TaskRecord> {
  const { tasks, jobFilter } = await resolveScope(client, scope, options);
  yield* recordsOf(client, tasks, { ...options, listAllJobs: scope.all }, jobFilter);
}

/**
 * Records of tasks already listed (discovery has the task objects from its list: no
 * re-fetch), their extras fetched with bounded concurrency and handed out in order.
 */
export async function* collectRecordsOf(client: CvatClient, tasks: readonly Task[], options: InventoryOptions): AsyncGenerator<TaskRecord> {
  yield* recordsOf(client, tasks, options, undefined);
}

async function* recordsOf(
  client: CvatClient,
  tasks: readonly Task[],
  options: InventoryOptions,
  jobFilter: Map<number, Set<number>> | undefined,
): AsyncGenerator<TaskRecord> {
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_INVENTORY_CONCURRENCY);
  const limit = pLimit(concurrency);
  // Only tasks that say how many jobs they have: the count is what vouches for a listing.
  const listable = options.listAllJobs && !jobFilter ? tasks.filter((t) => hasData(t) && t.jobs?.count !== undefined) : [];
  const listing =
    listable.length > 0
      ? new JobsByTask(
          client.jobs({ sort: 'task_id,id', maxPages: listingPages(client, tasks) }, options.signal),
          listable.map((t) => t.id),
        )
      : undefined;
  const fetchRecord = recordFetcher(client, options, jobFilter, listing);
  try {
    yield* inOrder(tasks, options, readAhead(concurrency), (task) => limit(() => fetchRecord(task)));
  } finally {
    listing?.close();
  }
}

/** One task's record (jobs, meta, GT job metas), or undefined with the reason reported. */
function recordFetcher(
  client: CvatClient,
  options: InventoryOptions,
  jobFilter: Map<number, Set<number>> | undefined,
  listing: JobsByTask | undefined,
): (task: Task) => Promise<TaskRecord | undefined> {
  return async (task) => {
    if (!hasData(task)) {
      options.onIssue({ taskId: task.id, severity: 'skipped', message: `task ${task.id} has no data yet` });
      return undefined;
    }
    try {
      const jobs = await taskJobs(client, task, jobFilter?.get(task.id), options, listing);
      if (jobs.length === 0) {
        options.onIssue({ taskId: task.id, severity: 'skipped', message: `task ${task.id} has no jobs yet (still being created?)` });
        return undefined;
      }
      const record: TaskRecord = { task, jobs, jobMetas: new Map() };
      if (options.withMeta || !options.features.indexChunks) {
        const meta = await client.taskMeta(task.id, options.signal);
        if (meta.ok) record.meta = meta.value;
        else options.onIssue({ taskId: task.id, severity: 'problem', message: meta.problem });
      }
      // included_frames of ground-truth jobs on every version: their chunks, context images and
      // the guard's frame → chunk mapping all depend on it (the job's start/stop span the task).
      for (const job of jobs.filter((j) => j.type === 'ground_truth')) {
        const meta = await client.jobMeta(job.id, options.signal);
        if (meta.ok) record.jobMetas.set(job.id, meta.value);
        else options.onIssue({ taskId: task.id, jobId: job.id, severity: 'problem', message: meta.problem });
      }
      return record;
    } catch (error) {
      if (isFatal(error)) throw error;
      const gone = error instanceof CvatHttpError && error.status === 404;
      options.onIssue({
        taskId: task.id,
        severity: gone ? 'skipped' : 'problem',
        message: gone ? `task ${task.id} was deleted` : `task ${task.id}: ${describeError(error)}`,
      });
      return undefined;
    }
  };
}

/** Starts up to `window` lookups ahead and hands their records out in task order. */
/**
 * How far ahead of the consumer records are fetched. At least two per request slot, so
 * the slots stay busy while the consumer works on one; up to eight per slot when the tasks
 * are small, so a consumer that pauses (the guard waiting for its stat thread) finds
 * records ready: at 1,000,000 share files in tasks of 100 frames, a window of 8 left the
 * main thread idle ~20 % of the start-up and 32 cut the time to ready by ~5 %. The frames
 * of the tasks ahead are bounded, which bounds the memory their frame lists hold.
 */
export function readAhead(concurrency: number): ReadAhead {
  return { min: concurrency * 2, max: concurrency * 8, frames: READ_AHEAD_FRAMES };
}

export interface ReadAhead {
  /** Tasks always fetched ahead, whatever their size. */
  min: number;
  /** Tasks at most fetched ahead. */
  max: number;
  /** Beyond `min` tasks, more are fetched ahead only while their frames (task.size) stay within this. */
  frames: number;
}

/** ~3 MB of data/meta frame records. */
const READ_AHEAD_FRAMES = 20_000;

async function* inOrder(
  tasks: readonly Task[],
  options: InventoryOptions,
  ahead: ReadAhead,
  lookup: (task: Task) => Promise<TaskRecord | undefined>,
): AsyncGenerator<TaskRecord> {
  // Every request in flight listens on the caller's signal: allow as many without Node's leak warning.
  if (options.signal) setMaxListeners(Math.max(getMaxListeners(options.signal), ahead.max + 10), options.signal);
  const pending: Array<{ record: Promise<TaskRecord | undefined>; frames: number }> = [];
  let pendingFrames = 0;
  let next = 0;
  let done = 0;
  const every = options.progressEvery ?? 500;
  const room = (task: Task): boolean => pending.length < ahead.min || (pending.length < ahead.max && pendingFrames + (task.size ?? 0) <= ahead.frames);
  for (;;) {
    for (let task = tasks[next]; task !== undefined && room(task); task = tasks[++next]) {
      const record = lookup(task);
      record.catch(() => undefined); // surfaced when awaited below
      pending.push({ record, frames: task.size ?? 0 });
      pendingFrames += task.size ?? 0;
    }
    const head = pending.shift();
    if (!head) break;
    pendingFrames -= head.frames;
    const record = await head.record;
    done++;
    if (options.onProgress && (done % every === 0 || done === tasks.length)) options.onProgress(done, tasks.length);
    if (record) yield record;
  }
}
