/**
 * The defaults of components that users do not set: the one preset module beside the
 * options table (options.ts holds every default a user can change). A component reads its
 * defaults from here and nowhere else; test/config-docs.test.ts fails when a `??` fallback
 * anywhere in src/ repeats a value of this module or of the table. No imports: every
 * layer may read it.
 */

/** The service (src/daemon/service.ts). */
export const SERVICE_DEFAULTS = {
  /** Wait between attempts to reach CVAT when it is unreachable at start or after a failure. */
  reconnectIntervalMs: 10_000,
  /**
   * The guard indexes discovered share tasks as they come and stats their files in batches
   * of this many (ShareGuardOptions.scanBatchFiles); each discovery pass ends with the rest.
   */
  guardScanBatchFiles: 4096,
} as const;

/** The service's HTTP server (src/daemon/http.ts): bounds on what clients may hold open. */
export const HTTP_SERVER_DEFAULTS = {
  /** Time allowed to receive the request headers (slowloris guard). */
  headersMs: 10_000,
  /** Time allowed to receive the whole request, body included (never less than headersMs). */
  requestMs: 30_000,
  /** Idle time before a keep-alive connection is closed. */
  keepAliveMs: 5_000,
  /** On close(), time given to open requests before their connections are cut. */
  closeGraceMs: 5_000,
} as const;

/** The warm scheduler (src/daemon/scheduler.ts). */
export const SCHEDULER_DEFAULTS = {
  /** Longest sleep between passes, and when a failed or stuck chunk is tried again. */
  checkIntervalMs: 60_000,
  /** "Expiring soon" on /status and in metrics: warm chunks that CVAT drops within this. */
  expiringSoonMs: 4 * 3_600_000,
} as const;

/** The share guard (src/guard/): every option of ShareGuardOptions that has a default. */
export const GUARD_DEFAULTS = {
  clock: Date.now,
  watchMode: 'auto',
  moveWindowMs: 500,
  debounceMs: 10,
  includeUnknownStorage: false,
  pollingMaxFiles: 2000,
  pollIntervalMs: 5000,
  rootCheckIntervalMs: 5000,
  rootPollMs: 1000,
  rootSettleMs: 1000,
  scanConcurrency: 32,
  persistent: true,
  degradedScanIntervalMs: 30_000,
  watchRetryBaseMs: 2000,
  watchRetryMaxMs: 300_000,
  ignoredPrefixes: [] as readonly string[],
  scanBatchFiles: 0,
} as const;

/**
 * The guard's reconcile scans when not configured: inotify sees local changes at once; on
 * network shares (and without watches) scans are the detection, and they are paced.
 */
export const GUARD_SCAN_DEFAULTS = {
  localIntervalMs: 3_600_000,
  networkIntervalMs: 600_000,
  /** Stats per second on a network filesystem (unlimited on a local disk). */
  networkRatePerSecond: 2000,
  /** A batch of stats on the guard's stat thread fails (STAT_TIMEOUT) when the disk does not answer within this. */
  statBatchTimeoutMs: 60_000,
  /** The stat thread's worker stops after this long without a batch (the next batch starts a new one). */
  statThreadIdleMs: 10_000,
  /** Paths per message to the stat thread (two batches in flight: one stat-ed while the other is applied). */
  statBatchSize: 2048,
} as const;

/** The guard's state files (src/guard/persistence.ts). */
export const GUARD_STORE_DEFAULTS = {
  /** Delay that batches baseline journal appends. */
  journalFlushMs: 20,
  /** guard-state.json is rewritten at most this often. */
  saveDebounceMs: 200,
  /** Compact the baseline journal when it holds more records than this and than the index has files. */
  compactMinRecords: 100_000,
} as const;

/** The chunk ledger's writes (src/warm/ledger.ts). */
export const LEDGER_DEFAULTS = {
  /** Longest time a change waits before it is written. */
  flushIntervalMs: 200,
  /** Write as soon as this many changes are pending. */
  maxPendingRecords: 4096,
  /** Compact the journal once it holds this many records (or a quarter of the live entries, if more). */
  compactAfterRecords: 100_000,
} as const;
