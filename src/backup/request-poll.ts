/**
 * The pace at which the warden polls one of CVAT's background requests (a backup export or
 * import, `GET /api/requests/{rq_id}`): 100 ms, doubling to a cap, never sleeping past the deadline.
 * One module so the export and the import cannot drift apart.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** The longest pause between two polls unless the caller sets `pollIntervalMs` (tests use less). */
export const REQUEST_POLL_CAP_MS = 2000;
const FIRST_POLL_MS = 100;

export class RequestPoll {
  #pause = FIRST_POLL_MS;
  readonly #deadline: number;
  readonly #capMs: number;
  readonly #sleepOptions: { signal: AbortSignal } | undefined;

  constructor(deadline: number, capMs: number | undefined, signal?: AbortSignal) {
    this.#deadline = deadline;
    this.#capMs = capMs ?? REQUEST_POLL_CAP_MS;
    this.#sleepOptions = signal ? { signal } : undefined;
  }

  /** Waits before the next poll; a stuck request must end on time, not a poll later. */
  async wait(): Promise<void> {
    await sleep(Math.max(1, Math.min(this.#pause, this.#deadline - Date.now() + 1)), undefined, this.#sleepOptions);
    this.#pause = Math.min(this.#pause * 2, this.#capMs);
  }
}
