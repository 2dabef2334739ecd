/**
 * Time for the emulator. Cache expiry (24 h TTL, counted from when an item was BUILT),
 * `created_date`/`updated_date` and `chunks_updated_date` all read the injected clock,
 * so a test can jump a day ahead without waiting. Build durations and the server's
 * wait-before-429 are real timers: they are ms-scale in tests anyway.
 */

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to. Starts at 2026-08-12T00:00:00Z unless given a start. */
export class ManualClock implements Clock {
  #now: number;

  constructor(startMs: number = Date.UTC(2026, 7, 12)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  /** Moves the clock forward (negative values are refused: CVAT's clock never runs backwards). */
  advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot advance the clock by ${ms} ms`);
    this.#now += ms;
    return this.#now;
  }

  set(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`invalid clock value ${ms}`);
    this.#now = ms;
  }
}

/** The real clock plus an offset that only grows: the demo's clock, advanced by the control API. */
export class OffsetClock implements Clock {
  #offset = 0;

  now(): number {
    return Date.now() + this.#offset;
  }

  advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot advance the clock by ${ms} ms`);
    this.#offset += ms;
    return this.now();
  }
}

/** A clock the control API can move (`ManualClock`, `OffsetClock`). */
export function isAdvanceable(clock: Clock): clock is Clock & { advance(ms: number): number } {
  return typeof (clock as { advance?: unknown }).advance === 'function';
}

/**
 * A timestamp the way CVAT's DRF `DateTimeField` renders it: microsecond precision, `Z`
 * (e.g. `2026-05-11T17:25:43.375000Z`), used for dates in JSON and for `X-Updated-Date`.
 */
export function cvatDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
