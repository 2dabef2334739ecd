/**
 * The cloud guard: objects that cloud-storage tasks need (expected.ts) against what CVAT's
 * paged listing shows (listing.ts), one round at a time.
 *
 * A round asks each storage's status (a metric; a storage not AVAILABLE is not listed and its
 * earlier verdicts stand), then lists directories — each directory once per round however many
 * tasks use it, least recently listed first — while the LIST budget allows; the rest wait for a
 * later round (`deferred`). A missing object is a problem naming task, jobs, chunks and key; it
 * clears when a later listing shows the object again.
 *
 * Shaped as a future source of the share guard (src/guard is being split into core/shell/
 * runtime with a "source" interface): `expectations` are the expected keys, `#observed` the
 * observed presence per directory, `round()` the source's observation step; the problem set
 * (raised/cleared) is what the core's tracker would own.
 */
import type { CvatClient } from '../cvat/client.js';
import { CLOUD_STORAGE_STATUSES, type CloudStorageStatus } from '../domain.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { redactSecrets } from '../secrets.js';
import type { ListBudget } from './budget.js';
import { directoryOf, type CloudTaskExpectation, type FrameUse } from './expected.js';
import { listDirectory, storageStatus } from './listing.js';

export interface CloudProblem {
  taskId: number;
  taskName?: string;
  storageId: number;
  /** `object_missing`: a frame's object; `related_missing`: fewer context images than `related_files`. */
  kind: 'object_missing' | 'related_missing';
  /** The object key (or the context-image directory, ending in "/"). */
  key: string;
  frame: number;
  jobs: number[];
  chunks: FrameUse[];
  /** When this round's listing first found it missing (ms). */
  since: number;
}

export interface StorageReport {
  storageId: number;
  status: CloudStorageStatus;
  problem?: string;
  taskIds: number[];
}

export interface CloudRoundResult {
  storages: StorageReport[];
  /** content-v2 calls made this round. */
  calls: number;
  directoriesListed: number;
  /** Directories left for a later round by the budget (or unlisted after a failed page). */
  directoriesDeferred: number;
  expectedObjects: number;
  problems: CloudProblem[];
  raised: CloudProblem[];
  cleared: CloudProblem[];
  /** Listing failures (not budget): directory and message. */
  listingProblems: Array<{ storageId: number; dir: string; problem: string }>;
}

export interface CloudGuardOptions {
  client: CvatClient;
  budget: Pick<ListBudget, 'take'>;
  logger: Logger;
  metrics?: Metrics;
  clock?: { now(): number };
}

interface DirState {
  storageId: number;
  dir: string;
  lastListedAt: number;
  /** Names seen in the last complete listing; undefined until one completed. */
  present: Set<string> | undefined;
}

const dirId = (storageId: number, dir: string): string => `${storageId}\0${dir}`;
const problemId = (p: Pick<CloudProblem, 'taskId' | 'key'>): string => `${p.taskId}\0${p.key}`;

export class CloudGuard {
  readonly #o: CloudGuardOptions;
  #expectations: CloudTaskExpectation[] = [];
  readonly #dirs = new Map<string, DirState>();
  readonly #open = new Map<string, CloudProblem>();
  #closed = false;

  constructor(options: CloudGuardOptions) {
    this.#o = options;
  }

