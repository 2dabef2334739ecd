/**
 * Finds new, changed and deleted tasks by polling CVAT (webhooks only speed it up:
 * sandbox tasks emit none). Each poll asks for tasks *and jobs* updated since the last
 * one (`filter` on `updated_date`, which both lists filter and sort on: TaskViewSet /
 * JobViewSet `filter_fields` in cvat/apps/engine/views.py). The job poll matters: a job
 * update touches its task only when the task's aggregated status changes
 * (cvat/apps/engine/signals.py `__save_job_handler`), so a reopened job, a rejected one or
 * a ground-truth job added later moves the job's date and not the task's.
 *
 * Every `fullEvery` polls a complete task listing catches deletions, and — through each
 * task's `jobs.count` — jobs deleted or added without any date moving (deleting a GT job
 * leaves the task's date alone: views.py `JobViewSet.perform_destroy`).
 *
 * Cost per poll when nothing changed: one page of tasks and one page of jobs, whatever
 * the number of jobs; a change costs the jobs, meta and GT meta of the tasks it touched,
 * fetched a few tasks at a time (the task objects come from the listing, never re-fetched).
 *
 * Tasks named by webhooks (or with job-only changes) that the poll did not list are listed
 * by id, IDS_PER_LIST a request (`filter` `in` on `id`, a filter field of TaskViewSet on
 * every supported version), never one GET each; a named task is then refreshed only when
 * its listing differs from what discovery knows, like any polled task.
 */
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { Task } from '../cvat/shapes.js';
import type { Logger } from '../log.js';
import { collectRecordsOf, type InventoryIssue, type InventoryOptions, type TaskRecord } from '../cvat/inventory.js';

export interface DiscoveryOptions {
  client: CvatClient;
  features: CvatFeatures;
  logger: Logger;
  /** Complete listing every this many polls (1 = always). */
  fullEvery?: number;
  /** Tasks whose extras are fetched at once. @default 4 */
  concurrency?: number;
  onRecord: (record: TaskRecord, isNew: boolean) => void | Promise<void>;
  onRemoved: (taskId: number) => void | Promise<void>;
  onIssue?: (issue: InventoryIssue) => void;
}

/** What webhooks ask of one pass. */
export interface DiscoveryLook {
  /** Tasks to look at whatever the poll shows (webhook deliveries named them). */
  taskIds?: readonly number[];
  /** List every task this pass (more tasks were named than the pending bound holds). */
  full?: boolean;
}

export interface DiscoveryPass {
  full: boolean;
  listed: number;
  /** Jobs the job poll returned. */
  jobsListed: number;
  refreshed: number;
  removed: number;
  /** Tasks named by the look (webhooks), each compared with a fresh listing. */
  named: number;
  /** List requests by id this pass made. */
  idLists: number;
}

interface KnownTask {
  date: string;
  /** `jobs.count` of the task as listed; undefined when CVAT does not say. */
  jobCount: number | undefined;
  /** job id → updated_date */
  jobs: Map<number, string>;
}

/** What one pass gathers: the tasks seen and listed, the ids that changed, the removals counted. */
interface PassState {
  signal?: AbortSignal;
  /** Ids the task poll showed (also unreadable items with an id). */
  seen: Set<number>;
  listedTasks: Map<number, Task>;
  changed: Set<number>;
  removed: number;
}

const filterSince = (date: string): string => JSON.stringify({ and: [{ '>=': [{ var: 'updated_date' }, date] }] });
const filterIds = (ids: readonly number[]): string => JSON.stringify({ in: [{ var: 'id' }, ids] });

/**
 * Ids per list-by-id request: 200 six-digit ids make a URL of about 2 KB once encoded,
 * under the 4 KB request-line limit of the strictest server in front of CVAT (gunicorn),
 * and a page of 200 tasks is well under the client's page size of 500.
 */
export const IDS_PER_LIST = 200;

export class Discovery {
  private readonly options: DiscoveryOptions;
  private readonly known = new Map<number, KnownTask>();
  private polls = 0;
  private newestTask: string | undefined;
  private newestJob: string | undefined;

