/**
 * The guard's parts every source runs on, wired once: the clock, the event bus, the
 * runtime (its state changes on the bus), the index, the tracker, the persisted problems
 * and baseline (GuardStore), and the alert sink on the bus. ShareGuard and CloudGuard
 * differ only in their source and in what they decide to run when; both are assembled
 * here, so the share and a bucket cannot drift apart in how a problem is tracked, kept
 * across restarts or alerted.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { systemClock, type GuardClock } from './core/clock.js';
import type { LastWarmedAt } from './core/mapping.js';
import { ShareIndex } from './core/share-index.js';
import { FileTracker } from './core/tracker.js';
import { GuardEvents } from './events.js';
import { GuardRuntime } from './runtime.js';
import { AlertSink, type AlertWording } from './shell/alerts.js';
import { GuardStore } from './shell/persistence.js';
import { trackerGauges } from './shell/tracker-gauges.js';
import type { ShareGuardEventMap } from './types.js';

export interface GuardPartsOptions {
  logger: Logger;
  metrics: Metrics;
  /** Wall clock for alerts and state (ms). */
  clock?: (() => number) | undefined;
  /** How long a disappearance waits for its reappearance elsewhere (a move); 0 where nothing moves. */
  moveWindowMs: number;
  /** Which series the tracker's gauges feed. */
  gauges: 'share' | 'cloud';
  /** Where problems and the baseline persist, and the root they are recorded for; none: nothing persists. */
  store?: { stateDir: string; root: string } | undefined;
  /** The guard that emits the alerts. */
  emitter: EventEmitter<ShareGuardEventMap>;
  wording?: AlertWording | undefined;
  /** Counts each alert by kind (the share's events counter). */
  countEvent?: ((kind: string) => void) | undefined;
  lastWarmedAt?: LastWarmedAt | undefined;
}

export interface GuardParts {
  clock: GuardClock;
  events: GuardEvents;
  rt: GuardRuntime;
  index: ShareIndex;
  tracker: FileTracker;
  store: GuardStore | undefined;
}

export function assembleGuard(o: GuardPartsOptions & { store: NonNullable<GuardPartsOptions['store']> }): GuardParts & { store: GuardStore };
export function assembleGuard(o: GuardPartsOptions): GuardParts;
export function assembleGuard(o: GuardPartsOptions): GuardParts {
  const clock = systemClock(o.clock);
  const wall = () => clock.wall();
  const events = new GuardEvents(o.logger);
  const rt = new GuardRuntime({ logger: o.logger, onState: (next, previous) => events.emit('state', next, previous) });
  const index = new ShareIndex();
  let store: GuardStore | undefined;
  const tracker = new FileTracker({
    index,
    clock,
    moveWindowMs: o.moveWindowMs,
    gauges: trackerGauges(o.metrics, o.gauges),
    onBaseline: (f) => store?.noteBaseline(f),
  });
  if (o.store)
    store = new GuardStore({
      index,
      tracker,
      stateDir: o.store.stateDir,
      shareDir: o.store.root,
      logger: o.logger,
      clock: wall,
      onDamage: (damage) => {
        for (const d of damage) o.metrics.stateRecordsDamaged.inc({ store: d.store }, d.recordsSkipped);
      },
    });
  new AlertSink({
    index,
    logger: o.logger,
    emitter: o.emitter,
    clock: wall,
    lastWarmedAt: o.lastWarmedAt,
    ...(o.wording ? { wording: o.wording } : {}),
    ...(o.countEvent ? { countEvent: o.countEvent } : {}),
  }).attach(events);
  return { clock, events, rt, index, tracker, store };
}

/** Publishes what the tracker decided (the sinks hear it on the bus); the store saves problems soon. Returns how many. */
export function publishTransitions(parts: Pick<GuardParts, 'tracker' | 'events' | 'store'>, available: boolean): number {
  const transitions = parts.tracker.outbox.splice(0);
  if (transitions.length > 0) {
    parts.events.emit('transitions', transitions);
    parts.store?.scheduleSave(available);
  }
  return transitions.length;
}
