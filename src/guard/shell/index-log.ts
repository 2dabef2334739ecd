/**
 * One info line per burst of task changes ("share index updated"), not one per task: the
 * service feeds tasks one at a time, ten thousand of them on a big share.
 */
import type { Logger } from '../../log.js';

export interface IndexLogDeps {
  logger: Logger;
  /** The index's totals at the moment of logging. */
  totals: () => { tasks: number; skipped: number; files: number; dirs: number };
  /** Runs `log` once after the burst window unless already scheduled (the runtime's timer); false when closing. */
  schedule: (log: () => void) => void;
  /** After each line (the source reports what it keeps in its own log). */
  afterLog: () => void;
}

export class IndexUpdateLog {
  readonly #d: IndexLogDeps;
  #burst = { calls: 0, upserted: 0, removed: 0, newFiles: 0 };

  constructor(deps: IndexLogDeps) {
    this.#d = deps;
  }

  note(upserted: number, removed: number, newFiles: number): void {
    const b = this.#burst;
    b.calls++;
    b.upserted += upserted;
    b.removed += removed;
    b.newFiles += newFiles;
    this.#d.schedule(() => this.flush());
  }

  /** Logs the burst so far, if any (also at close). */
  flush(): void {
    const b = this.#burst;
    if (b.calls === 0) return;
    const fields = { ...this.#d.totals(), tasksUpdated: b.upserted, tasksRemoved: b.removed, newFiles: b.newFiles, batches: b.calls };
    this.#d.logger.info(fields, 'share index updated');
    this.#burst = { calls: 0, upserted: 0, removed: 0, newFiles: 0 };
    this.#d.afterLog();
  }
}
