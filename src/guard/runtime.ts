/**
 * The guard's runtime: everything about *when* things run, none of *what* they do.
 *  - a serial queue: event handling, flushes and index changes never interleave;
 *  - an explicit state: idle → starting → watching ⇄ unavailable → closing;
 *  - one owner for every timer of the guard, by name (setting a name replaces its timer),
 *    all cleared by `close()`;
 *  - errors surfaced: a failed step or background job is logged and counted (`errors`),
 *    never dropped by a bare `.catch(() => undefined)`.
 */
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';

export type GuardState = 'idle' | 'starting' | 'watching' | 'unavailable' | 'closing';

/** The state changes a guard can make; anything else is a bug and throws. */
const EDGES: Record<GuardState, readonly GuardState[]> = {
  idle: ['starting', 'closing'],
  starting: ['watching', 'unavailable', 'closing'],
  watching: ['unavailable', 'closing'],
  unavailable: ['watching', 'closing'],
  closing: [],
};

export interface GuardRuntimeOptions {
  logger: Logger;
  /** Called on every state change (after it happened). */
  onState?: (state: GuardState, previous: GuardState) => void;
  /** Called for every error a step or background job threw (after it was logged). */
  onError?: (what: string, error: unknown) => void;
}

interface Timer {
  handle: NodeJS.Timeout;
  repeat: boolean;
}

export class GuardRuntime {
  readonly #o: GuardRuntimeOptions;
  #state: GuardState = 'idle';
  #queue: Promise<void> = Promise.resolve();
  readonly #timers = new Map<string, Timer>();
  readonly #background = new Set<Promise<unknown>>();
  #errors = 0;
  #closed: Promise<void> | undefined;

  constructor(options: GuardRuntimeOptions) {
    this.#o = options;
  }

  get state(): GuardState {
    return this.#state;
  }

  /** Errors logged so far (failed steps and background jobs). */
  get errors(): number {
    return this.#errors;
  }

  get closing(): boolean {
    return this.#state === 'closing';
  }

  /** Moves to `next` (no-op when already there); throws on an edge the guard never takes. */
  setState(next: GuardState): void {
    const previous = this.#state;
    if (previous === next) return;
    if (!EDGES[previous].includes(next)) throw new Error(`share guard: no transition from ${previous} to ${next}`);
    this.#state = next;
    this.#o.onState?.(next, previous);
  }

  /**
   * Runs `job` after every job queued before it. The returned promise settles when the job
   * did and never rejects: a failure is logged and counted. Jobs queued once closing are skipped.
   */
  enqueue(what: string, job: () => Promise<void> | void): Promise<void> {
    const run = this.#queue.then(async () => {
      if (this.closing) return;
      await job();
    });
    this.#queue = run.catch((error: unknown) => this.#fail(what, error));
    return this.#queue;
  }

  /** Starts `job` in the background (not queued); a failure is logged and counted. `close()` waits for it. */
  spawn<T>(what: string, job: Promise<T>): void {
    const tracked = job.then(
      () => undefined,
      (error: unknown) => this.#fail(what, error),
    );
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }

  /** Runs `fn` once after `ms` under `name` (replacing a timer of that name). */
  after(name: string, ms: number, fn: () => void): void {
    this.#set(name, ms, fn, false);
  }

  /** Runs `fn` every `ms` under `name` (replacing a timer of that name). */
  every(name: string, ms: number, fn: () => void): void {
    this.#set(name, ms, fn, true);
  }

  has(name: string): boolean {
    return this.#timers.has(name);
  }

  cancel(name: string): void {
    const timer = this.#timers.get(name);
    if (!timer) return;
    this.#timers.delete(name);
    if (timer.repeat) clearInterval(timer.handle);
    else clearTimeout(timer.handle);
  }

  /**
   * Enters `closing`: every timer is cleared, `beforeDrain` runs (stop the sources of new
   * work), then the queue and background jobs are waited for. Idempotent.
   */
  close(beforeDrain: () => Promise<void> | void = () => undefined): Promise<void> {
    this.#closed ??= (async () => {
      this.setState('closing');
      for (const name of [...this.#timers.keys()]) this.cancel(name);
      await beforeDrain();
      await this.#queue;
      await Promise.all([...this.#background]);
    })();
    return this.#closed;
  }

  #set(name: string, ms: number, fn: () => void, repeat: boolean): void {
    this.cancel(name);
    if (this.closing) return;
    const run = () => {
      if (!repeat) this.#timers.delete(name);
      try {
        fn();
      } catch (error) {
        this.#fail(`timer ${name}`, error);
      }
    };
    const handle = repeat ? setInterval(run, ms) : setTimeout(run, Math.max(0, ms));
    handle.unref();
    this.#timers.set(name, { handle, repeat });
  }

  #fail(what: string, error: unknown): void {
    this.#errors++;
    this.#o.logger.error({ err: describeError(error), step: what }, 'share guard step failed');
    this.#o.onError?.(what, error);
  }
}
