/**
 * A chunk worker without the share mount (cvat-ai/cvat #9146, #9453): the admin mounted
 * the share in `cvat_server` but not in `cvat_worker_chunks` (compose; Helm
 * `cvat.backend.worker.chunks`). Since 2.23 the worker builds every chunk, so opening a
 * share file there raises Python's FileNotFoundError for /home/django/share/<name>, though
 * the file is on the host. CVAT 2.73 answers such a request exactly as for a deleted file:
 *  - cvat/apps/engine/cache.py `wait_for_rq_job`: the failed RQ job's exception type and
 *    args are rebuilt in the web process (`_build_chunk_job_failure_exception`) and raised;
 *  - cvat/apps/engine/views.py `_DataGetter.__call__` catches ValidationError,
 *    PermissionDenied, NotFound, TimeoutError, CacheTooLargeDataError and
 *    CloudStorageMissingError only, so FileNotFoundError propagates;
 *  - cvat/apps/events/handlers.py `handle_viewset_exception` (settings EXCEPTION_HANDLER)
 *    logs a `send:exception` event and returns DRF's response, None for a non-API
 *    exception, so Django answers its bare "Server Error (500)" page (DEBUG off).
 * The emulator's builds then fail the same way (builds.ts), which http.ts turns into that page.
 */

/** The error a build raises for a share file when the worker does not have the share. */
export function workerWithoutShareError(name: string): Error {
  return new Error(`FileNotFoundError: [Errno 2] No such file or directory: '/home/django/share/${name}'`);
}
