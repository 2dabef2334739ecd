/**
 * CVAT's cloud-storage errors told apart from its permission errors by their shape, as CVAT
 * builds them (2.73, github:cvat-ai/cvat 7972cb4f2ad8):
 *
 * - `cvat/apps/engine/cloud_provider.py` `validate_bucket_status` / `validate_file_status` raise
 *   DRF PermissionDenied / NotFound with a message naming the bucket (`resource`, not the display
 *   name) and, for an object, its key; the chunk worker's exception is re-raised in the request
 *   (`cache.py` `_build_chunk_job_failure_exception`) and `views.py` `_DataGetter.__call__` answers
 *   `Response(data=str(ex), status=ex.status_code)`: the body is a JSON *string*.
 * - `models.py` `Data.get_cloud_storage_client` raises `CloudStorageMissingError("Task is not
 *   connected to cloud storage")` (`exceptions.py`) → 409 with that string.
 * - DRF's own permission denial (the account may not read the job) is an *object*
 *   `{"detail": "You do not have permission to perform this action."}`: that 403 stays fatal.
 */

import type { CloudFailureCause } from '../domain.js';

export type CloudFailureKind = CloudFailureCause;

export interface CloudCause {
  kind: CloudFailureKind;
  /** The bucket as CVAT names it (`CloudStorage.resource`); absent for a detached storage. */
  resource?: string;
  /** The object key, for object-level failures. */
  key?: string;
}

/** Longest body read to classify an error answer; CVAT's messages are a few hundred bytes. */
export const CLOUD_ERROR_BODY_MAX_BYTES = 16 * 1024;

/** Bucket names and keys are shown in logs and reasons: printable and bounded. */
function clean(text: string): string {
  const printable = text.replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?');
  return printable.length > 1024 ? `${printable.slice(0, 1024)}…` : printable;
}

const SHAPES: Array<{ status: number; re: RegExp; cause: (m: RegExpExecArray) => CloudCause }> = [
  // validate_bucket_status, Status.FORBIDDEN
  {
    status: 403,
    re: /^The resource (.+) is no longer available\. Access forbidden\.$/s,
    cause: (m) => ({ kind: 'bucket_forbidden', resource: clean(m[1] ?? '') }),
  },
  // validate_file_status, file Status.FORBIDDEN
  {
    status: 403,
    re: /^Access to the file '(.*)' on the '(.*)' cloud storage is denied$/s,
    cause: (m) => ({ kind: 'object_forbidden', key: clean(m[1] ?? ''), resource: clean(m[2] ?? '') }),
  },
  // validate_file_status, file Status.NOT_FOUND
  {
    status: 404,
    re: /^The file '(.*)' not found on the cloud storage '(.*)'$/s,
    cause: (m) => ({ kind: 'object_missing', key: clean(m[1] ?? ''), resource: clean(m[2] ?? '') }),
  },
  // validate_bucket_status, Status.NOT_FOUND
  { status: 404, re: /^The resource (.+) not found\. It may have been deleted\.$/s, cause: (m) => ({ kind: 'bucket_missing', resource: clean(m[1] ?? '') }) },
  // CloudStorageMissingError
  { status: 409, re: /^Task is not connected to cloud storage$/, cause: () => ({ kind: 'storage_detached' }) },
];

/** Whether an answer with this status may be a cloud error worth reading the body of. */
export function mayBeCloudError(status: number | undefined): boolean {
  return status === 403 || status === 404 || status === 409;
}

/**
 * The cloud cause of an error answer, or undefined when the body is not one of CVAT's cloud
 * messages (an object such as `{"detail": …}`, HTML, anything else).
 */
export function classifyCloudError(status: number, body: string): CloudCause | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'string') return undefined;
  for (const shape of SHAPES) {
    if (shape.status !== status) continue;
    const match = shape.re.exec(parsed);
    if (match) return shape.cause(match);
  }
  return undefined;
}

/** The failure reason a person reads; names the bucket and, for an object, the key. */
export function describeCloudCause(cause: CloudCause, where: { taskId: number; jobId: number; kind: string; slot: number }): string {
  const at = `task ${where.taskId} job ${where.jobId} ${where.kind} ${where.slot}`;
  const bucket = cause.resource !== undefined ? `"${cause.resource}"` : '';
  switch (cause.kind) {
    case 'bucket_forbidden':
      return `cloud storage forbidden: CVAT may no longer read bucket ${bucket} (credentials expired or revoked?); every task on it is skipped until its status is AVAILABLE`;
    case 'bucket_missing':
      return `cloud storage bucket gone: CVAT finds no bucket ${bucket} (deleted or renamed?); every task on it is skipped`;
    case 'object_missing':
      return `source missing in cloud storage: ${at} needs object "${cause.key ?? ''}", which bucket ${bucket} no longer has`;
    case 'object_forbidden':
      return `cloud object forbidden: ${at} needs object "${cause.key ?? ''}", which bucket ${bucket} refuses to CVAT`;
    case 'storage_detached':
      return `cloud storage detached: task ${where.taskId} is no longer connected to a cloud storage (the storage was deleted in CVAT); its chunks cannot be built`;
  }
}
