/**
 * One shutdown coordinator for every command (`run`, `warm`, `check`, …): an order, a deadline, and
 * second-signal escalation (after graphile-worker's main.ts and close-with-grace).
 *
 * - First SIGTERM/SIGINT (or `shutdown(reason)`): `signal` aborts at once (stop intake),
 *   then the registered handlers run **one after another, in registration order** —
 *   register them in the order things must stop, typically:
 *     1. HTTP `stopAccepting()` (readiness fails, webhooks answer 503),
 *     2. the scheduler / warm engine (abort, let in-flight chunk requests settle),
 *     3. the ledger flush,
 *     4. HTTP `close()`, CVAT client `close()`.
 *   Each handler gets an AbortSignal that fires when the graceful part of the deadline
 *   is used up. When all handlers are done the process exits 0 (or the code passed to
 *   `shutdown`), 1 if a handler threw or overran.
 * - Deadline (default 10 s): the last `forceMs` of it are reserved. When the graceful
 *   part runs out, the handler still running is logged and abandoned, and the remaining
 *   handlers are called at once with an already-aborted signal — so a stuck drain still
 *   lets the ledger flush. Whatever happens, the process exits by the deadline (code 1).
 * - A second signal while shutting down exits immediately with 130.
 */
import { EXIT, WardenError, describeError } from '../errors.js';
import type { Logger } from '../log.js';

export type ShutdownHandler = (signal: AbortSignal) => Promise<void> | void;

export interface ShutdownOptions {
  logger: Logger;
  /** Total time from the first signal to exit. @default 10000 */
  deadlineMs?: number;
  /**
   * The end of the deadline kept for handlers that still have to run after the
   * graceful part ran out (they get an aborted signal and should finish at once).
   * @default min(1000, deadlineMs / 5)
   */
  forceMs?: number;
  /** Injected in tests. @default process.exit */
  exit?: (code: number) => void;
  /**
   * Called instead of `exit` when the process must end now: a second signal, or the hard
   * deadline. A CLI that returns its code from `finished` passes `exit: () => {}` and this
   * as process.exit. @default exit
   */
  forcedExit?: (code: number) => void;
  /** @default ['SIGTERM', 'SIGINT'] */
  signals?: readonly NodeJS.Signals[];
  /**
   * Exit code when a signal started the shutdown and every step succeeded: 0 for the
   * service (a stop is its normal end), EXIT.interrupted (130) for one-shot commands
   * cut short. @default 0
   */
  signalExitCode?: number;
}

export interface Shutdown {
  /** Aborted (reason: WardenError code ABORTED) as soon as shutdown starts. */
  readonly signal: AbortSignal;
  /** True once shutdown has started. */
  readonly started: boolean;
  /** Resolves with the exit code once shutdown has finished (never, if it never starts). */
  readonly finished: Promise<number>;
  /** Adds a step; steps run in registration order. Returns a function that removes it. */
  onShutdown(name: string, fn: ShutdownHandler): () => void;
  /**
   * Starts shutdown (later calls return the same promise). Resolves with the exit code
   * after calling `exit` with it; `exitCode` is used when every step succeeds.
   */
  shutdown(reason: string, options?: { exitCode?: number }): Promise<number>;
  /** Listens for the configured signals; the first starts shutdown, the second exits 130. Idempotent. */
  installSignalHandlers(): void;
  /** Removes signal listeners and timers. */
  dispose(): void;
  [Symbol.dispose](): void;
}

export const EXIT_SECOND_SIGNAL = EXIT.interrupted;
const EXIT_FAILED = 1;

interface Step {
  name: string;
  fn: ShutdownHandler;
}

/** The timers a shutdown owns, so that exiting and dispose() clear every one. */
interface TimerSet {
  add(ms: number, fn: () => void): void;
  clear(): void;
}

function timerSet(): TimerSet {
  const timers = new Set<NodeJS.Timeout>();
  return {
    add(ms, fn) {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, ms);
      timers.add(t);
    },
    clear() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}

/** What one shutdown run works with (the steps list stays live: it is the coordinator's own). */
interface RunContext {
  steps: readonly Step[];
  logger: Logger;
  deadlineMs: number;
  forceMs: number;
  timers: TimerSet;
  intake: AbortController;
}

/** What the steps have done so far: the hard deadline's log line reads it. */
interface Progress {
  failed: string[];
  abandoned: string[];
  current: string | undefined;
}

/** The graceful part of the deadline: `signal` aborts and `over` resolves when it runs out. */
interface Grace {
  signal: AbortSignal;
  over: Promise<'deadline'>;
}

