/**
 * The jobs of many tasks from one listing sorted by task, handed out task by task: a
 * request per page of jobs instead of one per task. A first discovery of 10,000 tasks
 * made 10,000 job lists, each a round trip through CVAT's Django; now it makes one per
 * page. `sort=task_id,id` is accepted on every version we serve: JobViewSet lists
 * `task_id` in `ordering_fields` on 2.5, 2.14 and 2.73 (cvat/apps/engine/views.py), and
 * the OrderingFilter splits the comma list (cvat/apps/engine/filters.py).
 *
 * It hands out only what the listing can vouch for, else `undefined` and the caller lists
 * that task alone:
 * - the order broke (a task id lower than one already read: a proxy or version that
 *   ignored `sort`): nothing more is handed out;
 * - a job id repeated or out of order within a task (a page boundary moved under the
 *   listing): that task;
 * - the listing failed: nothing more (the error is thrown once, to the caller that hit it);
 * - asked twice, or for a task the listing had already passed.
 * The caller also compares the count with the task's `jobs.count` (the task list's
 * `total_jobs_count`, cvat/apps/engine/models.py): a job missing from the listing (an
 * unreadable item, one created or deleted while it was paged) falls back too.
 *
 * Memory: jobs of wanted tasks read ahead and not yet taken; callers ask in ascending
 * task order, so that is about one page.
 */
import type { Checked } from './client.js';
import type { Job } from './shapes.js';

export class JobsByTask {
  readonly #source: AsyncIterator<Checked<Job>>;
  readonly #wanted: Set<number>;
  /** Wanted tasks read, not yet handed out. */
  readonly #ready = new Map<number, Job[]>();
  readonly #doubtful = new Set<number>();
  /** Task id of the last readable item (0 before the first). */
  #lastTask = 0;
  #lastJob = 0;
  #ended = false;
  #broken = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(source: AsyncIterable<Checked<Job>>, wanted: Iterable<number>) {
    this.#source = source[Symbol.asyncIterator]();
    this.#wanted = new Set(wanted);
  }

  /** The task's jobs as listed, or undefined when the listing cannot vouch for them. Calls run one at a time, in call order. */
  jobsOf(taskId: number): Promise<Job[] | undefined> {
    const run = this.#queue.then(() => this.#take(taskId));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Hands nothing more out and ends the listing: not awaited, as a page request in flight
   * would hold the caller up to its deadline; the listing ends when that request does. Idempotent.
   */
  close(): void {
    if (this.#broken && this.#ended) return;
    this.#breakOff();
    this.#ended = true;
    this.#source.return?.(undefined).catch(() => undefined);
  }

  async #take(taskId: number): Promise<Job[] | undefined> {
    if (!this.#wanted.has(taskId)) return undefined;
    while (!this.#ended && !this.#broken && this.#lastTask <= taskId) await this.#readOne();
    this.#wanted.delete(taskId);
    const jobs = this.#ready.get(taskId);
    this.#ready.delete(taskId);
    if (this.#broken || this.#doubtful.delete(taskId)) return undefined;
    // Read to its end (or the listing's) and never seen: CVAT listed no job of it.
    return jobs ?? [];
  }

  async #readOne(): Promise<void> {
    let next: IteratorResult<Checked<Job>>;
    try {
      next = await this.#source.next();
    } catch (error) {
      this.#breakOff();
      throw error;
    }
    if (next.done) {
      this.#ended = true;
      return;
    }
    const checked = next.value;
    // An unreadable item is missing from its task's list: the caller's count check catches it.
    if (!checked.ok) return;
    const job = checked.value;
    if (job.task_id < this.#lastTask) {
      this.#breakOff();
      return;
    }
    if (job.task_id === this.#lastTask && job.id <= this.#lastJob) this.#doubtful.add(job.task_id);
    this.#lastTask = job.task_id;
    this.#lastJob = job.id;
    if (!this.#wanted.has(job.task_id)) return;
    const jobs = this.#ready.get(job.task_id);
    if (jobs) jobs.push(job);
    else this.#ready.set(job.task_id, [job]);
  }

  #breakOff(): void {
    this.#broken = true;
    this.#ready.clear();
  }
}