  constructor(options: DiscoveryOptions) {
    this.options = options;
  }

  get taskCount(): number {
    return this.known.size;
  }

  forget(taskId: number): void {
    this.known.delete(taskId);
  }

  /** A listed task differs from what is known: new, updated, or its job count moved (a GT job deleted or added). */
  private differs(task: Task): boolean {
    const known = this.known.get(task.id);
    const countMoved = known !== undefined && task.jobs !== undefined && known.jobCount !== undefined && task.jobs.count !== known.jobCount;
    return !known || known.date !== (task.updated_date ?? '') || countMoved;
  }

  async pass(signal?: AbortSignal, look: DiscoveryLook = {}): Promise<DiscoveryPass> {
    const full = look.full === true || this.polls % (this.options.fullEvery ?? 10) === 0;
    const first = this.polls === 0;
    this.polls++;
    const state: PassState = { ...(signal ? { signal } : {}), seen: new Set(), listedTasks: new Map(), changed: new Set(), removed: 0 };
    const { listed, newestTask } = await this.pollTasks(state, full);
    // Not on the first pass: every task is new then, and its jobs come with its record.
    const jobsListed = !first && this.newestJob ? await this.pollJobs(state, this.newestJob) : 0;
    if (full) await this.removeUnseen(state);
    // Named tasks and job-only changes the task poll did not list: listed by id. A full
    // listing already showed every task, and removed the known ones it did not show.
    const named = look.taskIds ?? [];
    const idLists = full ? 0 : await this.listUnlisted(state, named);
    const refreshed = state.changed.size > 0 ? await this.refresh(state, first) : 0;
    this.newestTask = newestTask;
    const result = { full, listed, jobsListed, refreshed, removed: state.removed, named: named.length, idLists };
    this.options.logger.debug(result, 'discovery pass');
    return result;
  }

  /** The task poll: every task when `full`, else those updated since the newest seen. */
  private async pollTasks(state: PassState, full: boolean): Promise<{ listed: number; newestTask: string | undefined }> {
    // `>=`, not `>`: a task updated in the same millisecond as the newest one seen must not
    // wait for the next full listing; re-listing that one task is harmless (dates compared below).
    const filter = !full && this.newestTask ? filterSince(this.newestTask) : undefined;
    let listed = 0;
    let newestTask = this.newestTask;
    for await (const checked of this.options.client.tasks({ sort: '-updated_date', ...(filter ? { filter } : {}) }, state.signal)) {
      listed++;
      if (!checked.ok) {
        this.options.onIssue?.({ taskId: checked.id, severity: 'problem', message: checked.problem });
        if (checked.id !== undefined) state.seen.add(checked.id);
        continue;
      }
      const task = checked.value;
      state.seen.add(task.id);
      state.listedTasks.set(task.id, task);
      const date = task.updated_date ?? '';
      if (!newestTask || date > newestTask) newestTask = date;
      if (this.differs(task)) state.changed.add(task.id);
    }
    return { listed, newestTask };
  }

  /** Jobs updated since the newest job date seen: reopened, rejected, completed, new GT jobs. */
  private async pollJobs(state: PassState, since: string): Promise<number> {
    let jobsListed = 0;
    for await (const checked of this.options.client.jobs({ sort: '-updated_date', filter: filterSince(since) }, state.signal)) {
      jobsListed++;
      if (!checked.ok) {
        this.options.onIssue?.({ jobId: checked.id, severity: 'problem', message: checked.problem });
        continue;
      }
      const job = checked.value;
      const known = this.known.get(job.task_id);
      if (!known || known.jobs.get(job.id) !== (job.updated_date ?? '')) state.changed.add(job.task_id);
    }
    return jobsListed;
  }

  /** After a full listing: a known task it did not show is deleted. */
  private async removeUnseen(state: PassState): Promise<void> {
    for (const id of [...this.known.keys()]) if (!state.seen.has(id)) await this.remove(state, id);
  }

