/**
 * The guard of cloud-storage tasks: the guard's core — index, tracker, persisted problems and
 * baseline (GuardStore), alerts (AlertSink over the event bus), runtime — run with the cloud
 * source (shell/cloud-source.ts) instead of the share's. Only "how presence is observed"
 * differs: a round of CVAT's paged listing within a LIST budget, scheduled by the owner
 * (CloudComponent in `run`; once in `check`), instead of stats, watches and a root to poll. A
 * missing object is the tracker's `deleted` problem, logged as "cloud object missing" with its
 * task, jobs and chunks, counted in cvat_warden_cloud_objects_missing, kept across restarts in
 * its own state directory, and `restored` when a later listing shows it again.
 */
import { EventEmitter } from 'node:events';
import { assembleGuard, publishTransitions } from './assemble.js';
import type { ListBudget } from '../cloud/budget.js';
import type { CvatClient } from '../cvat/client.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { GuardClock } from './core/clock.js';
import { affectedTasksOf, openProblems, problemCounts } from './core/guard-queries.js';
import type { LastWarmedAt } from './core/mapping.js';
import type { ShareIndex } from './core/share-index.js';
import type { FileTracker } from './core/tracker.js';
import type { GuardEvents } from './events.js';
import type { GuardRuntime, GuardState } from './runtime.js';
import type { AlertWording } from './shell/alerts.js';
import { CloudSource, type CloudRound, type CloudSourceStatus } from './shell/cloud-source.js';
import { cloudKeyOf, cloudPath } from './shell/cloud-tasks.js';
import type { GuardStore } from './shell/persistence.js';
import type { SourceHost } from './source.js';
import type { StateDamage } from '../state/damage.js';
import type { GuardTask, OpenProblem, ShareGuardEventMap } from './types.js';

export interface CloudGuardOptions {
  client: CvatClient;
  budget: Pick<ListBudget, 'take'> & { perHour?: number };
  metrics: Metrics;
  logger: Logger;
  /** Its own directory for open problems and baseline (`<state-dir>/cloud-guard`); none: nothing persists (a one-shot check). */
  stateDir?: string;
  /** The round period (reported in /status; the owner schedules rounds). */
  intervalMs: number;
  /** Wall clock for alerts and state (ms). */
  clock?: () => number;
  lastWarmedAt?: LastWarmedAt;
}

/** One open problem per task and key, as `check` and /status name it. */
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
  chunks: Array<{ jobId: number; chunk: number }>;
  /** ms since epoch when it was first seen. */
  since: number;
}

export interface CloudRoundResult extends CloudRound {
  reason: string;
  expectedObjects: number;
  problems: CloudProblem[];
  raised: CloudProblem[];
  cleared: CloudProblem[];
}

export interface CloudGuardStatus extends CloudSourceStatus, ReturnType<typeof problemCounts> {
  state: GuardState;
  started: boolean;
  stepErrors: number;
  intervalMs: number;
  listBudgetPerHour: number | null;
  stateDamage: readonly StateDamage[];
}

const CLOUD_WORDING: AlertWording = {
  noun: (role) => (role === 'related' ? 'cloud context images' : 'cloud object'),
  kind: (kind) => (kind === 'deleted' ? 'missing' : kind === 'restored' ? 'back' : kind),
  where: (path) => {
    const { storageId, key } = cloudKeyOf(path.includes('/') ? path : `${path}/`);
    return `${key === '' ? '(bucket root)' : key} in cloud storage ${storageId}`;
  },
};

export class CloudGuard extends EventEmitter<ShareGuardEventMap> {
  readonly #o: CloudGuardOptions;
  readonly #clock: GuardClock;
  readonly #rt: GuardRuntime;
  readonly #events: GuardEvents;
  readonly #index: ShareIndex;
  readonly #tracker: FileTracker;
  readonly #store: GuardStore | undefined;
  readonly #source: CloudSource;
  readonly #skipped = new Map<number, string>();
  #started: Promise<void> | undefined;
  #round: Promise<CloudRoundResult> | undefined;
  #rounds = 0;
  #closed: Promise<void> | undefined;

