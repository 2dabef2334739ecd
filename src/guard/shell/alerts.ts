/**
 * Turns tracker transitions into public alerts: builds the task/job/chunk payload,
 * counts them (the share: `cvat_warden_share_events_total{kind}`), writes the log line
 * (coalesced per directory when a burst hits one directory) and emits the typed events. A
 * listener that throws is logged, never allowed to break the guard. The words of the log
 * lines are the source's (`AlertWording`): a share file is "deleted", a cloud object "missing".
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from '../../log.js';
import { affectedTasksOf } from '../core/guard-queries.js';
import { earliestOf, mergeJobs, type LastWarmedAt } from '../core/mapping.js';
import { dirOf } from './paths.js';
import type { ShareIndex } from '../core/share-index.js';
import type { Transition } from '../core/tracker.js';
import type { GuardEvents } from '../events.js';
import type {
  AffectedJob,
  CloudStorageAlert,
  FileAlert,
  FileRole,
  GuardAlert,
  PathEscapeAlert,
  ShareAlert,
  ShareGuardEventMap,
  WatcherErrorAlert,
} from '../types.js';

/** Lines per directory and kind before a burst is logged as one summary line. */
const COALESCE_ABOVE = 3;

export function truncateList(items: readonly unknown[], max = 10): string {
  const shown = items.slice(0, max).map(String).join(',');
  return items.length > max ? `${shown},… (+${items.length - max} more)` : shown;
}

/** "job 12 [0,1]; job 13 [4]" with long lists cut and counted. */
export function describeJobs(jobs: readonly AffectedJob[], maxJobs = 10, maxChunks = 10): string {
  const parts = jobs.slice(0, maxJobs).map((j) => `job ${j.jobId} [${truncateList(j.chunks, maxChunks)}]`);
  if (jobs.length > maxJobs) parts.push(`… (+${jobs.length - maxJobs} more jobs)`);
  return parts.join('; ');
}

export function formatExpiry(value: number | 'unknown'): string {
  return value === 'unknown' ? 'unknown' : new Date(value).toISOString();
}

export { affectedTasksOf } from '../core/guard-queries.js';

/** How a source's alerts read in log lines. */
export interface AlertWording {
  /** What an expected file is called ("share file"; "cloud object"). */
  noun(role: FileRole): string;
  /** The word for a transition ("deleted"; a bucket's "missing"). */
  kind(kind: string): string;
  /** How a path or directory of the index reads ('' is the root). */
  where(path: string): string;
}

export const SHARE_WORDING: AlertWording = { noun: () => 'share file', kind: (k) => k, where: (p) => (p === '' ? '(share root)' : p) };

export interface AlertSinkOptions {
  index: ShareIndex;
  /** Counts one alert of `kind` (the share's events counter). */
  countEvent?: (kind: string) => void;
  wording?: AlertWording;
  logger: Logger;
  emitter: EventEmitter<ShareGuardEventMap>;
  clock: () => number;
  lastWarmedAt?: LastWarmedAt | undefined;
}

export class AlertSink {
  readonly #o: AlertSinkOptions;

  readonly #words: AlertWording;

  constructor(options: AlertSinkOptions) {
    this.#o = options;
    this.#words = options.wording ?? SHARE_WORDING;
  }

