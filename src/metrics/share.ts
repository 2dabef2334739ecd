/** The share guard: expected, missing and unreadable files, events, scans, how the share is watched. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { SHARE_EVENT_KINDS } from '../domain.js';

/** Composed of two areas, registered in this order (the exposition order stays stable). */
export function shareMetrics(registry: Registry) {
  return { ...shareFileMetrics(registry), ...shareWatchMetrics(registry) };
}

/** What the guard expects on the share and what is wrong with it: files, tasks, availability, events. */
function shareFileMetrics(registry: Registry) {
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
  return { shareFilesExpected, shareFilesMissing, shareFilesUnreadable, taskShareFilesMissing, taskInfo, shareAvailable, shareEvents };
}

/** How the guard looks at the share: full and degraded scans, the watch mode, the watched directories. */
function shareWatchMetrics(registry: Registry) {
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

  return {
    shareScanDuration,
    shareLastScanDuration,
    shareDegradedScanDuration,
    shareDegradedDirectories,
    shareLastScanTimestamp,
    shareWatchMode,
    shareWatchedDirectories,
  };
}
