/**
 * Tasks named by webhook deliveries, waiting for discovery to look at them. A burst for one
 * task (CVAT sends an `update:task` per field edit, a `create:job` per job, retries…) is one
 * entry; job events merge into their task, since discovery re-reads a task's jobs as a
 * whole. The set is bounded in count: past the bound a delivery is not dropped, it owes a
 * complete task listing instead, which looks at every task — so a flood loses no task.
 *
 * Pure memory and counters; the discovery loop takes what is pending, the service logs
 * and exports the counters.
 */
export type AddOutcome = 'queued' | 'coalesced' | 'overflow';

/** Counts since the last `drainStats()`: what an interval summary reports. */
export interface CoalesceStats {
  /** Deliveries naming a task (accepted, not duplicates). */
  deliveries: number;
  /** Deliveries for a task already waiting: no extra look. */
  coalesced: number;
  /** Deliveries for a new task while the set was full: a complete listing covers them. */
  overflowed: number;
}

/** What one discovery pass takes: the waiting task ids, and whether a complete listing is owed. */
export interface PendingLook {
  taskIds: number[];
  full: boolean;
}

export class PendingTasks {
  readonly capacity: number;
  private readonly ids = new Set<number>();
  private fullOwed = false;
  private stats: CoalesceStats = { deliveries: 0, coalesced: 0, overflowed: 0 };

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`Expected \`capacity\` to be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  add(taskId: number): AddOutcome {
    this.stats.deliveries++;
    if (this.ids.has(taskId)) {
      this.stats.coalesced++;
      return 'coalesced';
    }
    if (this.ids.size >= this.capacity) {
      // Once a complete listing is owed, every further new task is covered by it too.
      this.fullOwed = true;
      this.stats.overflowed++;
      return 'overflow';
    }
    this.ids.add(taskId);
    return 'queued';
  }

  /** Tasks waiting (at most `capacity`). */
  get size(): number {
    return this.ids.size;
  }

  /** True when a pass has something to look at. */
  get waiting(): boolean {
    return this.fullOwed || this.ids.size > 0;
  }

  /** Hands everything pending to one pass and starts afresh. */
  take(): PendingLook {
    const look = { taskIds: [...this.ids], full: this.fullOwed };
    this.ids.clear();
    this.fullOwed = false;
    return look;
  }

  /** Gives back what a failed pass took, so the next pass looks at its tasks (still bounded). */
  putBack(look: PendingLook): void {
    for (const id of look.taskIds) {
      if (this.ids.size >= this.capacity) {
        this.fullOwed = true;
        break;
      }
      this.ids.add(id);
    }
    if (look.full) this.fullOwed = true;
  }

  /** Counters since the previous call. */
  drainStats(): CoalesceStats {
    const stats = this.stats;
    this.stats = { deliveries: 0, coalesced: 0, overflowed: 0 };
    return stats;
  }
}

/** One summary line's figures: deliveries since the last line and what discovery did with them. */
export interface IntakeSummary extends CoalesceStats {
  /** Tasks named by webhooks that discovery compared with a fresh listing. */
  tasksLooked: number;
  /** List-by-id requests those looks cost. */
  idLists: number;
  /** Complete listings owed to the pending bound. */
  fullListings: number;
}

/**
 * Webhook activity as one log line per interval instead of one per delivery: the first
 * look after a quiet spell is reported at once (an admin checking a new webhook sees it),
 * later ones at most every `everyMs`; `flush()` reports the rest at shutdown.
 */
export class IntakeLog {
  private readonly everyMs: number;
  private readonly now: () => number;
  private sum: IntakeSummary = emptySummary();
  private lastAt: number | undefined;

  constructor(everyMs: number, now: () => number = Date.now) {
    this.everyMs = everyMs;
    this.now = now;
  }

  /** Adds one pass's figures; returns a summary when one is due. */
  record(stats: CoalesceStats, look: { tasksLooked: number; idLists: number; full: boolean }): IntakeSummary | undefined {
    const s = this.sum;
    s.deliveries += stats.deliveries;
    s.coalesced += stats.coalesced;
    s.overflowed += stats.overflowed;
    s.tasksLooked += look.tasksLooked;
    s.idLists += look.idLists;
    if (look.full) s.fullListings++;
    if (s.deliveries === 0 && s.tasksLooked === 0) return undefined;
    const now = this.now();
    if (this.lastAt !== undefined && now - this.lastAt < this.everyMs) return undefined;
    this.lastAt = now;
    return this.take();
  }

  /** Whatever was not reported yet (undefined when nothing happened). */
  flush(): IntakeSummary | undefined {
    return this.sum.deliveries === 0 && this.sum.tasksLooked === 0 ? undefined : this.take();
  }

  private take(): IntakeSummary {
    const out = this.sum;
    this.sum = emptySummary();
    return out;
  }
}

function emptySummary(): IntakeSummary {
  return { deliveries: 0, coalesced: 0, overflowed: 0, tasksLooked: 0, idLists: 0, fullListings: 0 };
}
