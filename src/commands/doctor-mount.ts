/**
 * doctor: can CVAT's chunk worker read the share? A share task's chunk is built by a
 * worker of the `chunks` queue in its own container; without the share mounted there the
 * build raises FileNotFoundError and CVAT answers the bare 500 it gives for a deleted
 * file (see guard/shell/worker-mount.ts for the path through CVAT 2.73's source). So: ask for
 * the first chunk of a share task's annotation job; on a 500, open that chunk's source
 * files here — all readable means the worker's mount, not the files.
 */
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import { describeError } from '../errors.js';
import {
  addTaskToIndex,
  DirLister,
  explainChunkFailure,
  nodeFs,
  ShareIndex,
  ShareRootResolver,
  WORKER_MOUNT_FIX,
  WORKER_MOUNT_MESSAGE,
  type GuardTask,
} from '../guard/index.js';
import type { DoctorAdd } from './doctor.js';

const NAME = 'chunk worker share mount';
/** Share tasks tried: the first answer that proves something ends the check. */
const MAX_TASKS = 2;
/** Longer than CVAT's 50 s build wait. */
const ANSWER_TIMEOUT_MS = 75_000;

export async function checkWorkerShareMount(
  client: CvatClient,
  features: CvatFeatures,
  shareTasks: readonly GuardTask[],
  shareDir: string,
  add: DoctorAdd,
  signal: AbortSignal,
): Promise<void> {
  const resolver = new ShareRootResolver(shareDir, nodeFs);
  for (const task of shareTasks.slice(0, MAX_TASKS)) {
    // The task's first annotation job: its chunk 0 reads the task's first frames.
    const job = task.jobs.filter((j) => j.type === 'annotation').sort((a, b) => a.startFrame - b.startFrame || a.id - b.id)[0];
    if (!job) continue;
    const query = features.indexChunks
      ? { type: 'chunk', quality: 'compressed', index: 0 }
      : { type: 'chunk', quality: 'compressed', number: Math.floor(job.startFrame / Math.max(1, job.chunkSize)) };
    const label = `task ${task.taskId} job ${job.id} chunk 0`;
    let status: number;
    try {
      const response = await client.raw(`/api/jobs/${job.id}/data`, { query, signal, kind: 'chunk', deadlineMs: ANSWER_TIMEOUT_MS, withOrganization: true });
      status = response.status;
      await response.body.dump().catch(() => undefined);
    } catch (error) {
      add(NAME, 'warn', `${label}: ${describeError(error)}: could not try a share task's chunk`);
      return;
    }
    if (status === 200 || status === 206) {
      add(NAME, 'ok', `${label} (a share task) was served: the chunk worker reads the share`);
      return;
    }
    if (status === 429) continue; // the build did not finish in CVAT's wait: the chunk-workers check speaks to that
    if (status < 500) {
      add(NAME, 'warn', `${label}: CVAT answered ${status}; the worker's share mount could not be tried`);
      return;
    }
    const index = new ShareIndex();
    const ctx = { fs: nodeFs, resolver, lister: new DirLister(nodeFs, (rel) => resolver.abs(rel)), includeUnknownStorage: true };
    await addTaskToIndex(index, task, ctx);
    const why = await explainChunkFailure(index, (rel) => resolver.abs(rel), {
      taskId: task.taskId,
      jobId: job.id,
      chunk: features.indexChunks ? 0 : undefined,
    });
    if (why?.startsWith(WORKER_MOUNT_MESSAGE)) add(NAME, 'fail', `${label}: ${why}`, WORKER_MOUNT_FIX);
    else
      add(
        NAME,
        'fail',
        `${label}: CVAT answered ${status}: ${why ?? 'the chunk build fails on the server'}`,
        `cvat-warden check --all --share-dir ${shareDir}`,
      );
    return;
  }
}
