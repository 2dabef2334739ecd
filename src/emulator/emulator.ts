/**
 * startEmulator: a node:http stand-in for CVAT (2.73 by default, 2.14-style "old mode" below 2.20) for
 * tests, benchmarks and the no-CVAT demo. Every behaviour comes from cvat-facts.md:
 * segment-keyed chunk cache with CVAT's key names, FIFO build queue with K workers and
 * dedup, wait-then-429, 24 h TTL from build time, share-backed builds that fail with a
 * bare 500 when a file is gone, Range, auth/orgs, paging and filters.
 *
 *   const emu = await startEmulator({ tasks: syntheticDeployment({ tasks: 3 }), buildTimeMs: 5 });
 *   … fetch(`${emu.url}/api/jobs?page_size=all`) …
 *   await emu.close();
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserDirectory } from './auth.js';
import { BackupService } from './backups.js';
import { CloudStorages, type CloudStorageSpec } from './cloud.js';
import type { BuildContext } from './builds.js';
import { MediaCache, type CacheObserver } from './cache.js';
import { isAdvanceable, systemClock, type Clock } from './clock.js';
import { DataService } from './data.js';
import { emulatorFeatures, type EmulatorFeatures } from './features.js';
import { FaultInjector } from './faults.js';
import { legacyChunkKey } from './keys.js';
import { Deployment, type EmulatedJob, type EmulatedTask } from './model.js';
import { taskChunkOf } from './segments.js';
import { taskStatus } from './serialize.js';
import { createRequestHandler } from './server.js';
import { deleteShareFile } from './share.js';
import type { EmulatorAuth, JobStage, JobState, OrganizationSpec, TaskSpec } from './spec.js';
import { EmulatorState } from './state.js';

export interface EmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** e.g. '/cvat' → API under /cvat/api/…; `url` includes it. */
  pathPrefix?: string;
  /** Default '2.73.0'. Below 2.20 (e.g. '2.14.4') = old mode: task-chunk numbers, shared border chunks, no 429. */
  version?: string;
  /** K chunk workers (2.23+: RQ `chunks` workers; before: web workers that build in the request). Default 2. */
  chunkWorkers?: number;
  /** Build time per item, ms. Default 200. */
  buildTimeMs?: number;
  /** How long a request waits for its build (CVAT_CHUNK_CREATE_TIMEOUT) before 429 (old mode: 504). Default 50 000. */
  serverWaitMs?: number;
  /** Retry-After seconds on 429. Default 10. */
  retryAfterSeconds?: number;
  /** Chunk/context-image lifetime from build time. Default 24 h. */
  ttlMs?: number;
  /** Preview lifetime. Default 7 days (2.23+), else ttlMs. */
  previewTtlMs?: number;
  /** Synthetic compressed chunk size in bytes (original chunks are twice as big). Default 32 KiB. */
  chunkBytes?: number;
  /** Default: the system clock. */
  clock?: Clock;
  /** A real directory standing for CVAT's /home/django/share. Needed by share-backed tasks. */
  shareDir?: string;
  /** The chunk worker lacks the share mount: share-task builds fail with FileNotFoundError, files present (worker-mount.ts). Default false. */
  chunkWorkerWithoutShare?: boolean;
  /** Users and credentials. Omitted → every request is an anonymous admin. */
  auth?: EmulatorAuth;
  tasks?: TaskSpec[];
  organizations?: OrganizationSpec[];
  /**
   * Serve legacy `number` job chunks and task chunks from a job chunk whose frames match exactly
   * (the behaviour CVAT intends). Default false, like CVAT 2.73 itself: its `find_matching_chunk`
   * compares a list with a set and never matches, so these always build separate keys.
   */
  matchingChunkShortcut?: boolean;
  /** Delay before answering each API request, ms (a remote CVAT; benchmarks use 10). Default 0. */
  latencyMs?: number;
  /** Time one task backup export takes on the export worker. Default 50 ms. */
  backupExportTimeMs?: number;
  /** Cloud storages, each a directory standing in for its bucket (cloud.ts). Tasks name one with `storage: 'cloud_storage'`, `cloudStorageId`. */
  cloudStorages?: CloudStorageSpec[];
  /** Sees every change of the media cache (`RedisCacheMirror` copies it into a real Redis, as Kvrocks). */
  cacheObserver?: CacheObserver;
}

