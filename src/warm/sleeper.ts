/**
 * Sleeps that end early when a run stops, with one abort listener for the whole run.
 * `timers/promises.setTimeout(ms, v, { signal })` adds a listener to the signal per
 * call: with more than ten chunks waiting out a Retry-After or a back-off at once,
 * Node printed MaxListenersExceededWarning to stderr (as plain text, between the JSON
 * log lines). Here the pending timers are kept in a set and all woken by one listener.
 */
export class Sleeper {
  private readonly pending = new Map<NodeJS.Timeout, () => void>();
  private readonly signal: AbortSignal;

  constructor(signal: AbortSignal) {
    this.signal = signal;
    signal.addEventListener('abort', () => this.wakeAll(), { once: true });
  }

  /** Resolves after `ms`, or at once when the signal is (or becomes) aborted. Never rejects. */
  sleep(ms: number): Promise<void> {
    if (this.signal.aborted || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(timer);
        resolve();
      }, ms);
      this.pending.set(timer, resolve);
    });
  }

  private wakeAll(): void {
    for (const [timer, resolve] of this.pending) {
      clearTimeout(timer);
      resolve();
    }
    this.pending.clear();
  }
}