export function createShutdown(options: ShutdownOptions): Shutdown {
  const { logger } = options;
  const deadlineMs = options.deadlineMs ?? 10_000;
  if (!(deadlineMs > 0)) throw new RangeError(`Expected \`deadlineMs\` to be a positive number, got ${deadlineMs}`);
  const forceMs = Math.min(options.forceMs ?? Math.min(1_000, deadlineMs / 5), deadlineMs);
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? (['SIGTERM', 'SIGINT'] as const);
  const signalExitCode = options.signalExitCode ?? 0;
  let settle: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (settle = resolve));

  const steps: Step[] = [];
  const intake = new AbortController();
  const timers = timerSet();
  const listeners = new Map<NodeJS.Signals, () => void>();
  let running: Promise<number> | undefined;
  let exited = false;

  const forcedExit = options.forcedExit ?? exit;
  const doExit = (code: number, forced = false) => {
    if (exited) return;
    exited = true;
    settle(code);
    (forced ? forcedExit : exit)(code);
  };

  const run = async (reason: string, exitCode: number): Promise<number> => {
    const { code, forced } = await runShutdown({ steps, logger, deadlineMs, forceMs, timers, intake }, reason, exitCode);
    timers.clear();
    doExit(code, forced);
    return code;
  };

  const shutdown: Shutdown['shutdown'] = (reason, opts) => {
    running ??= run(reason, opts?.exitCode ?? 0);
    return running;
  };

  const onSignal = (sig: NodeJS.Signals) => {
    if (running) {
      logger.warn({ signal: sig }, `second signal during shutdown: exiting now with ${EXIT_SECOND_SIGNAL}`);
      timers.clear();
      doExit(EXIT_SECOND_SIGNAL, true);
      return;
    }
    void shutdown(`received ${sig}`, { exitCode: signalExitCode });
  };

  const dispose = () => {
    for (const [sig, listener] of listeners) process.off(sig, listener);
    listeners.clear();
    timers.clear();
  };

  return {
    signal: intake.signal,
    get started() {
      return running !== undefined;
    },
    finished,
    onShutdown(name, fn) {
      const step: Step = { name, fn };
      steps.push(step);
      return () => {
        const index = steps.indexOf(step);
        if (index !== -1 && !running) steps.splice(index, 1);
      };
    },
    shutdown,
    installSignalHandlers() {
      for (const sig of signals) {
        if (listeners.has(sig)) continue;
        const listener = () => onSignal(sig);
        listeners.set(sig, listener);
        process.on(sig, listener);
      }
    },
    dispose,
    [Symbol.dispose]: dispose,
  };
}

/**
 * One shutdown: stop intake, run the steps against the graceful deadline, and settle on an
 * exit code — or on EXIT_FAILED, `forced`, when the hard deadline comes first.
 */
async function runShutdown(ctx: RunContext, reason: string, exitCode: number): Promise<{ code: number; forced: boolean }> {
  const { logger, deadlineMs } = ctx;
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  logger.info({ reason, deadlineMs, steps: ctx.steps.map((s) => s.name) }, 'shutdown started');
  ctx.intake.abort(new WardenError('ABORTED', `shutting down: ${reason}`));

  const graceful = new AbortController();
  ctx.timers.add(deadlineMs - ctx.forceMs, () => graceful.abort(new WardenError('ABORTED', `shutdown deadline of ${deadlineMs} ms reached`)));
  const grace: Grace = {
    signal: graceful.signal,
    over: new Promise<'deadline'>((resolve) => graceful.signal.addEventListener('abort', () => resolve('deadline'), { once: true })),
  };
  const progress: Progress = { failed: [], abandoned: [], current: undefined };

  const sequence = async (): Promise<number> => {
    await runSteps(ctx.steps, grace, progress, logger);
    const { failed, abandoned } = progress;
    const code = failed.length > 0 || abandoned.length > 0 ? EXIT_FAILED : exitCode;
    logger.info(
      { reason, exitCode: code, durationMs: elapsed(), ...(failed.length ? { failed } : {}), ...(abandoned.length ? { abandoned } : {}) },
      'shutdown complete',
    );
    return code;
  };

  const hard = new Promise<number>((resolve) =>
    ctx.timers.add(deadlineMs, () => {
      logger.error(
        { reason, durationMs: elapsed(), stillRunning: progress.current, abandoned: progress.abandoned },
        `shutdown deadline of ${deadlineMs} ms passed: exiting now`,
      );
      resolve(EXIT_FAILED);
    }),
  );

  let forced = false;
  const code = await Promise.race([sequence(), hard.then((c) => ((forced = true), c))]);
  return { code, forced };
}

/** The steps one after another; once the graceful part is over, each remaining one runs forced. */
async function runSteps(steps: readonly Step[], grace: Grace, progress: Progress, logger: Logger): Promise<void> {
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    if (!step) continue;
    progress.current = step.name;
    const stepStarted = performance.now();
    const forced = grace.signal.aborted;
    const attempt = Promise.resolve()
      .then(() => step.fn(grace.signal))
      .then(
        () => 'done' as const,
        (error: unknown) => {
          progress.failed.push(step.name);
          logger.error({ step: step.name, err: describeError(error) }, 'shutdown step failed');
          return 'failed' as const;
        },
      );
    // Forced steps run with an aborted signal and are awaited until the hard deadline.
    const outcome = forced ? await attempt : await Promise.race([attempt, grace.over]);
    if (outcome === 'deadline') {
      progress.abandoned.push(step.name);
      logger.warn(
        { step: step.name, stepMs: Math.round(performance.now() - stepStarted), remaining: steps.slice(i + 1).map((s) => s.name) },
        'shutdown deadline reached: abandoning the step still running; forcing the remaining steps',
      );
      continue;
    }
    logger.debug({ step: step.name, stepMs: Math.round(performance.now() - stepStarted), forced }, 'shutdown step finished');
  }
  progress.current = undefined;
}
