/**
 * A one-shot event of the service's life (the first discovery ended): reached once, and
 * awaited by loops that must still stop when the service does.
 */
export class Milestone {
  #reached = false;
  #resolve: () => void = () => undefined;
  readonly #promise = new Promise<void>((resolve) => (this.#resolve = resolve));

  get reached(): boolean {
    return this.#reached;
  }

  reach(): void {
    this.#reached = true;
    this.#resolve();
  }

  /** Resolves once reached, or as soon as `signal` aborts (the caller checks which). */
  until(signal: AbortSignal): Promise<void> {
    if (this.#reached || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      void this.#promise.then(done);
    });
  }
}
