/**
 * JSON bodies shaped like CVAT's serializers, field for field as in the real dumps
 * (v2.73.0 / v2.14.4 `tests/python/shared/assets/{tasks,jobs}.json`): TaskRead, JobRead,
 * DataMetaRead (task and job variants), About, User, Organization.
 */
import type { UserDirectory, UserRecord } from './auth.js';
import type { EmulatorFeatures } from './features.js';
import { cvatDate } from './clock.js';
import type { Deployment, EmulatedJob, EmulatedSegment, EmulatedTask } from './model.js';
import { absToRel, relToAbs } from './segments.js';

export interface SerializeContext {
  /** Absolute base URL including the path prefix, e.g. `http://127.0.0.1:8080/cvat`. */
  base: string;
  features: EmulatorFeatures;
  users: UserDirectory;
  deployment: Deployment;
  organizations: ReadonlyArray<{ id: number; slug: string; name?: string; owner?: string }>;
  createdMs: number;
}

export function aboutJson(ctx: SerializeContext): Record<string, unknown> {
  const about: Record<string, unknown> = {
    name: 'Computer Vision Annotation Tool',
    description:
      'CVAT is completely re-designed and re-implemented version of Video Annotation Tool from Irvine, California tool. ' +
      'It is free, online, interactive video and image annotation tool for computer vision. (cvat-warden emulator)',
    version: ctx.features.version,
  };
  if (!ctx.features.legacy) {
    about['logo_url'] = `${ctx.base}/static/logo.svg`;
    about['subtitle'] = 'Open Data Annotation Platform';
  }
  return about;
}

export function basicUser(ctx: SerializeContext, username: string | null): Record<string, unknown> | null {
  if (!username) return null;
  const user = ctx.users.get(username);
  if (!user) return null;
  return { url: `${ctx.base}/api/users/${user.id}`, id: user.id, username: user.username, first_name: user.firstName, last_name: user.lastName };
}

export function userJson(ctx: SerializeContext, user: UserRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    url: `${ctx.base}/api/users/${user.id}`,
    id: user.id,
    username: user.username,
    first_name: user.firstName,
    last_name: user.lastName,
    email: user.email,
    groups: user.isAdmin ? ['admin'] : ['user'],
    is_staff: user.isAdmin,
    is_superuser: user.isAdmin,
    is_active: true,
    last_login: cvatDate(ctx.createdMs),
    date_joined: cvatDate(ctx.createdMs),
  };
  if (!ctx.features.legacy) out['has_analytics_access'] = user.isAdmin;
  return out;
}

export function organizationJson(ctx: SerializeContext, org: { id: number; slug: string; name?: string; owner?: string }): Record<string, unknown> {
  const owner = org.owner ?? ctx.users.all().find((u) => u.orgRoles[org.slug] === 'owner')?.username ?? ctx.users.defaultOwner();
  return {
    id: org.id,
    slug: org.slug,
    name: org.name ?? org.slug,
    description: '',
    created_date: cvatDate(ctx.createdMs),
    updated_date: cvatDate(ctx.createdMs),
    contact: {},
    owner: basicUser(ctx, owner),
  };
}

const chunkType = (task: EmulatedTask): string => (task.mediaType === 'video' ? 'video' : task.mediaType === 'audio' ? 'audio_mp3' : 'imageset');
const dimension = (task: EmulatedTask): string => (task.mediaType === 'pointcloud' ? '3d' : task.mediaType === 'audio' ? '1d' : '2d');
const mediaType = (task: EmulatedTask): string => (task.mediaType === 'pointcloud' ? 'point_cloud' : task.mediaType === 'audio' ? 'audio' : 'image');

/**
 * The task's aggregated status, CVAT's way (signals.py `__save_job_handler`): over every job of
 * the task (replicas and GT included), `annotation` if any job's status is, else `validation` if
 * any is, else `completed`. CVAT stores it and changes it (and the task's date) only when it moves.
 */
