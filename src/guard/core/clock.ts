/**
 * The guard's one clock, injected everywhere time is read: `wall()` stamps alerts and
 * state (ms since the epoch), `monotonic()` measures windows and deadlines (ms, never goes
 * back). Tests pass a fake one and step it; the core never reads Date or performance.
 */
export interface GuardClock {
  wall(): number;
  monotonic(): number;
}

/** The real clock; `wall` may be replaced (ShareGuardOptions.clock). */
export function systemClock(wall: () => number = Date.now): GuardClock {
  // eslint-disable-next-line no-restricted-globals -- the one place the core's monotonic time comes from
  return { wall, monotonic: () => performance.now() };
}

/** A clock that moves only when told to (tests of the core). */
export class FakeClock implements GuardClock {
  #wall: number;
  #mono = 0;

  constructor(wallStart = 1_700_000_000_000) {
    this.#wall = wallStart;
  }

  wall(): number {
    return this.#wall;
  }

  monotonic(): number {
    return this.#mono;
  }

  advance(ms: number): void {
    this.#wall += ms;
    this.#mono += ms;
  }
}
