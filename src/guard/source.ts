/**
 * A source of expected files: "the expected files of a source, and how their presence is
 * observed". The guard (guard.ts) owns what is the same for every source — the index of
 * expected files, the tracker, the persisted baseline and problems, alerts, the runtime and
 * its schedule — and asks its source only what this interface says. The share
 * (shell/share-source.ts: stat, inotify/polling watches, degraded scans) is the first
 * implementation; a bucket listed through CVAT's API is the second (shell/cloud-source.ts,
 * run by cloud-guard.ts), answering the same questions from listings instead of stats, with
 * `observe` doing nothing (no events). `Status` is the source's own part of /status.
 *
 * Every method is called from the guard's serial queue or its scans, never concurrently
 * with `applyTasks`. Observations go to the host's tracker (`host.tracker.observe`).
 */
import type { WatchMode } from '../domain.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { GuardClock } from './core/clock.js';
import type { ShareIndex } from './core/share-index.js';
import type { FileTracker } from './core/tracker.js';
import type { GuardEvents } from './events.js';
import type { DetectionSource, FileStat, GuardTask, ScanResult } from './types.js';

/** What the guard lends its source. */
export interface SourceHost {
  index: ShareIndex;
  tracker: FileTracker;
  events: GuardEvents;
  metrics: Metrics;
  logger: Logger;
  clock: GuardClock;
  /** Runs `job` on the guard's serial queue (transitions are published after it). */
  enqueue(job: () => Promise<void>): Promise<void>;
  /** Observing makes sense now: started, source available, not closing. */
  active(): boolean;
  /** The source is reachable and the guard not closing (stop observing when false). */
  available(): boolean;
  /** The source went away (root missing, unmounted): one alert, observation stops. */
  unavailable(reason: string): Promise<void>;
  /** Live observation failed for `dir` (or as a whole): events may be lost; the guard alerts and reconciles. */
  watcherError(dir: string | undefined, error: unknown): void;
  /** Checks the source's health soon (the root watcher saw the root itself go). */
  checkHealth(): void;
  /** Decides pending absences whose move window passed. */
  flushPending(): Promise<void>;
  /** Publishes the tracker's transitions now (long scans call it between batches); returns the alerts sent. */
  drain(): number;
}

export interface ScanOptions {
  /** Labels the observations: the first pass after start is 'startup'. */
  source: 'scan' | 'startup';
  /** Identities (inodes) say nothing: the source was restored from a copy or remounted. */
  ignoreInode?: boolean;
  /** The slots were just created by `applyTasks`, which already vetted their directories. */
  fresh?: boolean;
  /** Stops a round that calls out (a cloud listing) before its next call. */
  signal?: AbortSignal;
}

/** The source's part of the guard's /status. */
export interface SourceStatus {
  fsType: string;
  network: boolean;
  watchMode: WatchMode;
  degradedDirectories: string[];
  degradedDirectoryCount: number;
  unreadable: { count: number; files: Array<{ path: string; code: string; taskIds: number[] }> };
  watchedDirectories: number;
  goneDirectories: string[];
}

export interface GuardSource<Status = SourceStatus> {
  /**
   * The expected files: indexes `upsert` (creating slots for new files) and drops the
   * tasks in `remove`; `skipped` is kept up to date with tasks this source cannot guard.
   * Returns the new slots (never observed yet) and the directories they are in.
   */
  applyTasks(remove: readonly number[], upsert: readonly GuardTask[], skipped: Map<number, string>): Promise<{ created: number[]; newDirs: Set<string> }>;
  /** Learns what the source sits on (file system, network or not) and how to observe it. */
  start(): Promise<void>;
  /** Whether the source is reachable at all (a root that exists and is still mounted). */
  healthy(): Promise<boolean>;
  /** Starts live observation (all of it, or only `newDirs`); a source without events does nothing. */
  observe(newDirs?: Iterable<string>): Promise<void>;
  /** The source went away (stop observing, forget transient state) or came back. */
  setAvailable(state: 'gone' | 'back'): Promise<void>;
  /** Looks at the presence of `ids` (all live slots when omitted) and feeds the tracker. */
  scan(ids: Int32Array | undefined, options: ScanOptions): Promise<Omit<ScanResult, 'startedAt' | 'durationMs' | 'reason' | 'skipped'>>;
  /** After a full scan: re-check what live observation lost track of. */
  afterScan(): Promise<void>;
  /** Start-up is over (the first scan ran, or the source was found unavailable): background rounds may begin. */
  ready(): void;
  /** The current state of one expected file (undefined: absent or unreadable). */
  stat(f: number): Promise<FileStat | undefined>;
  /** How live observations are labelled ('watch' or 'poll'). */
  readonly liveSource: DetectionSource;
  /** The reconcile period when none is configured. */
  defaultScanIntervalMs(): number;
  status(): Status;
  /** Logs what is worth a periodic line (unreadable files). */
  report(): void;
  /** Stops every watcher and timer of the source; waits for a round in progress. */
  close(): Promise<void>;
}
