/**
 * The guard's internal event bus: what happened, typed, once. The guard, its runtime and its
 * source emit; the sinks subscribe — the alert sink (log lines, the public ShareGuard events,
 * cvat_warden_share_events_total) and the metrics sink (scan and availability gauges) —
 * instead of being passed into every module. A listener that throws is logged and counted,
 * never allowed to break the step that emitted.
 */
import type { Logger } from '../log.js';
import type { Transition } from './core/tracker.js';
import type { GuardState } from './runtime.js';
import type { CloudStorageAlert, PathEscapeAlert, ScanResult, ShareAlert, WatcherErrorAlert } from './types.js';

export interface GuardEventMap {
  /** Tracker transitions of one step, in order (the alert sink turns them into alerts). */
  transitions: [readonly Transition[]];
  /** The source went away or came back. */
  share: [ShareAlert];
  /** A cloud storage's status changed (cloud source: one storage of several). */
  storage: [CloudStorageAlert];
  /** Live observation failed (events may be lost); a reconcile follows. */
  watcher_error: [WatcherErrorAlert];
  /** A share directory now resolves outside the share. */
  path_escape: [PathEscapeAlert];
  /** A directory has no watch now (covered by degraded scans); `alert`: first report of it. */
  watch_degraded: [{ dir: string; code: string; alert: boolean; lostEvents: boolean }];
  /** A full reconcile scan finished. */
  scan: [ScanResult];
  /** The runtime changed state. */
  state: [GuardState, GuardState];
}

type Listener<K extends keyof GuardEventMap> = (...args: GuardEventMap[K]) => void;

export class GuardEvents {
  readonly #listeners = new Map<keyof GuardEventMap, unknown[]>();
  readonly #logger: Logger;
  #listenerErrors = 0;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Listener errors so far (each logged). */
  get listenerErrors(): number {
    return this.#listenerErrors;
  }

  on<K extends keyof GuardEventMap>(event: K, listener: Listener<K>): () => void {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener);
    this.#listeners.set(event, list);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<K extends keyof GuardEventMap>(event: K, ...args: GuardEventMap[K]): void {
    for (const listener of (this.#listeners.get(event) ?? []) as Array<Listener<K>>) {
      try {
        listener(...args);
      } catch (error) {
        this.#listenerErrors++;
        this.#logger.error({ err: error, event }, 'share guard event listener failed');
      }
    }
  }
}
