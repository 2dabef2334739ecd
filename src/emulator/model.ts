/**
 * The emulated deployment: tasks → segments → jobs, created from TaskSpecs the way
 * CVAT's task creation does it (segment per `_generate_segment_params` range, one
 * annotation job per segment followed by its consensus replicas, then the ground-truth
 * job on a SPECIFIC_FRAMES segment). Ids are global counters like database keys.
 */
import type { Clock } from './clock.js';
import { fillMedia, resolveGeometry } from './media.js';
import { defaultChunkSize, generateSegmentParams, rangeFrameSet, relToAbs, type FrameGeometry } from './segments.js';
import type { JobStage, JobState, JobType, MediaType, StorageKind, TaskMode, TaskSpec } from './spec.js';

export interface FrameInfo {
  /** `frames[].name` in meta: share-relative path for share tasks. */
  name: string;
  width: number;
  height: number;
  /** Share-relative paths of the context images (share tasks), else empty. */
  relatedPaths: string[];
  /** `related_files` count. */
  related: number;
}

export interface EmulatedSegment {
  id: number;
  taskId: number;
  type: 'range' | 'specific_frames';
  /** Relative task frames, inclusive (GT segments span the whole task). */
  startFrame: number;
  stopFrame: number;
  /** Absolute frames of a SPECIFIC_FRAMES segment (`included_frames`), else null. */
  frames: number[] | null;
  /** `Segment.frame_set`: absolute frames, ascending. */
  frameSet: number[];
  /** `chunks_updated_date` (clock ms). */
  chunksUpdatedMs: number;
}

export interface EmulatedJob {
  id: number;
  taskId: number;
  segmentId: number;
  type: JobType;
  parentJobId: number | null;
  state: JobState;
  stage: JobStage;
  assignee: string | null;
  createdMs: number;
  updatedMs: number;
}

export interface EmulatedTask {
  id: number;
  name: string;
  /** `data` id; null for a task without data. */
  dataId: number | null;
  mediaType: MediaType;
  mode: TaskMode;
  geometry: FrameGeometry;
  chunkSize: number;
  /** `segment_size` as requested (0 = whole task). */
  segmentSize: number;
  /** Effective overlap. */
  overlap: number;
  storage: StorageKind;
  /** `Data.cloud_storage_id` of a cloud-storage task; null when never set or when the storage was deleted (SET_NULL). */
  cloudStorageId: number | null;
  /** One entry per task frame (images / point clouds); empty for video. */
  frames: FrameInfo[];
  /** Deleted relative task frames (`Data.deleted_frames`), ascending. */
  deletedFrames: number[];
  /** `validation_mode`: 'gt' with a SPECIFIC_FRAMES GT job, 'gt_pool' with honeypots, else null. */
  validationMode: 'gt' | 'gt_pool' | null;
  video: { path: string; width: number; height: number } | null;
  organization: { id: number; slug: string } | null;
  projectId: number | null;
  owner: string;
  assignee: string | null;
  imageQuality: number;
  subset: string;
  createdMs: number;
  updatedMs: number;
  buildTimeMs: number | undefined;
  chunkBytes: number | undefined;
  segments: EmulatedSegment[];
  jobs: EmulatedJob[];
}

export interface DeploymentOptions {
  clock: Clock;
  shareDir: string | undefined;
  /** Versions before consensus (2.14): replicas are not created. */
  supportsConsensus: boolean;
  organizations: ReadonlyArray<{ id: number; slug: string }>;
  /** Resolves a username (throws for unknown users when auth is configured). */
  checkUser: (username: string) => void;
  defaultOwner: string;
}

export class Deployment {
  readonly tasks = new Map<number, EmulatedTask>();
  readonly segments = new Map<number, EmulatedSegment>();
  readonly jobs = new Map<number, EmulatedJob>();
  readonly #opts: DeploymentOptions;
  #nextTaskId = 1;
  #nextDataId = 1;
  #nextSegmentId = 1;
  #nextJobId = 1;

  constructor(opts: DeploymentOptions) {
    this.#opts = opts;
  }