export interface Emulator {
  /** Base URL including the path prefix, no trailing slash. */
  url: string;
  /** Stops the server and the workers. Idempotent. */
  close(): Promise<void>;
  state: EmulatorState;
  faults: FaultInjector;
  addTask(spec: TaskSpec): EmulatedTask;
  removeTask(id: number): void;
  /** Like a honeypot update: drops the segment's cached chunks and bumps its chunks_updated_date. */
  touchSegment(jobId: number): void;
  /** Stop listening (connections refused); the cache and the queue survive, like Kvrocks/RQ across a CVAT restart. */
  stop(): Promise<void>;
  /** Listen again on the same port. */
  start(): Promise<void>;
  /** Empties the media cache (a cold start for benchmarks); counters stay (see state.resetCounters()). */
  clearCache(): void;
  /**
   * Changes a job (e.g. state → completed) and bumps its updated_date; the task's date moves only
   * when its aggregated status changes (cvat/apps/engine/signals.py `__save_job_handler`).
   */
  updateJob(jobId: number, patch: { state?: JobState; stage?: JobStage; assignee?: string | null }): EmulatedJob;
  /** Adds a ground-truth job to a task after its creation (its date is now; the task's does not move). */
  addGroundTruthJob(taskId: number, frames: number[]): EmulatedJob;
  /** Deletes a ground-truth job (only those can be deleted); the task's date does not move. */
  removeJob(jobId: number): void;
  readonly deployment: Deployment;
  readonly features: EmulatorFeatures;
  readonly clock: Clock;
  readonly port: number;
  /** Task backups (POST backup/export, GET /api/requests/{id}, result_url downloads). */
  readonly backups: BackupService;
  /** Cloud storages: status, listing and object reads (cloud.ts); counts LIST calls. */
  readonly cloud: CloudStorages;
  /** Deletes a cloud storage record: its tasks keep `storage: cloud_storage`, lose `cloud_storage_id` (SET_NULL) and answer 409. */
  removeCloudStorage(id: number): void;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const host = options.host ?? '127.0.0.1';
  const prefix = (options.pathPrefix ?? '').replace(/\/+$/, '');
  if (prefix && !prefix.startsWith('/')) throw new Error(`pathPrefix must start with "/": ${prefix}`);
  const parts = assembleCvat(options);
  const { features, clock, deployment, cache, state, cloud, faults, backups, touchSegment } = parts;
  const listener = new Listener(http.createServer(requestHandlerFor(parts, options, prefix)), host, options.port ?? 0);
  let closed = false;
  await listener.listen();
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${listener.port}${prefix}`,
    state,
    faults,
    deployment,
    features,
    clock,
    backups,
    cloud,
    removeCloudStorage(id) {
      cloud.remove(id);
      for (const task of deployment.tasks.values()) if (task.cloudStorageId === id) task.cloudStorageId = null;
    },
    get port() {
      return listener.port;
    },
    addTask: (spec) => deployment.addTask(spec),
    removeTask: (id) => deployment.removeTask(id),
    touchSegment,
    updateJob: (jobId, patch) => updateJob(parts, jobId, patch),
    addGroundTruthJob: (taskId, frames) => deployment.addGroundTruthJob(taskId, frames),
    removeJob(jobId) {
      const job = deployment.jobs.get(jobId);
      const segmentId = job?.segmentId;
      deployment.removeJob(jobId);
      if (segmentId !== undefined) cache.deletePrefix(`segment_${segmentId}_`);
    },
    stop: () => listener.stop(),
    clearCache: () => cache.clear(),
    async start() {
      if (closed) throw new Error('the emulator is closed');
      await listener.listen();
    },
    async close() {
      if (closed) return;
      closed = true;
      await listener.stop();
      cache.shutdown();
    },
  };
}

/** The emulated CVAT's parts, wired as CVAT's are: users, tasks, the media cache and its workers, data, backups, cloud. */
interface CvatParts {
  features: EmulatorFeatures;
  clock: Clock;
  users: UserDirectory;
  deployment: Deployment;
  cache: MediaCache;
  state: EmulatorState;
  cloud: CloudStorages;
  data: DataService;
  faults: FaultInjector;
  backups: BackupService;
  organizations: OrganizationSpec[];
  /** Moves a segment's date and drops its cached chunks, as re-saving a job's data does. */
  touchSegment: (jobId: number) => void;
}

function assembleCvat(options: EmulatorOptions): CvatParts {
  const features = emulatorFeatures(options.version ?? '2.73.0');
  const clock = options.clock ?? systemClock;
  const organizations = options.organizations ?? [];
  const users = new UserDirectory(options.auth, { accessTokens: features.accessTokens });
  const deployment = new Deployment({
    clock,
    shareDir: options.shareDir,
    supportsConsensus: features.consensus,
    organizations,
    checkUser: (u) => users.checkUser(u),
    defaultOwner: users.defaultOwner(),
  });
  const cache = new MediaCache({
    clock,
    workers: Math.max(1, options.chunkWorkers ?? 2),
    onBuild: (event) => state.recordBuild(event), // builds finish asynchronously, after `state` is set
    ...(options.cacheObserver ? { observer: options.cacheObserver } : {}),
  });
  const state = new EmulatorState({ cache, deployment, legacy: features.legacy, clock, version: features.version });
  const cloud = new CloudStorages(options.cloudStorages ?? [], () => clock.now());
  const data = new DataService(buildContext(options, { deployment, cloud, cache, features }), state, {
    serverWaitMs: options.serverWaitMs ?? 50_000,
    retryAfterSeconds: options.retryAfterSeconds ?? 10,
    matchingChunkShortcut: options.matchingChunkShortcut ?? false,
  });
  const faults = new FaultInjector({
    pause: () => cache.pauseWorkers(),
    resume: () => cache.resumeWorkers(),
    paused: () => cache.workersPaused,
  });
  for (const spec of options.tasks ?? []) {
    if (spec.storage === 'cloud_storage' && spec.cloudStorageId !== undefined && !cloud.has(spec.cloudStorageId))
      throw new Error(`task ${spec.id ?? '(next)'}: cloud storage ${spec.cloudStorageId} is not declared in cloudStorages`);
    deployment.addTask(spec);
  }
  const backups = new BackupService({
    deployment,
    users,
    clock,
    shareDir: options.shareDir,
    version: features.version,
    cloud,
    ...(options.backupExportTimeMs !== undefined ? { exportTimeMs: options.backupExportTimeMs } : {}),
  });
  const touchSegment = (jobId: number) => dropSegment(deployment, cache, features, jobId);
  return { features, clock, users, deployment, cache, state, cloud, data, faults, backups, organizations, touchSegment };
}

/** How chunks are built: from the share or a bucket, how long it takes, how long they live. */
function buildContext(options: EmulatorOptions, parts: Pick<BuildContext, 'deployment' | 'cloud' | 'cache' | 'features'>): BuildContext {
  const ttlMs = options.ttlMs ?? 24 * 3600_000;
  return {
    ...parts,
    shareDir: options.shareDir,
    ttlMs,
    previewTtlMs: options.previewTtlMs ?? (parts.features.longPreviewTtl ? 7 * 24 * 3600_000 : ttlMs),
    buildTimeMs: options.buildTimeMs ?? 200,
    chunkBytes: options.chunkBytes ?? 32 * 1024,
    workerWithoutShare: options.chunkWorkerWithoutShare ?? false,
  };
}

function dropSegment(deployment: Deployment, cache: MediaCache, features: EmulatorFeatures, jobId: number): void {
  const seg = deployment.touchSegment(jobId);
  cache.deletePrefix(`segment_${seg.id}_`);
  const task = deployment.tasks.get(seg.taskId);
  if (features.legacy && task?.dataId != null) {
    for (let n = taskChunkOf(seg.startFrame, task.chunkSize); n <= taskChunkOf(seg.stopFrame, task.chunkSize); n++) {
      cache.delete(legacyChunkKey(task.dataId, n, 'compressed'));
      cache.delete(legacyChunkKey(task.dataId, n, 'original'));
    }
  }
}

function requestHandlerFor(parts: CvatParts, options: EmulatorOptions, prefix: string): http.RequestListener {
  const { features, users, deployment, organizations, clock } = parts;
  return createRequestHandler({
    backups: parts.backups,
    prefix,
    users,
    serialize: { features, users, deployment, organizations, createdMs: clock.now() },
    organizations,
    data: parts.data,
    state: parts.state,
    faults: parts.faults,
    cloud: parts.cloud,
    shareDir: options.shareDir,
    ...(options.latencyMs ? { latencyMs: options.latencyMs } : {}),
    control: {
      advanceClock: (ms) => (isAdvanceable(clock) ? clock.advance(ms) : null),
      touchSegment: parts.touchSegment,
      deleteShareFile: (path) => (options.shareDir ? deleteShareFile(options.shareDir, path) : Promise.resolve('refused')),
    },
  });
}

/** A job's state, stage or assignee changed: the task's date moves only when its aggregated status does (signals.py). */
function updateJob(parts: CvatParts, jobId: number, patch: { state?: JobState; stage?: JobStage; assignee?: string | null }): EmulatedJob {
  const job = parts.deployment.jobs.get(jobId);
  if (!job) throw new Error(`job ${jobId} does not exist`);
  const task = parts.deployment.taskOf(job);
  const statusBefore = taskStatus(task);
  if (patch.state !== undefined) job.state = patch.state;
  if (patch.stage !== undefined) job.stage = patch.stage;
  if (patch.assignee !== undefined) {
    if (patch.assignee) parts.users.checkUser(patch.assignee);
    job.assignee = patch.assignee;
  }
  job.updatedMs = parts.clock.now();
  if (taskStatus(task) !== statusBefore) task.updatedMs = job.updatedMs;
  return job;
}

/** The emulator's server: listens again after `stop()` (on the same port once it had one). */
class Listener {
  readonly #server: http.Server;
  readonly #host: string;
  #port: number;
  #listening = false;

  constructor(server: http.Server, host: string, port: number) {
    this.#server = server;
    this.#host = host;
    this.#port = port;
  }

  get port(): number {
    return this.#port;
  }

  listen(): Promise<void> {
    if (this.#listening) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.#server.once('error', onError);
      this.#server.listen(this.#port, this.#host, () => {
        this.#server.off('error', onError);
        this.#listening = true;
        this.#port = (this.#server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
