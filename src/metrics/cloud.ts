/** Cloud storage: warming causes of cloud-storage tasks, the listing guard, storage status. */
import { Counter, Gauge, type Registry } from 'prom-client';
import { CLOUD_FAILURE_CAUSES } from '../domain.js';

export function cloudMetrics(registry: Registry) {
  const cloudChunkFailures = new Counter({
    name: 'cvat_warden_cloud_chunk_failures_total',
    help: 'Chunk requests of cloud-storage tasks that CVAT answered with a cloud-storage error (skipped="false"), or that were not sent because the storage was known unreadable (skipped="true"), by cause.',
    labelNames: ['cause', 'skipped'] as const,
    registers: [registry],
  });
  for (const cause of CLOUD_FAILURE_CAUSES) for (const skipped of ['true', 'false']) cloudChunkFailures.inc({ cause, skipped }, 0);
  // storage_id is bounded by the cloud storages tasks in scope use (an admin's handful), not by tasks or objects.
  const cloudStorageStatus = new Gauge({
    name: 'cvat_warden_cloud_storage_status',
    help: 'Status CVAT reports for each cloud storage that tasks in scope use (GET /api/cloudstorages/{id}/status): 1 on the current status, 0 on the others.',
    labelNames: ['storage_id', 'status'] as const,
    registers: [registry],
  });
  const cloudObjectsExpected = new Gauge({
    name: 'cvat_warden_cloud_objects_expected',
    help: 'Distinct cloud objects (frames and related files) that cloud-storage tasks read.',
    registers: [registry],
  });
  const cloudObjectsMissing = new Gauge({
    name: 'cvat_warden_cloud_objects_missing',
    help: 'Expected cloud objects the last listing did not find.',
    registers: [registry],
  });
  const taskCloudObjectsMissing = new Gauge({
    name: 'cvat_warden_task_cloud_objects_missing',
    help: 'Expected cloud objects not found, per task; a series exists only for tasks with problems.',
    labelNames: ['task_id'] as const,
    registers: [registry],
  });
  const cloudListCalls = new Counter({
    name: 'cvat_warden_cloud_list_calls_total',
    help: 'content-v2 listing calls sent to CVAT; each is one billed LIST request on the bucket.',
    registers: [registry],
  });
  const cloudDirectoriesDeferred = new Gauge({
    name: 'cvat_warden_cloud_directories_deferred',
    help: 'Bucket directories the last listing round left for later to stay within --cloud-list-budget.',
    registers: [registry],
  });
  const cloudLastRoundTimestamp = new Gauge({
    name: 'cvat_warden_cloud_last_round_timestamp_seconds',
    help: 'Unix time at which the last cloud listing round ended.',
    registers: [registry],
  });

  return {
    cloudChunkFailures,
    cloudStorageStatus,
    cloudObjectsExpected,
    cloudObjectsMissing,
    taskCloudObjectsMissing,
    cloudListCalls,
    cloudDirectoriesDeferred,
    cloudLastRoundTimestamp,
  };
}