export function taskStatus(task: EmulatedTask): string {
  const statuses = task.jobs.map(jobStatus);
  if (statuses.length === 0 || statuses.includes('annotation')) return 'annotation';
  if (statuses.includes('validation')) return 'validation';
  return 'completed';
}

export function jobStatus(job: EmulatedJob): string {
  if (job.state === 'completed' && job.stage === 'acceptance') return 'completed';
  return job.stage === 'validation' ? 'validation' : 'annotation';
}

export function taskJson(ctx: SerializeContext, task: EmulatedTask): Record<string, unknown> {
  const hasData = task.dataId !== null;
  const out: Record<string, unknown> = {
    url: `${ctx.base}/api/tasks/${task.id}`,
    id: task.id,
    name: task.name,
    project_id: task.projectId,
    owner: basicUser(ctx, task.owner),
    assignee: basicUser(ctx, task.assignee),
    bug_tracker: '',
    created_date: cvatDate(task.createdMs),
    updated_date: cvatDate(task.updatedMs),
    overlap: hasData ? task.overlap : null,
    segment_size: task.segmentSize,
    status: taskStatus(task),
  };
  if (hasData) {
    out['data_chunk_size'] = task.chunkSize;
    out['data_compressed_chunk_type'] = chunkType(task);
    out['data_original_chunk_type'] = chunkType(task);
    out['size'] = task.geometry.size;
    out['image_quality'] = task.imageQuality;
    out['data'] = task.dataId;
  }
  out['guide_id'] = null;
  out['dimension'] = hasData ? dimension(task) : ctx.features.legacy ? '2d' : '';
  out['mode'] = hasData ? task.mode : '';
  out['subset'] = task.subset;
  out['organization'] = task.organization?.id ?? null;
  out['target_storage'] = null;
  out['source_storage'] = null;
  out['jobs'] = {
    count: task.jobs.length,
    completed: task.jobs.filter((j) => j.state === 'completed').length,
    validation: task.jobs.filter((j) => j.stage === 'validation').length,
    url: `${ctx.base}/api/jobs?task_id=${task.id}`,
  };
  out['labels'] = { url: `${ctx.base}/api/labels?task_id=${task.id}` };
  if (!ctx.features.legacy) {
    if (!hasData) out['data'] = null;
    else out['data_cloud_storage_id'] = task.cloudStorageId;
    out['project_name'] = task.projectId === null ? null : `project ${task.projectId}`;
    out['media_type'] = hasData ? mediaType(task) : '';
    out['organization_id'] = task.organization?.id ?? null;
    out['assignee_updated_date'] = null;
    out['validation_mode'] = task.validationMode;
    out['consensus_enabled'] = task.jobs.some((j) => j.type === 'consensus_replica');
  }
  return out;
}

export function jobJson(ctx: SerializeContext, task: EmulatedTask, job: EmulatedJob): Record<string, unknown> {
  const seg = ctx.deployment.segmentOf(job);
  const out: Record<string, unknown> = {
    url: `${ctx.base}/api/jobs/${job.id}`,
    id: job.id,
    task_id: task.id,
    project_id: task.projectId,
    assignee: basicUser(ctx, job.assignee),
    guide_id: null,
    dimension: dimension(task),
    bug_tracker: null,
    status: jobStatus(job),
    stage: job.stage,
    state: job.state,
    mode: task.mode,
    frame_count: seg.frameSet.length,
    start_frame: seg.startFrame,
    stop_frame: seg.stopFrame,
    data_chunk_size: task.chunkSize,
    data_compressed_chunk_type: chunkType(task),
    created_date: cvatDate(job.createdMs),
    updated_date: cvatDate(job.updatedMs),
    issues: { count: 0, url: `${ctx.base}/api/issues?job_id=${job.id}` },
    labels: { url: `${ctx.base}/api/labels?job_id=${job.id}` },
    type: job.type,
    organization: task.organization?.id ?? null,
    target_storage: null,
    source_storage: null,
  };
  if (!ctx.features.legacy) {
    const replicas = job.type === 'annotation' ? task.jobs.filter((j) => j.parentJobId === job.id).length : 0;
    out['task_name'] = task.name;
    out['project_name'] = task.projectId === null ? null : `project ${task.projectId}`;
    out['media_type'] = mediaType(task);
    out['data_original_chunk_type'] = chunkType(task);
    out['assignee_updated_date'] = null;
    out['parent_job_id'] = job.parentJobId;
    out['consensus_replicas'] = replicas;
    out['replicas_count'] = replicas;
  }
  return out;
}

