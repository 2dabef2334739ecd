/**
 * doctor: do CVAT's chunk workers answer? Since 2.23 a chunk that is not cached is built
 * by a worker of the RQ `chunks` queue (`cvat_worker_chunks`, Helm
 * `cvat.backend.worker.chunks`); the server waits up to CVAT_CHUNK_CREATE_TIMEOUT (50 s)
 * for it and then answers 429 with `Retry-After: 10`, the build still queued
 * (cvat/apps/engine/cache.py `_create_and_set_cache_item`, views.py `_RETRY_AFTER_TIMEOUT`).
 * With no worker running, every cold chunk gets that 429 forever while cached ones
 * still answer. So: ask for chunks the warmer reads last (least likely cached) until one
 * is built — the workers answer — or the same chunk gets 429 after the full wait again
 * and again — nobody takes builds off the `chunks` queue.
 */
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { Job } from '../cvat/shapes.js';
import { describeError } from '../errors.js';
import type { DoctorAdd } from './doctor.js';

const NAME = 'chunk workers';
/** Jobs whose last chunk is tried before concluding that everything is cached. */
const MAX_CANDIDATES = 3;
/** 429s for one chunk (each after CVAT's full wait) before the queue is declared unserved. */
const MAX_429 = 2;
/** Longer than CVAT's 50 s wait, so its 429 arrives before we give up. */
const ANSWER_TIMEOUT_MS = 75_000;
const MAX_RETRY_AFTER_S = 30;

export interface ChunkWorkerCheckOptions {
  coldThresholdMs: number;
  signal: AbortSignal;
}

/** Which chunk of a job the UI reads last: by `index` (2.20+) or task chunk `number` before. */
function lastChunk(job: Job, features: CvatFeatures): Record<string, string | number> | undefined {
  const size = job.data_chunk_size;
  if (!size) return undefined;
  return features.indexChunks
    ? { type: 'chunk', quality: 'compressed', index: Math.floor((job.stop_frame - job.start_frame) / size) }
    : { type: 'chunk', quality: 'compressed', number: Math.floor(job.stop_frame / size) };
}

/** Where an admin looks at CVAT's chunk workers. */
const WHERE =
  'compose: `docker compose ps cvat_worker_chunks` and its logs; Helm: `kubectl get deploy <release>-backend-worker-chunks` (cvat.backend.worker.chunks.replicas)';

interface Candidate {
  job: Job;
  query: Record<string, string | number>;
}

export async function checkChunkWorkers(
  client: CvatClient,
  features: CvatFeatures,
  jobs: Job[],
  add: DoctorAdd,
  options: ChunkWorkerCheckOptions,
): Promise<void> {
  const candidates = jobs.flatMap((job) => {
    const query = lastChunk(job, features);
    return query ? [{ job, query }] : [];
  });
  if (candidates.length === 0) {
    add(NAME, 'warn', 'no job with chunks visible to this account, so no chunk could be requested');
    return;
  }
  let cached = 0;
  for (const candidate of candidates.slice(0, MAX_CANDIDATES)) {
    if ((await probeJob(client, candidate, add, options)) === 'settled') return;
    cached++;
  }
  add(
    NAME,
    'ok',
    `the ${cached} chunk(s) tried were already cached (answered in under ${options.coldThresholdMs} ms), so the workers were not exercised${features.retryAfter429 ? '' : ' (before 2.23 the server builds chunks itself)'}`,
  );
}

/**
 * Ask for one job's last chunk until CVAT answers something conclusive: `settled` once the
 * verdict is added (or the check was interrupted), `cached` when the answer proves nothing.
 */
async function probeJob(client: CvatClient, { job, query }: Candidate, add: DoctorAdd, options: ChunkWorkerCheckOptions): Promise<'cached' | 'settled'> {
  const label = `job ${job.id} chunk ${query['index'] ?? query['number']}`;
  let refusals = 0;
  let waitedMs = 0;
  for (;;) {
    let answer: ChunkAnswer;
    try {
      answer = await requestChunk(client, job, query, options.signal);
    } catch (error) {
      add(NAME, 'fail', `${label}: ${describeError(error)}`, `CVAT did not answer a chunk request within ${ANSWER_TIMEOUT_MS / 1000} s; ${WHERE}`);
      return 'settled';
    }
    const { status, retryAfter, ms } = answer;
    if (status === 200 || status === 206) {
      // Served from the cache: proves nothing about the workers; try another job.
      if (ms < options.coldThresholdMs) return 'cached';
      add(
        NAME,
        'ok',
        `${label} was not cached and was built in ${(ms / 1000).toFixed(1)} s${refusals ? ` (after ${refusals} × 429)` : ''}: the chunk workers answer`,
      );
      return 'settled';
    }
    if (status !== 429) {
      add(NAME, 'warn', `${label}: CVAT answered ${status} (${hintFor(status)})`);
      return 'settled';
    }
    refusals++;
    waitedMs += ms;
    if (refusals >= MAX_429) {
      add(
        NAME,
        'fail',
        `${label}: CVAT answered 429 (Retry-After: ${retryAfter ?? '?'}) ${refusals} times, after waiting ${(waitedMs / refusals / 1000).toFixed(1)} s each: nothing takes chunk builds off the "chunks" queue`,
        `CVAT's chunk workers are not running (or all stuck): ${WHERE}`,
      );
      return 'settled';
    }
    const seconds = Math.min(MAX_RETRY_AFTER_S, Math.max(1, Number(retryAfter) || 10));
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    if (options.signal.aborted) return 'settled';
  }
}

interface ChunkAnswer {
  status: number;
  retryAfter: string | undefined;
  /** How long CVAT took to answer: a build, or its wait before a 429. */
  ms: number;
}

async function requestChunk(client: CvatClient, job: Job, query: Candidate['query'], signal: AbortSignal): Promise<ChunkAnswer> {
  const started = performance.now();
  const response = await client.raw(`/api/jobs/${job.id}/data`, {
    query,
    signal,
    kind: 'chunk',
    deadlineMs: ANSWER_TIMEOUT_MS,
    withOrganization: true,
  });
  const header = response.headers['retry-after'];
  // The answer came once the chunk was built (or the wait ran out): the body is not needed.
  await response.body.dump().catch(() => undefined);
  return { status: response.status, retryAfter: Array.isArray(header) ? header[0] : header, ms: performance.now() - started };
}

/** What an answer other than 200/206/429 most likely means. */
function hintFor(status: number): string {
  if (status >= 500)
    return 'CVAT could not build it: if the task reads the share, a file may be missing (`cvat-warden check`) or the chunk worker may not see the share (see "chunk worker share mount")';
  return status === 401 || status === 403 ? 'this account may not read job data' : 'CVAT refused the request';
}
