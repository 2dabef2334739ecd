/**
 * The tracker's problem counts as Prometheus gauges: cvat_warden_share_files_missing,
 * cvat_warden_task_share_files_missing{task_id} (the cloud source: cvat_warden_cloud_objects_missing,
 * cvat_warden_task_cloud_objects_missing{task_id}) and cvat_warden_task_info{task_id,
 * task_name} for tasks with problems (bounded: a task's series go when its count is 0).
 */
import type { Metrics } from '../../metrics.js';
import type { TrackerGauges } from '../core/tracker.js';

/** Longer task names are cut in the info label (CVAT allows 256 characters). */
const TASK_NAME_MAX = 100;

export function trackerGauges(metrics: Metrics, source: 'share' | 'cloud' = 'share'): TrackerGauges {
  const total = source === 'share' ? metrics.shareFilesMissing : metrics.cloudObjectsMissing;
  const perTask = source === 'share' ? metrics.taskShareFilesMissing : metrics.taskCloudObjectsMissing;
  /** Task names published in cvat_warden_task_info. */
  const names = new Map<number, string>();
  const publishName = (taskId: number, name: string | undefined) => {
    const clipped = name?.slice(0, TASK_NAME_MAX);
    const previous = names.get(taskId);
    if (previous === clipped) return;
    if (previous !== undefined) metrics.taskInfo.remove({ task_id: String(taskId), task_name: previous });
    if (clipped === undefined) names.delete(taskId);
    else {
      names.set(taskId, clipped);
      metrics.taskInfo.set({ task_id: String(taskId), task_name: clipped }, 1);
    }
  };
  return {
    filesMissing: (n) => total.set(n),
    taskFilesMissing(taskId, count, taskName) {
      if (count > 0) perTask.set({ task_id: String(taskId) }, count);
      else perTask.remove({ task_id: String(taskId) });
      publishName(taskId, count > 0 ? taskName : undefined);
    },
  };
}
