/**
 * The guard's memory across restarts: loads open problems and the baseline at
 * start-up, saves problems (debounced) whenever alerts change them, and rewrites the
 * baseline after scans that changed it. Write failures are logged, never thrown.
 */
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { FileStatus, type ShareIndex } from './share-index.js';
import { baselineLine, loadState, readBaseline, saveState, writeBaseline, type PersistedProblem } from './state.js';
import type { FileTracker } from './tracker.js';

export interface GuardStoreOptions {
  index: ShareIndex;
  tracker: FileTracker;
  stateDir: string;
  shareDir: string;
  logger: Logger;
  clock: () => number;
}

const SAVE_DEBOUNCE_MS = 200;

export class GuardStore {
  readonly #o: GuardStoreOptions;
  #baselineLoaded = false;
  #saveTimer: NodeJS.Timeout | undefined;
  #available = true;
  #writes: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: GuardStoreOptions) {
    this.#o = options;
  }

  /** Open problems from the last run go to the tracker (consumed on first sight of each file). Throws STATE_IO. */
  async loadState(): Promise<void> {
    const state = await loadState(this.#o.stateDir);
    this.#o.tracker.loadPersisted(state?.problems ?? []);
  }

  /** Once, when the index is populated: persisted baselines for files not observed yet. */
  async loadBaseline(): Promise<void> {
    const { index } = this.#o;
    if (this.#baselineLoaded || index.liveFiles === 0) return;
    this.#baselineLoaded = true;
    try {
      const n = await readBaseline(this.#o.stateDir, (rel, st) => {
        const f = index.lookup(rel);
        if (f !== undefined && !index.hasBaseline(f) && index.status[f] === FileStatus.unknown) index.setBaseline(f, st);
      });
      if (n) this.#o.logger.info({ entries: n }, 'share baseline loaded');
    } catch (error) {
      this.#o.logger.warn({ err: describeError(error) }, 'share baseline unreadable; taking a new one');
    }
  }

  scheduleSave(available: boolean): void {
    this.#available = available;
    if (this.#saveTimer || this.#closed) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      this.#saveState();
    }, SAVE_DEBOUNCE_MS);
    this.#saveTimer.unref();
  }

  #saveState(): void {
    const { index, tracker } = this.#o;
    const problems: PersistedProblem[] = [];
    for (const [f, record] of tracker.problems) {
      const p: PersistedProblem = { path: index.relPath(f), kind: record.kind, role: index.roleOf(f), since: record.since, taskIds: index.taskIdsOf(f) };
      if (record.newPath !== undefined) p.newPath = record.newPath;
      problems.push(p);
    }
    problems.push(...tracker.persisted.values()); // not seen again yet (share unavailable?): keep them
    const state = { version: 1 as const, shareDir: this.#o.shareDir, savedAt: new Date(this.#o.clock()).toISOString(), shareAvailable: this.#available, problems };
    this.#writes = this.#writes
      .then(() => saveState(this.#o.stateDir, state))
      .catch((error: unknown) => this.#o.logger.warn({ err: describeError(error) }, 'cannot save guard state'));
  }

  /** Rewrite guard-baseline.tsv if any baseline changed since the last write (in the background). */
  saveBaseline(): void {
    const { index, tracker } = this.#o;
    if (!tracker.baselineDirty) return;
    tracker.baselineDirty = false;
    function* entries(): Generator<string> {
      for (let f = 0; f < index.slotCount; f++) {
        if (index.names[f] === undefined || !index.hasBaseline(f)) continue;
        yield baselineLine(index.relPath(f), index.bSize[f]!, index.bMtime[f]!, index.bIno[f]!, index.bDev[f]!);
      }
    }
    this.#writes = this.#writes
      .then(async () => void (await writeBaseline(this.#o.stateDir, entries())))
      .catch((error: unknown) => this.#o.logger.warn({ err: describeError(error) }, 'cannot save share baseline'));
  }

  /** Final write (when the guard ever started) and wait for every pending write. */
  async close(started: boolean, available: boolean): Promise<void> {
    if (this.#saveTimer) clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    if (started && !this.#closed) {
      this.#available = available;
      this.#saveState();
      this.saveBaseline();
    }
    this.#closed = true;
    await this.#writes;
  }
}