  /** Replaces the tasks guarded (after each discovery); directories no task uses any more are forgotten. */
  setTasks(expectations: readonly CloudTaskExpectation[]): void {
    this.#expectations = [...expectations];
    const wanted = new Set<string>();
    for (const task of expectations) {
      for (const o of task.objects) wanted.add(dirId(task.storageId, directoryOf(o.key)));
      for (const r of task.related) wanted.add(dirId(task.storageId, r.dir));
    }
    for (const id of this.#dirs.keys()) if (!wanted.has(id)) this.#dirs.delete(id);
    for (const id of wanted) {
      if (this.#dirs.has(id)) continue;
      const [storage, dir] = id.split('\0') as [string, string];
      this.#dirs.set(id, { storageId: Number(storage), dir, lastListedAt: -Infinity, present: undefined });
    }
    const tasks = new Set(expectations.map((t) => t.taskId));
    for (const [id, p] of this.#open) if (!tasks.has(p.taskId)) this.#open.delete(id);
  }

  problems(): CloudProblem[] {
    return [...this.#open.values()];
  }

  async round(signal?: AbortSignal): Promise<CloudRoundResult> {
    const now = (): number => this.#o.clock?.now() ?? Date.now();
    const { client, metrics, logger } = this.#o;
    const storages = new Map<number, StorageReport>();
    for (const task of this.#expectations) {
      const report = storages.get(task.storageId) ?? { storageId: task.storageId, status: 'unknown' as CloudStorageStatus, taskIds: [] };
      report.taskIds.push(task.taskId);
      storages.set(task.storageId, report);
    }
    for (const report of storages.values()) {
      if (this.#closed || signal?.aborted) break;
      const answer = await storageStatus(client, report.storageId, signal);
      report.status = answer.status;
      if (answer.problem) report.problem = redactSecrets(answer.problem);
      for (const status of CLOUD_STORAGE_STATUSES)
        metrics?.cloudStorageStatus.set({ storage_id: String(report.storageId), status }, status === answer.status ? 1 : 0);
      if (answer.status !== 'AVAILABLE')
        logger.warn({ storageId: report.storageId, status: answer.status, tasks: report.taskIds.slice(0, 20) }, 'cloud storage not available');
    }

    let calls = 0;
    let listed = 0;
    let deferred = 0;
    let budgetSpent = false;
    const listingProblems: CloudRoundResult['listingProblems'] = [];
    const order = [...this.#dirs.values()].sort((a, b) => a.lastListedAt - b.lastListedAt);
    for (const state of order) {
      if (storages.get(state.storageId)?.status !== 'AVAILABLE') continue;
      if (budgetSpent || this.#closed || signal?.aborted) {
        deferred++;
        continue;
      }
      const listing = await listDirectory(client, state.storageId, state.dir, {
        take: () => this.#o.budget.take(),
        onCall: () => {
          calls++;
          metrics?.cloudListCalls.inc();
        },
        ...(signal ? { signal } : {}),
      });
      if (!listing.complete) {
        deferred++;
        if (listing.problem) listingProblems.push({ storageId: state.storageId, dir: state.dir, problem: redactSecrets(listing.problem) });
        else budgetSpent = true;
        continue;
      }
      listed++;
      state.present = listing.files;
      state.lastListedAt = now();
    }

    const current = new Map<string, CloudProblem>();
    let expectedObjects = 0;
    const at = now();
    for (const task of this.#expectations) {
      for (const object of task.objects) {
        expectedObjects++;
        const dir = this.#dirs.get(dirId(task.storageId, directoryOf(object.key)));
        const name = object.key.slice(directoryOf(object.key).length);
        const known = dir?.present;
        const open = this.#open.get(problemId({ taskId: task.taskId, key: object.key }));
        // Not listed (yet, or storage unavailable): the last verdict stands.
        if (!known) {
          if (open) current.set(problemId(open), open);
          continue;
        }
        if (!known.has(name))
          current.set(
            problemId({ taskId: task.taskId, key: object.key }),
            open ?? this.#problem(task, 'object_missing', object.key, object.frame, object.uses, at),
          );
      }
      for (const related of task.related) {
        const dir = this.#dirs.get(dirId(task.storageId, related.dir));
        const open = this.#open.get(problemId({ taskId: task.taskId, key: related.dir }));
        if (!dir?.present) {
          if (open) current.set(problemId(open), open);
          continue;
        }
        if (dir.present.size < related.minObjects)
          current.set(
            problemId({ taskId: task.taskId, key: related.dir }),
            open ?? this.#problem(task, 'related_missing', related.dir, related.frame, related.uses, at),
          );
      }
    }
    const raised = [...current.entries()].filter(([id]) => !this.#open.has(id)).map(([, p]) => p);
    const cleared = [...this.#open.entries()].filter(([id]) => !current.has(id)).map(([, p]) => p);
    this.#open.clear();
    for (const [id, p] of current) this.#open.set(id, p);
    for (const p of raised)
      logger.error(
        { taskId: p.taskId, storageId: p.storageId, key: p.key, jobs: p.jobs.slice(0, 20) },
        p.kind === 'object_missing' ? 'cloud object missing' : 'cloud context images missing',
      );
    for (const p of cleared) logger.info({ taskId: p.taskId, storageId: p.storageId, key: p.key }, 'cloud object back');

    if (metrics) {
      metrics.cloudObjectsExpected.set(expectedObjects);
      metrics.cloudObjectsMissing.set(current.size);
      metrics.taskCloudObjectsMissing.reset();
      const perTask = new Map<number, number>();
      for (const p of current.values()) perTask.set(p.taskId, (perTask.get(p.taskId) ?? 0) + 1);
      for (const [taskId, n] of perTask) metrics.taskCloudObjectsMissing.set({ task_id: String(taskId) }, n);
      metrics.cloudDirectoriesDeferred.set(deferred);
      metrics.cloudLastRoundTimestamp.set(Date.now() / 1000);
    }
    return {
      storages: [...storages.values()],
      calls,
      directoriesListed: listed,
      directoriesDeferred: deferred,
      expectedObjects,
      problems: [...current.values()],
      raised,
      cleared,
      listingProblems,
    };
  }

  #problem(task: CloudTaskExpectation, kind: CloudProblem['kind'], key: string, frame: number, uses: FrameUse[], since: number): CloudProblem {
    return {
      taskId: task.taskId,
      ...(task.taskName !== undefined ? { taskName: task.taskName } : {}),
      storageId: task.storageId,
      kind,
      key,
      frame,
      jobs: [...new Set(uses.map((u) => u.jobId))].sort((a, b) => a - b),
      chunks: uses,
      since,
    };
  }

  /** Idempotent: a round in progress stops listing. */
  close(): void {
    this.#closed = true;
  }
}

/** Text lines for `check`: one per problem, naming task, jobs, chunks and key. */
export function formatCloudReport(result: CloudRoundResult): string {
  const lines: string[] = [];
  for (const s of result.storages)
    if (s.status !== 'AVAILABLE')
      lines.push(`cloud storage ${s.storageId}: ${s.status}${s.problem ? ` (${s.problem})` : ''}; tasks ${s.taskIds.join(', ')} not checked`);
  for (const p of result.problems) {
    const chunks = p.chunks.map((c) => `job ${c.jobId} chunk ${c.chunk}`).join(', ');
    const what = p.kind === 'object_missing' ? `object "${p.key}" missing` : `context images missing under "${p.key}"`;
    lines.push(
      `task ${p.taskId}${p.taskName !== undefined ? ` (${p.taskName})` : ''}: ${what} in cloud storage ${p.storageId}, frame ${p.frame}; read by ${chunks || 'no job'}`,
    );
  }
  for (const l of result.listingProblems) lines.push(`cloud storage ${l.storageId}: listing "${l.dir}" failed: ${l.problem}`);
  const head = `Cloud storage: ${result.expectedObjects} object(s) expected, ${result.problems.length} problem(s), ${result.calls} listing call(s) for ${result.directoriesListed} director${result.directoriesListed === 1 ? 'y' : 'ies'}${result.directoriesDeferred ? `, ${result.directoriesDeferred} deferred` : ''}`;
  return redactSecrets(`${[head, ...lines.map((l) => `  ${l}`)].join('\n')}\n`);
}

/** Exit code contribution of a cloud round: 1 for any problem, unavailable storage or unlisted directory. */
export function cloudExitCode(result: CloudRoundResult): 0 | 1 {
  return result.problems.length > 0 || result.storages.some((s) => s.status !== 'AVAILABLE') || result.directoriesDeferred > 0 ? 1 : 0;
}
