/**
 * Every Prometheus metric the warden exports, in one own Registry (never the global
 * one, so tests and embedders get isolated counters). Naming follows Prometheus
 * practice: `cvat_warden_` prefix, base units, `_total` on counters, and only
 * bounded labels — never a path, chunk index or job id.
 * `task_id` appears only on the per-task problem gauge and the task-name info gauge, and
 * only for tasks with open share problems.
 */
import { STATE_STORES } from './state/damage.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { redactSecrets } from './secrets.js';
import {
  BACKUP_OUTCOMES,
  CHUNK_OUTCOMES,
  RESTORE_OUTCOMES,
  CHUNK_STATES,
  QUALITIES,
  SHARE_EVENT_KINDS,
  WATCH_MODES,
  WEBHOOK_OUTCOMES,
  type WatchMode,
} from './domain.js';

/** Chunk build + transfer can take the 50 s server wait plus retries: buckets reach 120 s. */
const CHUNK_DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 50, 60, 90, 120];

export interface BuildInfo {
  version: string;
  nodeVersion?: string;
}

export function createMetrics(options: { buildInfo: BuildInfo; defaultMetrics?: boolean }) {
  const registry = new Registry();
  // 1 s, not prom-client's 10 ms: the event-loop delay histogram samples with its own timer,
  // which was most of an idle service's CPU (10 ms: 0.6 CPU-s a minute; 100 ms: 0.08 of an idle
  // service's 0.11; 1 s: 0.02). A stall of a second or more, the one /healthz cares about, is
  // always seen; shorter ones in proportion to their length.
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'cvat_warden_', eventLoopMonitoringPrecision: 1000 });

  const buildInfo = new Gauge({
    name: 'cvat_warden_build_info',
    help: 'Build information of the running cvat-warden; always 1.',
    labelNames: ['version', 'node_version'] as const,
    registers: [registry],
  });
  buildInfo.set({ version: options.buildInfo.version, node_version: options.buildInfo.nodeVersion ?? process.version }, 1);

  const cvatUp = new Gauge({
    name: 'cvat_warden_cvat_up',
    help: 'Whether the last request to the CVAT API got an HTTP answer (1) or not (0).',
    registers: [registry],
  });

  const cvatInfo = new Gauge({
    name: 'cvat_warden_cvat_info',
    help: 'Version of the CVAT server last seen; always 1.',
    labelNames: ['version'] as const,
    registers: [registry],
  });

  const cvatCredentialsOk = new Gauge({
    name: 'cvat_warden_cvat_credentials_ok',
    help: 'Whether CVAT accepted the credentials on the last authenticated request (1) or answered 401 (0); 1 until refused.',
    registers: [registry],
  });
  cvatCredentialsOk.set(1);

  const cvatAuthFailures = new Counter({
    name: 'cvat_warden_cvat_auth_failures_total',
    help: 'Times CVAT started refusing the credentials (a 401 after they were accepted or before they ever were).',
    registers: [registry],
  });

  const chunkRequests = new Counter({
    name: 'cvat_warden_chunk_requests_total',
    help: 'Chunk requests sent to CVAT by the warmer, by quality and outcome.',
    labelNames: ['quality', 'outcome'] as const,
    registers: [registry],
  });
  for (const quality of QUALITIES) for (const outcome of CHUNK_OUTCOMES) chunkRequests.inc({ quality, outcome }, 0);

  const chunkRequestDuration = new Histogram({
    name: 'cvat_warden_chunk_request_duration_seconds',
    help: 'Time from sending a chunk request to the end of its response, by quality.',
    labelNames: ['quality'] as const,
    buckets: CHUNK_DURATION_BUCKETS,
    registers: [registry],
  });
  for (const quality of QUALITIES) chunkRequestDuration.zero({ quality });

  const chunks = new Gauge({
    name: 'cvat_warden_chunks',
    help: 'Chunks in scope of the warmer, by state (warm, pending, failed, stuck).',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  for (const state of CHUNK_STATES) chunks.set({ state }, 0);

  const chunksExpiringSoon = new Gauge({
    name: 'cvat_warden_chunks_expiring_soon',
    help: 'Warm chunks whose cached copy expires (24 h after it was built) within the next 4 hours; they are rebuilt once it has.',
    registers: [registry],
  });

  const oldestWarmChunkTimestamp = new Gauge({
    name: 'cvat_warden_oldest_warm_chunk_timestamp_seconds',
    help: 'Unix time at which the oldest confirmed-warm chunk in scope was built (0 when none).',
    registers: [registry],
  });

  const warmConcurrency = new Gauge({
    name: 'cvat_warden_warm_concurrency_limit',
    help: 'Current limit of concurrent chunk requests (lowered when annotators need the chunk workers).',
    registers: [registry],
  });

  const warmBackoffs = new Counter({
    name: 'cvat_warden_warm_backoffs_total',
    help: 'Times the warmer lowered its concurrency because CVAT latency or 429s rose.',
    registers: [registry],
  });

  const lastWarmPassTimestamp = new Gauge({
    name: 'cvat_warden_last_warm_pass_timestamp_seconds',
    help: 'Unix time at which the last complete warm pass ended.',
    registers: [registry],
  });

  // Share guard.
  const shareFilesExpected = new Gauge({
    name: 'cvat_warden_share_files_expected',
    help: 'Distinct share files that cache-dependent tasks read.',
    registers: [registry],
  });
  const shareFilesMissing = new Gauge({
    name: 'cvat_warden_share_files_missing',
    help: 'Expected share files that are missing, moved or changed.',
    registers: [registry],
  });
  const shareFilesUnreadable = new Gauge({
    name: 'cvat_warden_share_files_unreadable',
    help: 'Expected share files the guard cannot stat (permission denied, I/O error): CVAT may not read them either.',
    registers: [registry],
  });
  const taskShareFilesMissing = new Gauge({
    name: 'cvat_warden_task_share_files_missing',
    help: 'Expected share files missing, moved or changed, per task; a series exists only for tasks with problems.',
    labelNames: ['task_id'] as const,
    registers: [registry],
  });
  // The dashboard joins this on task_id to show names and link to CVAT's task page.
  // Bounded like the gauge above: a series exists only while the task has problems.
  const taskInfo = new Gauge({
    name: 'cvat_warden_task_info',
    help: 'Name of each task that has share files missing, moved or changed; always 1, a series exists only for tasks with problems.',
    labelNames: ['task_id', 'task_name'] as const,
    registers: [registry],
  });
  const shareAvailable = new Gauge({
    name: 'cvat_warden_share_available',
    help: 'Whether the share root is mounted and readable (1) or not (0).',
    registers: [registry],
  });
  const shareEvents = new Counter({
    name: 'cvat_warden_share_events_total',
    help: 'Integrity events seen on the share, by kind.',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  for (const kind of SHARE_EVENT_KINDS) shareEvents.inc({ kind }, 0);
  const shareScanDuration = new Histogram({
    name: 'cvat_warden_share_scan_duration_seconds',
    help: 'Duration of full reconcile scans of the expected share files.',
    buckets: [0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [registry],
  });
  const shareLastScanDuration = new Gauge({
    name: 'cvat_warden_share_last_scan_duration_seconds',
    help: 'Duration of the last full reconcile scan (scans are hourly by default: a rate of the histogram is mostly empty).',
    registers: [registry],
  });
  const shareDegradedScanDuration = new Histogram({
    name: 'cvat_warden_share_degraded_scan_duration_seconds',
    help: 'Duration of the scheduled scans of share directories that have no watch (degraded watching).',
    buckets: [0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const shareDegradedDirectories = new Gauge({
    name: 'cvat_warden_share_degraded_directories',
    help: 'Share directories holding expected files that have no watch (inotify limit, permissions); scanned on a schedule instead.',
    registers: [registry],
  });
  const shareLastScanTimestamp = new Gauge({
    name: 'cvat_warden_share_last_scan_timestamp_seconds',
    help: 'Unix time at which the last full reconcile scan finished.',
    registers: [registry],
  });
  const shareWatchMode = new Gauge({
    name: 'cvat_warden_share_watch_mode',
    help: 'How the share is watched: 1 for the active mode (inotify, scan_only, polling, degraded = inotify with some directories unwatched and scanned on a schedule).',
    labelNames: ['mode'] as const,
    registers: [registry],
  });
  const shareWatchedDirectories = new Gauge({
    name: 'cvat_warden_share_watched_directories',
    help: 'Directories under an inotify watch.',
    registers: [registry],
  });

  // ---------------------------------------------------------------------------
  // Daemon (`cvat-warden run`): webhook intake and the adaptive warm controller.
  // ---------------------------------------------------------------------------
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

  // ---------------------------------------------------------------------------
  // Protection: the vault, restores and CVAT-native backups of share tasks.
  // ---------------------------------------------------------------------------
  const vaultFiles = new Gauge({
    name: 'cvat_warden_vault_files',
    help: 'Expected share files the vault holds a hard link (or reflink copy) of.',
    registers: [registry],
  });
  const vaultOnlyBytes = new Gauge({
    name: 'cvat_warden_vault_only_bytes',
    help: 'Bytes held only by the vault: entries whose original share file is gone (link count 1), as of the last measure.',
    registers: [registry],
  });
  const vaultPruned = new Counter({
    name: 'cvat_warden_vault_pruned_files_total',
    help: 'Vault entries removed because no task needs the file any more (task deleted, file no longer referenced).',
    registers: [registry],
  });
  const vaultErrors = new Counter({
    name: 'cvat_warden_vault_errors_total',
    help: 'Share files the vault failed to link although they exist (permissions, EXDEV, disk full).',
    registers: [registry],
  });
  const stateRecordsDamaged = new Counter({
    name: 'cvat_warden_state_records_damaged_total',
    help: "Records of the warden's state files found damaged at load and skipped (journal lines; a damaged snapshot counts the entries it claims), by store: ledger_journal, ledger_snapshot, baseline_journal, baseline_snapshot. The intact records are kept.",
    labelNames: ['store'] as const,
    registers: [registry],
  });
  for (const store of STATE_STORES) stateRecordsDamaged.inc({ store }, 0);
  const vaultNotOwned = new Counter({
    name: 'cvat_warden_vault_entries_not_owned_total',
    help: "Vault paths left alone because the entry there is not the one the vault made (replaced, a symlink, someone else's file): reported, never deleted or overwritten.",
    registers: [registry],
  });
  const restores = new Counter({
    name: 'cvat_warden_restored_files_total',
    help: 'Files restore looked at, by outcome (restored, unrecoverable, skipped) and trigger (command, auto).',
    labelNames: ['outcome', 'trigger'] as const,
    registers: [registry],
  });
  for (const outcome of RESTORE_OUTCOMES) for (const trigger of ['command', 'auto']) restores.inc({ outcome, trigger }, 0);
  const backups = new Counter({
    name: 'cvat_warden_backups_total',
    help: 'CVAT task backups attempted, by outcome (done, failed, missing_file = CVAT could not read a share file, invalid = the zip failed verification).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of BACKUP_OUTCOMES) backups.inc({ outcome }, 0);
  const taskBackupAge = new Gauge({
    name: 'cvat_warden_task_backup_age_seconds',
    help: 'Age of the newest good backup per share task; series only for the 100 tasks with the oldest backups.',
    labelNames: ['task_id'] as const,
    registers: [registry],
  });
  const shareTasksWithoutBackup = new Gauge({
    name: 'cvat_warden_share_tasks_without_backup',
    help: 'Share tasks with data that have no good backup: verified and restorable on this CVAT (made but not restorable before CVAT 2.52 does not count).',
    registers: [registry],
  });
  const shareTasksBackedUp = new Gauge({
    name: 'cvat_warden_share_tasks_backed_up',
    help: 'Share tasks whose newest backup is verified and newer than their last media or job change.',
    registers: [registry],
  });

  return {
    registry,
    buildInfo,
    cvatUp,
    cvatInfo,
    cvatCredentialsOk,
    cvatAuthFailures,
    chunkRequests,
    chunkRequestDuration,
    chunks,
    chunksExpiringSoon,
    oldestWarmChunkTimestamp,
    warmConcurrency,
    warmBackoffs,
    lastWarmPassTimestamp,
    shareFilesExpected,
    shareFilesMissing,
    shareFilesUnreadable,
    taskShareFilesMissing,
    taskInfo,
    shareAvailable,
    shareEvents,
    shareScanDuration,
    shareLastScanDuration,
    shareDegradedScanDuration,
    shareDegradedDirectories,
    shareLastScanTimestamp,
    shareWatchMode,
    shareWatchedDirectories,
    webhookDeliveries,
    webhookPendingTasks,
    webhookCoalesced,
    webhookOverflowed,
    warmPacingDelay,
    warmLatencyRatio,
    vaultFiles,
    vaultOnlyBytes,
    vaultPruned,
    vaultErrors,
    vaultNotOwned,
    stateRecordsDamaged,
    restores,
    backups,
    taskBackupAge,
    shareTasksWithoutBackup,
    shareTasksBackedUp,
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
