/**
 * The listing budget: at most `perHour` content-v2 calls (each a billed LIST on the bucket) in
 * any hour, as a token bucket that starts full and refills continuously. A round that would
 * exceed it leaves directories for a later round (counted as deferred).
 */
export interface Clock {
  now(): number;
}

const HOUR_MS = 3_600_000;

export class ListBudget {
  readonly perHour: number;
  #tokens: number;
  #at: number;
  readonly #clock: Clock;

  constructor(perHour: number, clock: Clock = { now: () => Date.now() }) {
    if (!Number.isFinite(perHour) || perHour < 1) throw new RangeError(`the listing budget must be at least 1 call per hour, got ${perHour}`);
    this.perHour = Math.floor(perHour);
    this.#tokens = this.perHour;
    this.#clock = clock;
    this.#at = clock.now();
  }

  #refill(): void {
    const now = this.#clock.now();
    if (now > this.#at) this.#tokens = Math.min(this.perHour, this.#tokens + ((now - this.#at) * this.perHour) / HOUR_MS);
    this.#at = Math.max(this.#at, now);
  }

  /** Calls that may be made now. */
  available(): number {
    this.#refill();
    return Math.floor(this.#tokens);
  }

  /** Takes one call; false when the budget is spent. */
  take(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** No limit (`check`: one pass, each directory page listed once). */
export const UNLIMITED: Pick<ListBudget, 'take' | 'available'> = { take: () => true, available: () => Number.MAX_SAFE_INTEGER };