function frameFilter(task: EmulatedTask): string {
  return task.geometry.step > 1 ? `step=${task.geometry.step}` : '';
}

function frameMeta(name: string, width: number, height: number, related: number): Record<string, unknown> {
  return { width, height, name, related_files: related, has_related_context: related > 0 };
}

function metaBase(ctx: SerializeContext, task: EmulatedTask, start: number, stop: number, size: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (ctx.features.chapters) out['chapters'] = task.mediaType === 'video' ? [] : null;
  out['chunk_size'] = task.chunkSize;
  out['size'] = size;
  out['image_quality'] = task.imageQuality;
  out['start_frame'] = start;
  out['stop_frame'] = stop;
  out['frame_filter'] = frameFilter(task);
  return out;
}

export function taskMetaJson(ctx: SerializeContext, task: EmulatedTask): Record<string, unknown> {
  const g = task.geometry;
  const out = metaBase(ctx, task, g.start, g.stop, g.size);
  out['frames'] = task.video
    ? [frameMeta(task.video.path, task.video.width, task.video.height, 0)]
    : task.frames.map((f) => frameMeta(f.name, f.width, f.height, f.related));
  out['deleted_frames'] = [...task.deletedFrames];
  out['included_frames'] = null;
  if (ctx.features.checksumHeaders) out['chunks_updated_date'] = cvatDate(ctx.deployment.taskChunksUpdatedMs(task));
  if (ctx.features.storageInMeta) {
    out['storage'] = task.storage;
    out['cloud_storage_id'] = task.cloudStorageId;
  }
  return out;
}

/** Absolute start/stop of a segment as job meta reports them. */
export function segmentAbsRange(task: EmulatedTask, seg: EmulatedSegment): { start: number; stop: number } {
  return {
    start: relToAbs(task.geometry, seg.startFrame),
    stop: Math.min(relToAbs(task.geometry, seg.stopFrame), task.geometry.stop),
  };
}

export function jobMetaJson(ctx: SerializeContext, task: EmulatedTask, job: EmulatedJob): Record<string, unknown> {
  const seg = ctx.deployment.segmentOf(job);
  const { start, stop } = segmentAbsRange(task, seg);
  const out = metaBase(ctx, task, start, stop, seg.frameSet.length);
  if (task.video) {
    out['frames'] = [frameMeta(task.video.path, task.video.width, task.video.height, 0)];
  } else {
    const included = seg.frames ? new Set(seg.frames) : null;
    const frames: Array<Record<string, unknown>> = [];
    for (let rel = seg.startFrame; rel <= seg.stopFrame; rel++) {
      const f = task.frames[rel];
      if (!f) continue;
      const inSegment = !included || included.has(relToAbs(task.geometry, rel));
      frames.push(frameMeta(inSegment ? f.name : 'placeholder.jpg', f.width, f.height, inSegment ? f.related : 0));
    }
    out['frames'] = frames;
  }
  // views.py job data/meta: the task's deleted frames within the segment (relative frames).
  const segmentFrames = new Set(seg.frameSet.map((abs) => absToRel(task.geometry, abs)));
  out['deleted_frames'] = task.deletedFrames.filter((f) => segmentFrames.has(f));
  out['included_frames'] = seg.frames ? [...seg.frames] : null;
  if (ctx.features.checksumHeaders) out['chunks_updated_date'] = cvatDate(seg.chunksUpdatedMs);
  if (ctx.features.storageInMeta) {
    out['storage'] = task.storage;
    out['cloud_storage_id'] = task.cloudStorageId;
  }
  return out;
}
