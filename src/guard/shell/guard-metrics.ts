/** The guard's metrics as a sink of its events (events.ts): scan durations and share availability. */
import type { Metrics } from '../../metrics.js';
import type { GuardEvents } from '../events.js';

export function attachMetrics(events: GuardEvents, metrics: Metrics): void {
  events.on('scan', (result) => {
    metrics.shareScanDuration.observe(result.durationMs / 1000);
    metrics.shareLastScanDuration.set(result.durationMs / 1000);
    metrics.shareLastScanTimestamp.set(result.startedAt / 1000 + result.durationMs / 1000);
  });
  events.on('state', (state, previous) => {
    if (state === 'unavailable') metrics.shareAvailable.set(0);
    else if (previous === 'unavailable') metrics.shareAvailable.set(1);
  });
}