  addTask(spec: TaskSpec): EmulatedTask {
    const id = spec.id ?? this.#nextTaskId;
    if (!Number.isInteger(id) || id < 1) throw new Error(`task id must be a positive integer, got ${id}`);
    if (this.tasks.has(id)) throw new Error(`task ${id} already exists`);
    const task = this.#buildTask(id, spec);
    this.#nextTaskId = Math.max(this.#nextTaskId, id + 1);
    this.tasks.set(id, task);
    for (const s of task.segments) this.segments.set(s.id, s);
    for (const j of task.jobs) this.jobs.set(j.id, j);
    return task;
  }

  removeTask(id: number): void {
    const task = this.tasks.get(id);
    if (!task) return;
    for (const s of task.segments) this.segments.delete(s.id);
    for (const j of task.jobs) this.jobs.delete(j.id);
    this.tasks.delete(id);
  }

  /** A honeypot-style update of a job's segment: bumps `chunks_updated_date` and the task's `updated_date`. */
  touchSegment(jobId: number): EmulatedSegment {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`job ${jobId} does not exist`);
    const seg = this.segmentOf(job);
    const task = this.taskOf(job);
    const now = this.#opts.clock.now();
    seg.chunksUpdatedMs = now;
    task.updatedMs = now;
    return seg;
  }

  taskOf(job: EmulatedJob): EmulatedTask {
    const task = this.tasks.get(job.taskId);
    if (!task) throw new Error(`job ${job.id} has no task`);
    return task;
  }

  segmentOf(job: EmulatedJob): EmulatedSegment {
    const seg = this.segments.get(job.segmentId);
    if (!seg) throw new Error(`job ${job.id} has no segment`);
    return seg;
  }

  /** Latest `chunks_updated_date` over the task's segments (what task chunks report). */
  taskChunksUpdatedMs(task: EmulatedTask): number {
    return task.segments.reduce((max, s) => Math.max(max, s.chunksUpdatedMs), task.createdMs);
  }

  #buildTask(id: number, spec: TaskSpec): EmulatedTask {
    const base = this.#taskWithoutData(id, spec);
    if (spec.noData) return base;
    const geometry = resolveGeometry(id, spec);
    const task: EmulatedTask = { ...base, dataId: this.#nextDataId++, geometry };
    fillMedia(task, spec, this.#opts.shareDir);
    const first = task.frames[0] ?? task.video ?? { width: 1920, height: 1080 };
    // Audio: chunk_size is a duration, by default the whole task (one chunk), as in CVAT's fixture.
    task.chunkSize = spec.chunkSize ?? (task.mediaType === 'audio' ? geometry.size : defaultChunkSize(task.mediaType, first.width, first.height));
    if (!Number.isInteger(task.chunkSize) || task.chunkSize < 1) throw new Error(`task ${id}: chunkSize must be a positive integer`);
    const honeypots = spec.honeypots;
    if (honeypots) checkHoneypots(id, spec, geometry.size);
    this.#addSegments(task, spec, geometry.size - (honeypots?.pool ?? 0));
    for (const f of spec.deletedFrames ?? []) {
      if (!Number.isInteger(f) || f < 0 || f >= geometry.size) throw new Error(`task ${id}: deleted frame ${f} is outside [0, ${geometry.size - 1}]`);
    }
    task.deletedFrames = [...new Set(spec.deletedFrames ?? [])].sort((a, b) => a - b);
    if (honeypots) this.#addHoneypots(task, honeypots, task.createdMs);
    if (spec.groundTruthFrames && spec.groundTruthFrames.length > 0) this.#addGroundTruth(task, spec.groundTruthFrames, task.createdMs);
    return task;
  }

  /** The task object as CVAT has it before data is attached (also what `noData` tasks stay). */
  #taskWithoutData(id: number, spec: TaskSpec): EmulatedTask {
    const now = this.#opts.clock.now();
    const createdMs = spec.createdDate === undefined ? now : typeof spec.createdDate === 'number' ? spec.createdDate : Date.parse(spec.createdDate);
    if (!Number.isFinite(createdMs)) throw new Error(`task ${id}: invalid createdDate`);
    const mediaType = spec.mediaType ?? 'image';
    const storage = spec.storage ?? 'local';
    if (storage === 'share' && !this.#opts.shareDir) throw new Error(`task ${id}: storage 'share' needs the emulator's shareDir`);
    const owner = spec.owner ?? this.#opts.defaultOwner;
    this.#opts.checkUser(owner);
    if (spec.assignee) this.#opts.checkUser(spec.assignee);
    return {
      id,
      name: spec.name ?? `task ${id}`,
      dataId: null,
      mediaType,
      mode: spec.mode ?? (mediaType === 'video' ? 'interpolation' : 'annotation'),
      geometry: { start: 0, stop: 0, step: 1, size: 0 },
      chunkSize: spec.chunkSize ?? 0,
      segmentSize: spec.segmentSize ?? 0,
      overlap: 0,
      storage,
      cloudStorageId: storage === 'cloud_storage' ? (spec.cloudStorageId ?? null) : null,
      frames: [],
      deletedFrames: [],
      validationMode: null,
      video: null,
      organization: this.#organizationOf(id, spec),
      projectId: spec.projectId ?? null,
      owner,
      assignee: spec.assignee ?? null,
      imageQuality: spec.imageQuality ?? 70,
      subset: spec.subset ?? '',
      createdMs,
      updatedMs: createdMs,
      buildTimeMs: spec.buildTimeMs,
      chunkBytes: spec.chunkBytes,
      segments: [],
      jobs: [],
    };
  }

  #organizationOf(id: number, spec: TaskSpec): EmulatedTask['organization'] {
    if (spec.organization === undefined) return null;
    const org = this.#opts.organizations.find((o) => o.slug === spec.organization);
    if (!org) throw new Error(`task ${id}: unknown organization "${spec.organization}" (declare it in options.organizations)`);
    return { id: org.id, slug: org.slug };
  }

  /** The annotated frames cut into range segments as CVAT cuts them, each with its job and consensus replicas. */
  #addSegments(task: EmulatedTask, spec: TaskSpec, annotated: number): void {
    const plan = generateSegmentParams(annotated, task.segmentSize, spec.overlap, task.mode);
    task.overlap = plan.overlap;
    plan.segments.forEach((range, k) => {
      const seg: EmulatedSegment = {
        id: this.#nextSegmentId++,
        taskId: task.id,
        type: 'range',
        ...range,
        frames: null,
        frameSet: rangeFrameSet(task.geometry, range),
        chunksUpdatedMs: task.createdMs,
      };
      task.segments.push(seg);
      const state = spec.jobStates?.[k] ?? 'new';
      const parent = this.#newJob(task, seg, 'annotation', null, state, spec.jobAssignees?.[k] ?? null);
      const replicas = this.#opts.supportsConsensus ? (spec.consensusReplicas ?? 0) : 0;
      for (let r = 0; r < replicas; r++) this.#newJob(task, seg, 'consensus_replica', parent.id, spec.replicaStates?.[k]?.[r] ?? 'new', null);
    });
  }

  /**
   * A ground-truth job added to an existing task (`POST /api/jobs`, type ground_truth): a new
   * SPECIFIC_FRAMES segment and job dated now; the task's own date does not move.
   */
  addGroundTruthJob(taskId: number, frames: number[]): EmulatedJob {
    const task = this.tasks.get(taskId);
    if (!task || task.dataId === null) throw new Error(`task ${taskId} does not exist or has no data`);
    if (task.jobs.some((j) => j.type === 'ground_truth')) throw new Error(`task ${taskId} already has a ground-truth job`);
    const job = this.#addGroundTruth(task, frames, this.#opts.clock.now());
    for (const seg of task.segments) if (seg.id === job.segmentId) this.segments.set(seg.id, seg);
    this.jobs.set(job.id, job);
    return job;
  }

  /** `DELETE /api/jobs/{id}`: only ground-truth jobs can be removed (views.py `JobViewSet.perform_destroy`). */
  removeJob(jobId: number): void {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`job ${jobId} does not exist`);
    if (job.type !== 'ground_truth') throw new Error('Only ground truth jobs can be removed');
    const task = this.taskOf(job);
    task.jobs = task.jobs.filter((j) => j.id !== jobId);
    task.validationMode = null;
    task.segments = task.segments.filter((s) => s.id !== job.segmentId);
    this.segments.delete(job.segmentId);
    this.jobs.delete(jobId);
  }

  /** The pool's RANGE segment with the GT job, and placeholders at the end of each annotation segment. */
  #addHoneypots(task: EmulatedTask, honeypots: { pool: number; perJob: number }, createdMs: number): void {
    const size = task.geometry.size;
    const poolStart = size - honeypots.pool;
    let next = 0;
    for (const seg of task.segments) {
      const count = Math.min(honeypots.perJob, seg.stopFrame - seg.startFrame);
      for (let k = 0; k < count; k++) {
        const rel = seg.stopFrame - k;
        const real = task.frames[poolStart + (next++ % honeypots.pool)];
        if (real) task.frames[rel] = { ...real, relatedPaths: [], related: 0 };
      }
    }
    const range = { startFrame: poolStart, stopFrame: size - 1 };
    const seg: EmulatedSegment = {
      id: this.#nextSegmentId++,
      taskId: task.id,
      type: 'range',
      ...range,
      frames: null,
      frameSet: rangeFrameSet(task.geometry, range),
      chunksUpdatedMs: createdMs,
    };
    task.segments.push(seg);
    this.#newJob(task, seg, 'ground_truth', null, 'new', null);
    task.validationMode = 'gt_pool';
  }

  #addGroundTruth(task: EmulatedTask, frames: readonly number[], createdMs: number): EmulatedJob {
    const geometry = task.geometry;
    const rel = [...new Set(frames)].sort((a, b) => a - b);
    for (const f of rel) {
      if (!Number.isInteger(f) || f < 0 || f >= geometry.size) {
        throw new Error(`task ${task.id}: ground-truth frame ${f} is outside [0, ${geometry.size - 1}]`);
      }
    }
    const abs = rel.map((f) => relToAbs(geometry, f));
    const seg: EmulatedSegment = {
      id: this.#nextSegmentId++,
      taskId: task.id,
      type: 'specific_frames',
      startFrame: 0,
      stopFrame: geometry.size - 1,
      frames: abs,
      frameSet: abs,
      chunksUpdatedMs: createdMs,
    };
    task.segments.push(seg);
    task.validationMode = 'gt';
    const job = this.#newJob(task, seg, 'ground_truth', null, 'new', null);
    job.createdMs = createdMs;
    job.updatedMs = createdMs;
    return job;
  }

  #newJob(task: EmulatedTask, seg: EmulatedSegment, type: JobType, parentJobId: number | null, state: JobState, assignee: string | null): EmulatedJob {
    if (assignee) this.#opts.checkUser(assignee);
    const job: EmulatedJob = {
      id: this.#nextJobId++,
      taskId: task.id,
      segmentId: seg.id,
      type,
      parentJobId,
      state,
      stage: state === 'completed' ? 'acceptance' : 'annotation',
      assignee,
      createdMs: task.createdMs,
      updatedMs: task.createdMs,
    };
    task.jobs.push(job);
    return job;
  }
}

function checkHoneypots(id: number, spec: TaskSpec, size: number): void {
  const honeypots = spec.honeypots;
  if (!honeypots) return;
  if (spec.groundTruthFrames?.length) throw new Error(`task ${id}: honeypots and groundTruthFrames are exclusive`);
  if (!Number.isInteger(honeypots.pool) || honeypots.pool < 1 || honeypots.pool >= size)
    throw new Error(`task ${id}: honeypot pool must be 1 to ${size - 1} frames`);
  if ((spec.mediaType ?? 'image') === 'video') throw new Error(`task ${id}: honeypots need an image or point-cloud task`);
}
