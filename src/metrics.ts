/**
 * Every Prometheus metric the warden exports, in one own Registry (never the global
 * one, so tests and embedders get isolated counters). Naming follows Prometheus
 * practice: `cvat_warden_` prefix, base units, `_total` on counters, and only
 * bounded labels — never a path, chunk index or job id.
 * `task_id` appears only on the per-task problem gauge and the task-name info gauge, and
 * only for tasks with open share problems. The definitions live per area in metrics/;
 * prom-client's default metrics keep their standard names (`process_*`, `nodejs_*`) so
 * stock Node.js and process dashboards read them.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import { redactSecrets } from './secrets.js';
import { WATCH_MODES, type WatchMode } from './domain.js';
import { cloudMetrics } from './metrics/cloud.js';
import { daemonMetrics } from './metrics/daemon.js';
import { deepMetrics } from './metrics/deep.js';
import { protectionMetrics } from './metrics/protection.js';
import { serviceMetrics, type BuildInfo } from './metrics/service.js';
import { shareMetrics } from './metrics/share.js';
import { warmMetrics } from './metrics/warm.js';

export type { BuildInfo } from './metrics/service.js';

export function createMetrics(options: { buildInfo: BuildInfo; defaultMetrics?: boolean }) {
  const registry = new Registry();
  // 1 s, not prom-client's 10 ms: the event-loop delay histogram samples with its own timer,
  // which was most of an idle service's CPU (10 ms: 0.6 CPU-s a minute; 100 ms: 0.08 of an idle
  // service's 0.11; 1 s: 0.02). A stall of a second or more, the one /healthz cares about, is
  // always seen; shorter ones in proportion to their length.
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 });
  return {
    registry,
    ...serviceMetrics(registry, options.buildInfo),
    ...warmMetrics(registry),
    ...shareMetrics(registry),
    ...daemonMetrics(registry),
    ...protectionMetrics(registry),
    ...cloudMetrics(registry),
    /** Deep mode (metrics/deep.ts), grouped: its reader takes them as one object. */
    deep: deepMetrics(registry),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Label values that come from CVAT are bounded and scrubbed: a server that echoes the
 * Authorization header into its version string must not put the token in /metrics.
 */
export function safeLabelValue(value: string, maxLength = 32): string {
  const clean = redactSecrets(value).replace(/[^A-Za-z0-9._+-]/g, '_');
  return clean.length > maxLength ? clean.slice(0, maxLength) : clean;
}

/** `cvat_warden_cvat_info{version}`: one series, the version last seen. */
export function setCvatInfo(metrics: Metrics, version: string): void {
  metrics.cvatInfo.reset();
  metrics.cvatInfo.set({ version: safeLabelValue(version) }, 1);
}

/** Follows the client's credentials state: the gauge, and the counter on every refusal. */
export function recordCredentials(metrics: Metrics, accepted: boolean | undefined): void {
  metrics.cvatCredentialsOk.set(accepted === false ? 0 : 1);
  if (accepted === false) metrics.cvatAuthFailures.inc();
}

export function setWatchMode(metrics: Metrics, mode: WatchMode): void {
  for (const m of WATCH_MODES) metrics.shareWatchMode.set({ mode: m }, m === mode ? 1 : 0);
}
