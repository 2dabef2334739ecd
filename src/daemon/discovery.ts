/**
 * Finds new, changed and deleted tasks by polling CVAT (webhooks only speed it up:
 * sandbox tasks emit none). Each poll asks for tasks updated since the last one
 * (`filter` on updated_date, newest first); every `fullEvery` polls a complete listing
 * catches deletions and changes that did not touch the task's date.
 */
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { Logger } from '../log.js';
import { collectTaskRecords, type InventoryIssue, type TaskRecord } from '../cvat/inventory.js';

export interface DiscoveryOptions {
  client: CvatClient;
  features: CvatFeatures;
  logger: Logger;
  /** Complete listing every this many polls (1 = always). */
  fullEvery?: number;
  onRecord: (record: TaskRecord, isNew: boolean) => void | Promise<void>;
  onRemoved: (taskId: number) => void | Promise<void>;
  onIssue?: (issue: InventoryIssue) => void;
}

export interface DiscoveryPass {
  full: boolean;
  listed: number;
  refreshed: number;
  removed: number;
}

export class Discovery {
  private readonly options: DiscoveryOptions;
  /** task id → updated_date last seen */
  private readonly known = new Map<number, string>();
  private polls = 0;
  private newest: string | undefined;
  private readonly forced = new Set<number>();

  constructor(options: DiscoveryOptions) {
    this.options = options;
  }

  get taskCount(): number {
    return this.known.size;
  }

  /** Refresh these tasks on the next pass whatever their date says (webhooks, restored files). */
  refresh(taskId: number): void {
    this.forced.add(taskId);
  }

  forget(taskId: number): void {
    this.known.delete(taskId);
  }

  async pass(signal?: AbortSignal): Promise<DiscoveryPass> {
    const { client, logger } = this.options;
    const full = this.polls % (this.options.fullEvery ?? 10) === 0;
    this.polls++;
    const seen = new Set<number>();
    const changed = new Set<number>(this.forced);
    this.forced.clear();
    // `>=`, not `>`: a task updated in the same millisecond as the newest one seen must not
    // wait for the next full listing; re-listing that one task is harmless (dates compared below).
    const filter = !full && this.newest ? JSON.stringify({ and: [{ '>=': [{ var: 'updated_date' }, this.newest] }] }) : undefined;
    let listed = 0;
    let newest = this.newest;
    for await (const checked of client.tasks({ sort: '-updated_date', ...(filter ? { filter } : {}) }, signal)) {
      listed++;
      if (!checked.ok) {
        this.options.onIssue?.({ taskId: checked.id, severity: 'problem', message: checked.problem });
        if (checked.id !== undefined) seen.add(checked.id);
        continue;
      }
      const task = checked.value;
      seen.add(task.id);
      const date = task.updated_date ?? '';
      if (!newest || date > newest) newest = date;
      if (this.known.get(task.id) !== date) changed.add(task.id);
    }
    let removed = 0;
    if (full) {
      for (const id of [...this.known.keys()]) {
        if (!seen.has(id)) {
          this.known.delete(id);
          changed.delete(id);
          removed++;
          await this.options.onRemoved(id);
        }
      }
    }
    let refreshed = 0;
    if (changed.size > 0) {
      const ids = [...changed];
      const issues: InventoryIssue[] = [];
      const found = new Set<number>();
      for await (const record of collectTaskRecords(client, { all: false, taskIds: ids, projectIds: [], jobIds: [] }, {
        features: this.options.features,
        withMeta: true,
        ...(signal ? { signal } : {}),
        onIssue: (issue) => {
          issues.push(issue);
          this.options.onIssue?.(issue);
        },
      })) {
        found.add(record.task.id);
        const isNew = !this.known.has(record.task.id);
        this.known.set(record.task.id, record.task.updated_date ?? '');
        refreshed++;
        await this.options.onRecord(record, isNew);
      }
      for (const id of ids) {
        // Deleted between listing and lookup, or no data yet: drop it so a later pass looks again.
        if (!found.has(id) && issues.some((i) => i.taskId === id && /not found|deleted/.test(i.message))) {
          if (this.known.delete(id)) {
            removed++;
            await this.options.onRemoved(id);
          }
        }
      }
    }
    this.newest = newest;
    logger.debug({ full, listed, refreshed, removed }, 'discovery pass');
    return { full, listed, refreshed, removed };
  }
}