  constructor(options: CloudGuardOptions) {
    super();
    const logger = options.logger.child({ component: 'cloud-guard' });
    this.#o = { ...options, logger };
    const parts = assembleGuard({
      logger,
      metrics: options.metrics,
      clock: options.clock,
      moveWindowMs: 0,
      gauges: 'cloud',
      store: options.stateDir !== undefined ? { stateDir: options.stateDir, root: 'cloud-storage' } : undefined,
      emitter: this,
      wording: CLOUD_WORDING,
      lastWarmedAt: options.lastWarmedAt,
    });
    ({ clock: this.#clock, events: this.#events, rt: this.#rt, index: this.#index, tracker: this.#tracker, store: this.#store } = parts);
    this.#source = new CloudSource({ client: options.client, budget: options.budget, intervalMs: options.intervalMs }, this.#host());
  }

  #host(): SourceHost {
    const { logger, metrics } = this.#o;
    return {
      index: this.#index,
      tracker: this.#tracker,
      events: this.#events,
      metrics,
      logger,
      clock: this.#clock,
      enqueue: (job) => this.#enqueue(job),
      active: () => this.#rt.state === 'watching',
      available: () => !this.#rt.closing,
      // The cloud source reports storages one by one ('storage' events); these never come from it.
      unavailable: (reason) => {
        logger.warn({ reason }, 'cloud source unavailable');
        return Promise.resolve();
      },
      watcherError: (dir, error) => logger.warn({ dir, err: error }, 'cloud source observation failed'),
      checkHealth: () => undefined,
      flushPending: () => this.#enqueue(() => Promise.resolve()),
      drain: () => this.#drain(),
    };
  }

  /** Serial steps; a listing's observations are decided at once (no move window in a bucket) and published. */
  #enqueue(job: () => Promise<void>, what = 'cloud step'): Promise<void> {
    return this.#rt.enqueue(what, async () => {
      await job();
      this.#tracker.flushDue(this.#clock.monotonic());
      this.#drain();
    });
  }

  #drain(): number {
    return publishTransitions({ tracker: this.#tracker, events: this.#events, store: this.#store }, true);
  }

  /** Loads what the last run persisted (problems count at once), once. */
  start(): Promise<void> {
    if (this.#rt.closing) return Promise.reject(new Error('CloudGuard is closed'));
    this.#started ??= (async () => {
      this.#rt.setState('starting');
      await this.#store?.load();
      await this.#source.start();
      if (this.#rt.state === 'starting') this.#rt.setState('watching');
      this.#source.ready();
    })();
    return this.#started;
  }

  /** Makes the guarded set exactly `tasks` (tasks not on a connected cloud storage are skipped). */
  async setTasks(tasks: readonly GuardTask[]): Promise<void> {
    const wanted = new Set(tasks.map((t) => t.taskId));
    await this.start();
    return this.#enqueue(() =>
      this.#apply(
        [...this.#index.tasks.keys(), ...this.#skipped.keys()].filter((id) => !wanted.has(id)),
        tasks,
      ),
    );
  }

  async upsertTasks(tasks: readonly GuardTask[]): Promise<void> {
    await this.start();
    return this.#enqueue(() => this.#apply([], tasks));
  }

  async removeTasks(taskIds: readonly number[]): Promise<void> {
    await this.start();
    return this.#enqueue(() => this.#apply(taskIds, []));
  }

  async #apply(remove: readonly number[], upsert: readonly GuardTask[]): Promise<void> {
    const { created } = await this.#source.applyTasks(remove, upsert, this.#skipped);
    this.#store?.claim(created);
    this.#o.metrics.cloudObjectsExpected.set(this.expectedObjects);
  }

  /** Distinct objects expected (context-image directories not counted). */
  get expectedObjects(): number {
    let n = 0;
    for (let f = 0; f < this.#index.slotCount; f++) if (this.#index.isLive(f) && this.#index.roleOf(f) !== 'related') n++;
    return n;
  }

  /** One listing round (coalesced with a round already running). */
  round(reason = 'scheduled', signal?: AbortSignal): Promise<CloudRoundResult> {
    if (this.#rt.closing) return Promise.reject(new Error('CloudGuard is closed'));
    this.#round ??= this.#roundOnce(reason, signal).finally(() => (this.#round = undefined));
    return this.#round;
  }

  async #roundOnce(reason: string, signal: AbortSignal | undefined): Promise<CloudRoundResult> {
    await this.start();
    // What this round raised and cleared are its transitions (a problem found still open after a restart is neither).
    const raised = new Set<string>();
    const cleared: CloudProblem[] = [];
    const off = this.#events.on('transitions', (transitions) => {
      for (const t of transitions) {
        if (t.kind === 'deleted') raised.add(this.#index.relPath(t.f));
        else if (t.kind === 'restored') cleared.push(...this.#asCloud(this.#openProblemOf(t.f)));
      }
    });
    try {
      const round = await this.#source.round(undefined, { source: this.#rounds === 0 ? 'startup' : 'scan', ...(signal ? { signal } : {}) });
      await this.#afterRound(round);
      const problems = this.cloudProblems();
      const raisedProblems = problems.filter((p) => raised.has(cloudPath(p.storageId, p.key)));
      return { ...round, reason, expectedObjects: this.expectedObjects, problems, raised: raisedProblems, cleared };
    } finally {
      off();
    }
  }

  async #afterRound(round: CloudRound): Promise<void> {
    await this.#enqueue(async () => {
      // Every slot was observed: a persisted problem left unclaimed is of an object no task reads any more.
      const complete = round.directoriesDeferred === 0 && round.storages.every((s) => s.status === 'AVAILABLE') && round.observed === this.#index.liveFiles;
      if (complete && this.#index.liveFiles > 0) this.#tracker.dropUnseenPersisted();
      if (this.#rounds++ === 0) this.#logStillOpen();
      return Promise.resolve();
    });
    this.#store?.flushSoon();
    this.#store?.scheduleSave(true);
  }

  /** A slot as an open problem (for one just restored: what it was). */
  #openProblemOf(f: number): OpenProblem {
    const tasks = affectedTasksOf(this.#index, f, this.#o.lastWarmedAt);
    return {
      path: this.#index.relPath(f),
      kind: 'deleted',
      role: this.#index.roleOf(f),
      since: this.#clock.wall(),
      taskIds: tasks.map((t) => t.taskId),
      tasks,
    };
  }

  #logStillOpen(): void {
    const still = this.#tracker.stillOpen.splice(0);
    if (still.length > 0)
      this.#o.logger.warn({ count: still.length, objects: still.slice(0, 10) }, `${still.length} cloud problem(s) from before the restart still open`);
  }

  /** Open problems as the guard's core keeps them (paths are `<storageId>/<key>`). */
  problems(): OpenProblem[] {
    return openProblems(this.#index, this.#tracker, this.#o.lastWarmedAt);
  }

  /** Open problems per task and key, naming jobs and chunks. */
  cloudProblems(): CloudProblem[] {
    return this.problems().flatMap((p) => this.#asCloud(p));
  }

  #asCloud(p: OpenProblem): CloudProblem[] {
    const { storageId, key } = cloudKeyOf(p.path);
    return p.tasks.map((t) => ({
      taskId: t.taskId,
      ...(t.taskName !== undefined ? { taskName: t.taskName } : {}),
      storageId,
      kind: p.role === 'related' ? ('related_missing' as const) : ('object_missing' as const),
      key,
      frame: t.frames[0] ?? -1,
      jobs: t.jobs.map((j) => j.jobId).sort((a, b) => a - b),
      chunks: t.jobs.flatMap((j) => j.chunks.map((chunk) => ({ jobId: j.jobId, chunk }))),
      since: p.since,
    }));
  }

  status(): CloudGuardStatus {
    return {
      state: this.#rt.state,
      started: this.#started !== undefined,
      stepErrors: this.#rt.errors + this.#events.listenerErrors,
      intervalMs: this.#o.intervalMs,
      listBudgetPerHour: this.#o.budget.perHour ?? null,
      ...problemCounts(this.#index, this.#tracker, this.#skipped),
      ...this.#source.status(),
      stateDamage: this.#store?.damage ?? [],
    };
  }

  /** Stops a round in progress before its next call, writes the state. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#rt.close(() => this.#source.close());
      await this.#round?.catch(() => undefined); // its failure went to whoever awaited it
      await this.#store?.close({ started: this.#started !== undefined, available: true });
    })();
    return this.#closed;
  }
}