  /** Lists by id, IDS_PER_LIST a request, the changed or named tasks the poll did not list; returns the requests made. */
  private async listUnlisted(state: PassState, named: readonly number[]): Promise<number> {
    const unlisted = [...new Set([...state.changed, ...named])].filter((id) => !state.listedTasks.has(id)).sort((a, b) => a - b);
    let idLists = 0;
    for (let at = 0; at < unlisted.length; at += IDS_PER_LIST) {
      idLists++;
      await this.listByIds(state, unlisted.slice(at, at + IDS_PER_LIST));
    }
    return idLists;
  }

  private async listByIds(state: PassState, ids: readonly number[]): Promise<void> {
    const shown = new Set<number>();
    let unreadable = false;
    // Not used for newestTask: a task updated after the poll would hide the others updated in between.
    for await (const checked of this.options.client.tasks({ filter: filterIds(ids) }, state.signal)) {
      if (!checked.ok) {
        this.options.onIssue?.({ taskId: checked.id, severity: 'problem', message: checked.problem });
        if (checked.id !== undefined) shown.add(checked.id);
        else unreadable = true;
        continue;
      }
      const task = checked.value;
      shown.add(task.id);
      state.listedTasks.set(task.id, task);
      if (this.differs(task)) state.changed.add(task.id);
    }
    // An item without a readable id may be any of them: deleting none is the safe side.
    if (unreadable) return;
    // Not shown: deleted in CVAT (or out of reach), nothing left to refresh.
    for (const id of ids) if (!shown.has(id)) await this.remove(state, id);
  }

  /** Fetches the changed tasks' jobs and meta and hands each record on; returns how many were refreshed. */
  private async refresh(state: PassState, first: boolean): Promise<number> {
    const tasks = [...state.changed].sort((a, b) => a - b).flatMap((id) => state.listedTasks.get(id) ?? []);
    const issues: InventoryIssue[] = [];
    const found = new Set<number>();
    let refreshed = 0;
    for await (const record of collectRecordsOf(this.options.client, tasks, this.collectOptions(state, tasks.length, first, issues))) {
      found.add(record.task.id);
      const isNew = !this.known.has(record.task.id);
      this.remember(record);
      refreshed++;
      await this.options.onRecord(record, isNew);
    }
    for (const task of tasks) {
      // Deleted between listing and lookup, or no data yet: drop it so a later pass looks again.
      if (!found.has(task.id) && issues.some((i) => i.taskId === task.id && /not found|deleted/.test(i.message))) await this.remove(state, task.id);
    }
    return refreshed;
  }

  private collectOptions(state: PassState, count: number, first: boolean, issues: InventoryIssue[]): InventoryOptions {
    // Progress for a long first discovery only: a later flood of webhook-named tasks would log it per 500.
    const long = first && count >= 1000;
    const started = Date.now();
    const { logger, concurrency } = this.options;
    return {
      features: this.options.features,
      withMeta: true,
      // Every task is new on the first pass: one job listing for all of them.
      listAllJobs: first,
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(state.signal ? { signal: state.signal } : {}),
      ...(long
        ? {
            onProgress: (done: number, total: number) => logger.info({ done, total, seconds: Math.round((Date.now() - started) / 1000) }, 'discovery progress'),
          }
        : {}),
      onIssue: (issue) => {
        issues.push(issue);
        this.options.onIssue?.(issue);
      },
    };
  }

  /** Records the task's and its jobs' dates, so the next poll can tell what changed. */
  private remember(record: TaskRecord): void {
    const jobs = new Map<number, string>();
    for (const job of record.jobs) {
      const date = job.updated_date ?? '';
      jobs.set(job.id, date);
      if (!this.newestJob || date > this.newestJob) this.newestJob = date;
    }
    this.known.set(record.task.id, { date: record.task.updated_date ?? '', jobCount: record.task.jobs?.count, jobs });
  }

  /** A task gone from CVAT: nothing to refresh; forgotten and reported once if it was known. */
  private async remove(state: PassState, id: number): Promise<void> {
    state.changed.delete(id);
    if (!this.known.delete(id)) return;
    state.removed++;
    await this.options.onRemoved(id);
  }
}
