/**
 * The webhook backlog: deliveries on their way to discovery. Each names a task, which waits
 * in the bounded pending set (coalesce.ts) until the next discovery pass looks at it; the
 * pending gauge and the coalesced/overflowed counters follow the set, and what arrived is
 * logged as a summary at most once a minute (the first after a quiet spell at once). A
 * delivery wakes the discovery loop through `onDelivery`. (Reading and checking a delivery
 * is http-webhook.ts.)
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { IntakeLog, PendingTasks, type IntakeSummary, type PendingLook } from './coalesce.js';
import type { WebhookEvent } from './webhook.js';

/** Webhook activity is logged as a summary at most this often (the first after a quiet spell at once). */
const WEBHOOK_SUMMARY_EVERY_MS = 60_000;

export interface WebhookBacklogOptions {
  /** --webhook-max-pending */
  capacity: number;
  metrics: Pick<Metrics, 'webhookPendingTasks' | 'webhookCoalesced' | 'webhookOverflowed'>;
  logger: Logger;
  /** A task was named: the discovery loop may want to look sooner. */
  onDelivery: () => void;
}

export class WebhookBacklog {
  readonly #o: WebhookBacklogOptions;
  readonly #pending: PendingTasks;
  readonly #log = new IntakeLog(WEBHOOK_SUMMARY_EVERY_MS);

  constructor(options: WebhookBacklogOptions) {
    this.#o = options;
    this.#pending = new PendingTasks(options.capacity);
  }

  /** Tasks wait whether or not CVAT has answered yet: the first discovery pass lists every task anyway. */
  deliver(event: WebhookEvent): void {
    if (!('taskId' in event)) return;
    const outcome = this.#pending.add(event.taskId);
    if (outcome === 'coalesced') this.#o.metrics.webhookCoalesced.inc();
    else if (outcome === 'overflow') this.#o.metrics.webhookOverflowed.inc();
    this.#o.metrics.webhookPendingTasks.set(this.#pending.size);
    this.#o.logger.debug({ event: event.event, kind: event.kind, taskId: event.taskId, outcome }, 'webhook');
    this.#o.onDelivery();
  }

  /** Tasks named since the last pass (or `full` when more were named than the set holds), for the pass starting now. */
  take(): PendingLook {
    const look = this.#pending.take();
    this.#o.metrics.webhookPendingTasks.set(this.#pending.size);
    return look;
  }

  /** A failed pass must not lose the tasks webhooks named: the next one looks at them. */
  putBack(look: PendingLook): void {
    this.#pending.putBack(look);
  }

  /** Whether tasks wait for a pass. */
  get waiting(): boolean {
    return this.#pending.waiting;
  }

  /** After a pass: what it looked at joins the summary. */
  passed(look: PendingLook, pass: { named: number; idLists: number }): void {
    this.#logSummary(this.#log.record(this.#pending.drainStats(), { tasksLooked: pass.named, idLists: pass.idLists, full: look.full }));
  }

  /** No delivery comes after this: reports what the last summary did not. */
  close(): void {
    this.#logSummary(this.#log.record(this.#pending.drainStats(), { tasksLooked: 0, idLists: 0, full: false }) ?? this.#log.flush());
  }

  status(): { pendingTasks: number; pendingLimit: number } {
    return { pendingTasks: this.#pending.size, pendingLimit: this.#pending.capacity };
  }

  #logSummary(summary: IntakeSummary | undefined): void {
    if (summary) this.#o.logger.info({ ...summary, pending: this.#pending.size }, 'webhook deliveries since the last summary');
  }
}
