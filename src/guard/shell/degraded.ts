/**
 * Degraded watching, the guard's side: directories without a watch (see
 * GuardWatching) are alerted once, their watches retried when the earliest back-off
 * ends, and their files stat-ed every `intervalMs` — so a deletion there is seen
 * within about one interval, at a bounded cost (the scan rate applies).
 */
import { describeError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { GuardEvents } from '../events.js';
import { errorCode } from './fsio.js';
import type { ScanCounts } from './scanner.js';
import type { ShareIndex } from '../core/share-index.js';
import type { GuardWatching } from './watching.js';

export interface DegradedDeps {
  index: ShareIndex;
  watching: GuardWatching;
  events: GuardEvents;
  metrics: Metrics;
  logger: Logger;
  clock: () => number;
  intervalMs: number;
  enqueue: (job: () => Promise<void>) => Promise<void>;
  /** Stat these slots (path trust included) and feed the tracker. */
  scan: (ids: Int32Array) => Promise<ScanCounts>;
  flushPending: () => Promise<void>;
  /** The share is usable, the guard started and not closing. */
  active: () => boolean;
  onRound?: () => void;
}

export class DegradedScans {
  readonly #d: DegradedDeps;
  #round: Promise<void> | undefined;
  #soon: NodeJS.Timeout | undefined;
  #interval: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryAt = Infinity;
  #closed = false;

  constructor(deps: DegradedDeps) {
    this.#d = deps;
  }

  start(): void {
    if (this.#interval || this.#closed) return;
    this.#interval = setInterval(() => void this.round(), this.#d.intervalMs);
    this.#interval.unref();
  }

  /** A directory has no watch: alert (once), schedule its retry; if events were lost, look soon. */
  onDegraded(dir: string, error: unknown, { alert, lostEvents }: { alert: boolean; lostEvents: boolean }): void {
    if (this.#closed) return;
    this.#d.events.emit('watch_degraded', { dir, code: errorCode(error), alert, lostEvents });
    if (alert) this.#d.events.emit('watcher_error', { kind: 'watcher_error', dir, code: errorCode(error), message: describeError(error), at: this.#d.clock() });
    else this.#d.logger.debug({ dir, code: errorCode(error) }, 'share directory still without a watch');
    // a pending retry that comes sooner covers this one (no walk over 10,000 failed directories per failure)
    if ((this.#d.watching.retryAt(dir) ?? Infinity) < this.#retryAt) this.#scheduleRetry();
    if (!lostEvents || this.#soon) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.round();
    }, 1000);
    this.#soon.unref();
  }

  #slotsOf(dirs: Iterable<string>): Int32Array {
    const ids: number[] = [];
    for (const rel of dirs) {
      const id = this.#d.index.dirId(rel);
      if (id !== undefined) for (const f of this.#d.index.dirs[id]!.files.values()) ids.push(f);
    }
    return Int32Array.from(ids);
  }

  /** Retry failed watches when the earliest is due (capped exponential back-off, see GuardWatching). */
  #scheduleRetry(): void {
    const next = this.#d.watching.nextRetryAt();
    if (next === undefined || this.#closed || (this.#retryTimer && next >= this.#retryAt)) return;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryAt = next;
    this.#retryTimer = setTimeout(
      () => {
        this.#retryTimer = undefined;
        this.#retryAt = Infinity;
        void this.#d
          .enqueue(async () => {
            if (!this.#d.active()) return;
            // watched again: whatever happened there meanwhile is found now
            const ids = this.#slotsOf(this.#d.watching.retryDue());
            if (ids.length) await this.#d.scan(ids);
            await this.#d.flushPending();
          })
          .finally(() => {
            if (this.#d.active()) this.#scheduleRetry(); // else the share is away: stopAll() forgot the list
          });
      },
      Math.max(50, next - performance.now()),
    );
    this.#retryTimer.unref();
  }

  /** Stat the files of every directory without a watch; one round at a time. */
  round(): Promise<void> {
    if (this.#round || this.#closed || !this.#d.active() || this.#d.watching.degradedCount === 0) return this.#round ?? Promise.resolve();
    const run = (async () => {
      const ids = this.#slotsOf(this.#d.watching.failedDirNames());
      if (ids.length === 0 || !this.#d.active()) return;
      const started = performance.now();
      const counts = await this.#d.scan(ids);
      await this.#d.enqueue(() => this.#d.flushPending());
      this.#d.metrics.shareDegradedScanDuration.observe((performance.now() - started) / 1000);
      this.#d.onRound?.();
      this.#d.logger.debug(
        { files: counts.filesChecked, missing: counts.missing, dirs: this.#d.watching.degradedCount, ms: Math.round(performance.now() - started) },
        'degraded directories scanned',
      );
    })().finally(() => {
      this.#round = undefined;
    });
    this.#round = run;
    return run;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of [this.#soon, this.#retryTimer]) if (t) clearTimeout(t);
    if (this.#interval) clearInterval(this.#interval);
    await this.#round?.catch(() => undefined);
  }
}
