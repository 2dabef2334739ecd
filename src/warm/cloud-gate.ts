/**
 * Keeps one revoked bucket from costing a request per chunk: after CVAT says a bucket is
 * forbidden or gone, every task on that storage is skipped (no request) until the storage's
 * status is AVAILABLE again; a detached task (409) is skipped on its own. Tasks whose storage id
 * is unknown (CVAT < 2.44 has no `data_cloud_storage_id`) are blocked one by one.
 */
import type { CloudCause } from './cloud-errors.js';

export interface CloudBlock {
  /** The storage id, when CVAT told us which storage the task uses. */
  storageId?: number;
  cause: CloudCause;
  /** The reason of the answer that started the block. */
  reason: string;
  /** Tasks seen blocked, and the requests skipped for each. */
  skipped: Map<number, number>;
}

export interface CloudBlockSummary {
  storageId?: number;
  kind: CloudCause['kind'];
  resource?: string;
  reason: string;
  taskIds: number[];
  /** Requests not sent because of this block. */
  skipped: number;
}

export type StorageStatus = 'AVAILABLE' | 'NOT_FOUND' | 'FORBIDDEN' | 'unknown';

export class CloudGate {
  /** Blocks by storage id. */
  readonly #byStorage = new Map<number, CloudBlock>();
  /** Blocks by task id (detached tasks, and bucket blocks of tasks with an unknown storage). */
  readonly #byTask = new Map<number, CloudBlock>();
  readonly #storageOf: (taskId: number) => number | undefined;

  /** `storageOf`: the cloud storage id of a task (task `data_cloud_storage_id`), undefined when not cloud or unknown. */
  constructor(storageOf: (taskId: number) => number | undefined) {
    this.#storageOf = storageOf;
  }

  /** The block that stops requests of this task, if any (and counts the skip). */
  blocked(taskId: number): CloudBlock | undefined {
    const storageId = this.#storageOf(taskId);
    const block = this.#byTask.get(taskId) ?? (storageId !== undefined ? this.#byStorage.get(storageId) : undefined);
    if (block) block.skipped.set(taskId, (block.skipped.get(taskId) ?? 0) + 1);
    return block;
  }

  /** Records a cloud answer of `taskId`'s request; bucket-wide and detached causes start a block. */
  note(taskId: number, cause: CloudCause, reason: string): void {
    if (cause.kind === 'object_missing' || cause.kind === 'object_forbidden') return; // other objects may be fine
    const storageId = cause.kind === 'storage_detached' ? undefined : this.#storageOf(taskId);
    const block: CloudBlock = { ...(storageId !== undefined ? { storageId } : {}), cause, reason, skipped: new Map([[taskId, 0]]) };
    if (storageId !== undefined) {
      if (!this.#byStorage.has(storageId)) this.#byStorage.set(storageId, block);
    } else if (!this.#byTask.has(taskId)) this.#byTask.set(taskId, block);
  }

  /** Storage ids currently blocked (for a status re-check before the next round). */
  blockedStorages(): number[] {
    return [...this.#byStorage.keys()];
  }

  /**
   * Asks each blocked storage's status (`GET /api/cloudstorages/{id}/status`) and lifts the
   * blocks of those AVAILABLE again. Detached tasks and unknown-storage blocks are lifted too:
   * the next request of such a task tells again. Returns the storages unblocked.
   */
  async refresh(statusOf: (storageId: number) => Promise<StorageStatus | undefined>): Promise<number[]> {
    this.#byTask.clear();
    const lifted: number[] = [];
    for (const id of [...this.#byStorage.keys()]) {
      let status: StorageStatus | undefined;
      try {
        status = await statusOf(id);
      } catch {
        status = undefined; // unknown: keep the block
      }
      if (status === 'AVAILABLE') {
        this.#byStorage.delete(id);
        lifted.push(id);
      }
    }
    return lifted;
  }

  summary(): CloudBlockSummary[] {
    const out: CloudBlockSummary[] = [];
    for (const block of new Set([...this.#byStorage.values(), ...this.#byTask.values()])) {
      out.push({
        ...(block.storageId !== undefined ? { storageId: block.storageId } : {}),
        kind: block.cause.kind,
        ...(block.cause.resource !== undefined ? { resource: block.cause.resource } : {}),
        reason: block.reason,
        taskIds: [...block.skipped.keys()].sort((a, b) => a - b),
        skipped: [...block.skipped.values()].reduce((a, b) => a + b, 0),
      });
    }
    return out;
  }
}
