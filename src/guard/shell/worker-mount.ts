/**
 * "CVAT's chunk worker cannot see the share": told apart from a missing file. A chunk of a
 * share task is built by a worker of the RQ `chunks` queue (`cvat_worker_chunks`, Helm
 * `cvat.backend.worker.chunks`), which opens the source files under /home/django/share in
 * its own container. Without the share mounted there the build raises FileNotFoundError,
 * and CVAT 2.73 answers exactly as for a file deleted from the share: the worker's
 * exception is rebuilt in the web process (cvat/apps/engine/cache.py
 * `wait_for_rq_job` → `_build_chunk_job_failure_exception`), `_DataGetter.__call__`
 * (views.py) does not catch it, DRF's handler (`cvat.apps.events.handlers.
 * handle_viewset_exception`) returns no response for it, and Django sends its bare
 * "Server Error (500)" page. The answer cannot tell the two apart; the share on this side
 * can: when every source file of the failing chunk is present and readable here, the
 * files are not the problem, the worker's mount is (cvat-ai/cvat #9146, #9453).
 */
import fs from 'node:fs/promises';
import { chunkOf } from '../core/mapping.js';
import type { ShareIndex } from '../core/share-index.js';

export const WORKER_MOUNT_MESSAGE = "CVAT's chunk worker cannot see the share; mount it in `cvat_worker_chunks` (compose) / `chunks.additionalVolumes` (Helm)";

/** The exact keys, from CVAT 2.73's installation guide ("Share path") and Helm values.yaml. */
export const WORKER_MOUNT_FIX =
  'compose: add `- cvat_share:/home/django/share:ro` under `cvat_worker_chunks: volumes:` in docker-compose.override.yml, as for cvat_server; ' +
  'Helm: the share volume in `cvat.backend.worker.chunks.additionalVolumes` and its mount at /home/django/share in `cvat.backend.worker.chunks.additionalVolumeMounts`';

/** Source files checked per failing chunk (a chunk holds its frames and their context images). */
const MAX_FILES = 64;

/**
 * Share-relative files a job chunk reads, from the index: the frames of job-relative chunk
 * `chunk` (the video file for a video) and their context images; with `chunk` undefined
 * (a preview, a legacy task chunk) the job's first files. Undefined when the task or job is
 * not indexed.
 */
export function chunkFilesOf(index: ShareIndex, taskId: number, jobId: number, chunk: number | undefined): string[] | undefined {
  const task = index.tasks.get(taskId);
  const job = task?.mapping.jobs.find((j) => j.id === jobId);
  if (!task || !job) return undefined;
  const files = new Set<string>();
  for (let i = 0; i < task.fileIds.length && files.size < MAX_FILES; i++) {
    const f = task.fileIds[i]!;
    const frame = task.frames[i]!;
    if (!index.isLive(f)) continue;
    const c = frame < 0 ? 0 : chunkOf(task.mapping, job, frame);
    if (c < 0 || (chunk !== undefined && frame >= 0 && c !== chunk)) continue;
    files.add(index.relPath(f));
  }
  return [...files];
}

export type Readability = { kind: 'readable'; checked: number } | { kind: 'missing'; path: string } | { kind: 'unreadable'; path: string; code: string };

/** Opens each file for reading here (as the worker would), stopping at the first that fails. */
export async function readableHere(abs: (rel: string) => string, rels: readonly string[]): Promise<Readability> {
  for (const rel of rels.slice(0, MAX_FILES)) {
    try {
      const handle = await fs.open(abs(rel), 'r');
      await handle.close();
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'error';
      return code === 'ENOENT' || code === 'ENOTDIR' ? { kind: 'missing', path: rel } : { kind: 'unreadable', path: rel, code };
    }
  }
  return { kind: 'readable', checked: Math.min(rels.length, MAX_FILES) };
}

/** The failure reason with the cause named, or undefined when the files do not clear it (or are unknown). */
export async function explainChunkFailure(
  index: ShareIndex,
  abs: (rel: string) => string,
  failure: { taskId: number; jobId: number; chunk: number | undefined },
): Promise<string | undefined> {
  const files = chunkFilesOf(index, failure.taskId, failure.jobId, failure.chunk);
  if (!files || files.length === 0) return undefined;
  const verdict = await readableHere(abs, files);
  if (verdict.kind === 'readable')
    return `${WORKER_MOUNT_MESSAGE} (CVAT answered 500 with its file-not-found failure, yet the ${verdict.checked} source file(s) of this chunk are present and readable here, e.g. ${files[0]})`;
  if (verdict.kind === 'missing') return `source file missing from the share: ${verdict.path} (cvat-warden check; restore from the vault)`;
  return `source file unreadable here (${verdict.code}): ${verdict.path}; CVAT's worker may not read it either`;
}
