/**
 * ShareGuard's options (documented where they are typed; their defaults are GUARD_DEFAULTS
 * and GUARD_SCAN_DEFAULTS in src/config/presets.ts) and the shape of its /status answer.
 */
import type { StateDamage } from '../state/damage.js';
import type { Logger } from '../log.js';
import type { WatchMode } from '../domain.js';
import type { GuardState } from './runtime.js';
import type { Metrics } from '../metrics.js';
import type { GuardFs } from './shell/fsio.js';
import type { LastWarmedAt } from './core/mapping.js';
import type { ScanResult } from './types.js';
import { GUARD_SCAN_DEFAULTS } from '../config/presets.js';

export interface ShareGuardOptions {
  /** Host path of the CVAT share (what CVAT sees as /home/django/share). */
  shareDir: string;
  /** Where guard-state.json and guard-baseline.tsv live. */
  stateDir: string;
  metrics: Metrics;
  logger: Logger;
  /** Wall clock for timestamps in alerts and state (ms). */
  clock?: () => number;
  /**
   * Files that task changes may index before they are watched and stat-ed (in one batch:
   * one trip to the stat thread for thousands of files); `settle()` does the rest. 0: each
   * change is observed before `upsertTasks` resolves.
   */
  scanBatchFiles?: number;
  /** Full reconcile scan period; undefined = the situational default (see `scanIntervalFor`). */
  scanIntervalMs?: number | undefined;
  /** Upper bound on stats per second during scans (default: see scanRateFor). */
  scanRatePerSecond?: number;
  /** Skip /proc/self/mountinfo and use this filesystem type (tests, odd containers). */
  fsTypeOverride?: string;
  /** Force a watch mode instead of deciding from the filesystem type. */
  watchMode?: 'auto' | ConfigurableWatchMode;
  /** Directories whose watch could not be added are scanned this often (deletions there seen within about twice this). */
  degradedScanIntervalMs?: number;
  /** Back-off of watch retries for such directories: first delay, doubling up to the max. */
  watchRetryBaseMs?: number;
  watchRetryMaxMs?: number;
  /** When the warmer last built (jobId, chunk): gives `expiresAt` = that + 24 h. */
  lastWarmedAt?: LastWarmedAt;
  /** How long a vanished file waits for its dev+inode to show up elsewhere (→ moved). */
  moveWindowMs?: number;
  /** Coalescing delay for directory events. */
  debounceMs?: number;
  /** Guard `storage: 'unknown'` tasks whose frames exist under the share root. */
  includeUnknownStorage?: boolean;
  /** Network shares with at most this many files are polled (chokidar); larger ones are scan-only. */
  pollingMaxFiles?: number;
  /** Poll interval for small network shares. */
  pollIntervalMs?: number;
  /** How often the root's health is checked (catches unmounts, which send no events). */
  rootCheckIntervalMs?: number;
  /** While the share is unavailable: how often to look for it. */
  rootPollMs?: number;
  /** After the root is back: wait this long before rescanning (mounts/copies settle). */
  rootSettleMs?: number;
  /** Parallel stats on network filesystems. */
  scanConcurrency?: number;
  /** Keep the process alive while watching. */
  persistent?: boolean;
  /** Replace filesystem calls (tests: count stats, inject watcher errors). */
  fs?: Partial<GuardFs>;
  mountinfoPath?: string;
  /** Share-relative directories that are never guarded or expected (the vault). */
  ignoredPrefixes?: readonly string[];
}

export type ResolvedOptions = Required<
  Omit<ShareGuardOptions, 'lastWarmedAt' | 'fsTypeOverride' | 'fs' | 'mountinfoPath' | 'scanIntervalMs' | 'scanRatePerSecond'>
> &
  Pick<ShareGuardOptions, 'lastWarmedAt' | 'fsTypeOverride' | 'mountinfoPath' | 'scanIntervalMs' | 'scanRatePerSecond'>;

export interface ShareGuardStatus {
  shareDir: string;
  fsType: string;
  network: boolean;
  /** `degraded` while some directories have no watch (see degradedDirectories). */
  watchMode: WatchMode;
  /** The reconcile scan period in effect (ms). */
  scanIntervalMs: number;
  /** Directories without a watch, covered by degraded scans (first 100), and how many. */
  degradedDirectories: string[];
  degradedDirectoryCount: number;
  /** Expected files the guard cannot stat (EACCES, EIO…), with their tasks (first 100), and how many. */
  unreadable: { count: number; files: Array<{ path: string; code: string; taskIds: number[] }> };
  shareAvailable: boolean;
  started: boolean;
  /** The runtime's state (src/guard/runtime.ts). */
  state: GuardState;
  /** Steps and background jobs that failed (each logged at error level). */
  stepErrors: number;
  tasks: number;
  tasksWithProblems: number;
  filesExpected: number;
  filesWithProblems: number;
  problems: { deleted: number; moved: number; modified: number; pending: number };
  directories: number;
  watchedDirectories: number;
  goneDirectories: string[];
  rejectedNames: number;
  warnings: number;
  skippedTasks: number;
  lastScan: ScanResult | null;
  /** What loading the baseline found damaged and how it was recovered (empty when intact). */
  stateDamage: readonly StateDamage[];
}

/** What configuration may force; `degraded` is a state the guard enters, never a choice. */
export type ConfigurableWatchMode = Exclude<WatchMode, 'degraded'>;

/**
 * The one place the reconcile period is decided: the configured value, else 1 h on a
 * local filesystem watched through inotify, 10 min on a network share or whenever the
 * guard does not run on inotify (polling, scan-only).
 */
export function scanIntervalFor(configured: number | undefined, fs: { network: boolean }, mode: WatchMode): number {
  if (configured !== undefined) return configured;
  return !fs.network && (mode === 'inotify' || mode === 'degraded') ? GUARD_SCAN_DEFAULTS.localIntervalMs : GUARD_SCAN_DEFAULTS.networkIntervalMs;
}

/** The scan pace: the configured rate, else unlimited on a local disk and GUARD_SCAN_DEFAULTS.networkRatePerSecond on a network share. */
export function scanRateFor(configured: number | undefined, network: boolean): number {
  return configured ?? (network ? GUARD_SCAN_DEFAULTS.networkRatePerSecond : Infinity);
}

export function definedOnly<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as T;
}

export { GUARD_DEFAULTS } from '../config/presets.js';