  fileAlert(t: Transition): FileAlert {
    const { index } = this.#o;
    const tasks = affectedTasksOf(index, t.f, this.#o.lastWarmedAt);
    const alert: FileAlert = {
      kind: t.kind,
      path: index.relPath(t.f),
      role: index.roleOf(t.f),
      source: t.source,
      at: this.#o.clock(),
      taskIds: tasks.map((x) => x.taskId),
      tasks,
    };
    if (t.newPath !== undefined) alert.newPath = t.newPath;
    if (t.previous !== undefined) alert.previous = t.previous;
    if (t.change !== undefined) alert.change = t.change;
    return alert;
  }

  #emit(alert: GuardAlert): void {
    this.#o.countEvent?.(alert.kind);
    try {
      (this.#o.emitter.emit as (event: string, arg: unknown) => boolean)(alert.kind, alert);
      this.#o.emitter.emit('alert', alert);
    } catch (error) {
      this.#o.logger.error({ err: error, kind: alert.kind }, 'share guard event listener threw');
    }
  }

  /** Emit and log a batch of file transitions; returns the number of alerts. */
  publish(transitions: readonly Transition[]): number {
    if (transitions.length === 0) return 0;
    const alerts = transitions.map((t) => this.fileAlert(t));
    const groups = new Map<string, FileAlert[]>();
    for (const alert of alerts) {
      const key = `${alert.kind}\0${dirOf(alert.path)}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = []));
      group.push(alert);
    }
    for (const group of groups.values()) {
      if (group.length > COALESCE_ABOVE) this.#logGroup(group);
      else for (const alert of group) this.#logOne(alert);
    }
    for (const alert of alerts) this.#emit(alert);
    return alerts.length;
  }

  #level(kind: string): 'error' | 'warn' {
    return kind === 'deleted' || kind === 'share_unavailable' || kind === 'storage_unavailable' ? 'error' : 'warn';
  }

  #logOne(alert: FileAlert): void {
    const jobs = mergeJobs(alert.tasks.map((t) => t.jobs));
    const expires = earliestOf(alert.tasks.map((t) => t.expiresAt));
    this.#o.logger[this.#level(alert.kind)](
      {
        kind: alert.kind,
        path: alert.path,
        ...(alert.newPath !== undefined ? { newPath: alert.newPath } : {}),
        ...(alert.previous !== undefined ? { previous: alert.previous } : {}),
        role: alert.role,
        source: alert.source,
        taskIds: truncateList(alert.taskIds),
        jobIds: truncateList(jobs.map((j) => j.jobId)),
        chunks: describeJobs(jobs),
        expires: formatExpiry(expires),
      },
      `${this.#words.noun(alert.role)} ${this.#words.kind(alert.kind)}: ${this.#words.where(alert.path)}${alert.newPath !== undefined ? ` → ${alert.newPath}` : ''}`,
    );
  }

  #logGroup(group: FileAlert[]): void {
    const first = group[0]!;
    const taskIds = [...new Set(group.flatMap((a) => a.taskIds))].sort((a, b) => a - b);
    const jobs = mergeJobs(group.flatMap((a) => a.tasks.map((t) => t.jobs)));
    const expires = earliestOf(group.flatMap((a) => a.tasks.map((t) => t.expiresAt)));
    const dir = dirOf(first.path);
    this.#o.logger[this.#level(first.kind)](
      {
        kind: first.kind,
        dir,
        count: group.length,
        paths: truncateList(
          group.map((a) => a.path),
          5,
        ),
        taskIds: truncateList(taskIds),
        jobIds: truncateList(jobs.map((j) => j.jobId)),
        chunks: describeJobs(jobs),
        expires: formatExpiry(expires),
      },
      `${group.length} ${this.#words.noun(first.role)}s ${this.#words.kind(first.kind)} in ${this.#words.where(dir)}`,
    );
  }

  share(alert: ShareAlert): void {
    this.#o.logger[alert.kind === 'share_unavailable' ? 'error' : 'warn'](
      { kind: alert.kind, shareDir: alert.shareDir, reason: alert.reason, filesExpected: alert.filesExpected },
      alert.kind === 'share_unavailable' ? `share unavailable: ${alert.reason}` : 'share available again; rescanning',
    );
    this.#emit(alert);
  }

  pathEscape(alert: PathEscapeAlert): void {
    this.#o.logger.error(
      { kind: alert.kind, dir: alert.dir, target: alert.target, taskIds: truncateList(alert.taskIds) },
      `share directory ${alert.dir} now resolves outside the share (${alert.target}): its files are not trusted and count as gone`,
    );
    this.#emit(alert);
  }

  /** Subscribes to the guard's events: every alert the guard raises goes through here. */
  attach(events: GuardEvents): void {
    events.on('transitions', (transitions) => void this.publish(transitions));
    events.on('share', (alert) => this.share(alert));
    events.on('path_escape', (alert) => this.pathEscape(alert));
    events.on('watcher_error', (alert) => this.watcherError(alert));
    events.on('storage', (alert) => this.storage(alert));
  }

  storage(alert: CloudStorageAlert): void {
    const usable = alert.kind === 'storage_available';
    this.#o.logger[this.#level(alert.kind)](
      { kind: alert.kind, storageId: alert.storageId, status: alert.status, reason: alert.reason, taskIds: truncateList(alert.taskIds) },
      usable
        ? `cloud storage ${alert.storageId} AVAILABLE again: its objects are listed from the next round`
        : `cloud storage ${alert.storageId} ${alert.status}: its objects cannot be listed (earlier verdicts stand)`,
    );
    this.#emit(alert);
  }

  watcherError(alert: WatcherErrorAlert): void {
    this.#o.logger.warn(
      { kind: alert.kind, dir: alert.dir, code: alert.code, err: alert.message },
      `share watcher error (${alert.code}); falling back to a reconcile scan`,
    );
    this.#emit(alert);
  }
}
