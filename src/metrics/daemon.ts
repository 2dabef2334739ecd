/** The daemon (`cvat-warden run`): webhook intake and the adaptive warm controller. */
import { Counter, Gauge, type Registry } from 'prom-client';
import { WEBHOOK_OUTCOMES } from '../domain.js';

export function daemonMetrics(registry: Registry) {
  const webhookDeliveries = new Counter({
    name: 'cvat_warden_webhook_deliveries_total',
    help: 'CVAT webhook deliveries received, by outcome (accepted, duplicate, rejected_signature, rejected_size, rejected_busy, rejected_malformed, ignored).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of WEBHOOK_OUTCOMES) webhookDeliveries.inc({ outcome }, 0);
  const webhookPendingTasks = new Gauge({
    name: 'cvat_warden_webhook_pending_tasks',
    help: 'Tasks named by accepted webhook deliveries that wait for discovery to look at them (at most --webhook-max-pending).',
    registers: [registry],
  });
  const webhookCoalesced = new Counter({
    name: 'cvat_warden_webhook_coalesced_total',
    help: 'Accepted webhook deliveries for a task that was already waiting for a look: merged into it, no CVAT request of their own.',
    registers: [registry],
  });
  const webhookOverflowed = new Counter({
    name: 'cvat_warden_webhook_overflowed_total',
    help: 'Accepted webhook deliveries for a new task while --webhook-max-pending tasks were waiting: covered by a complete task listing instead.',
    registers: [registry],
  });
  const warmPacingDelay = new Gauge({
    name: 'cvat_warden_warm_pacing_delay_seconds',
    help: 'Pause the warmer inserts before each chunk request when even one request in flight is too much for CVAT (0 when not pacing).',
    registers: [registry],
  });
  const warmLatencyRatio = new Gauge({
    name: 'cvat_warden_warm_latency_ratio',
    help: 'p90 latency of the last adaptive-control window divided by its no-load baseline (annotator probe when probing, else chunk hits or builds); 1 = no slow-down.',
    registers: [registry],
  });

  return {
    webhookDeliveries,
    webhookPendingTasks,
    webhookCoalesced,
    webhookOverflowed,
    warmPacingDelay,
    warmLatencyRatio,
  };
}
