/**
 * Ready-made deployments: the demo (share-backed tasks over a copy of CVAT's CI sample
 * share plus local tasks, two users, one organisation) and synthetic ones for tests and
 * benchmarks (many video tasks with overlap, segment sizes that are not multiples of the
 * chunk size, GT jobs, consensus replicas, sized to a target chunk count).
 */
import { chunkCount, generateSegmentParams } from './segments.js';
import type { EmulatorAuth, OrganizationSpec, TaskSpec } from './spec.js';

export const DEMO_CREDENTIALS = {
  username: 'admin',
  password: 'admin-password',
  /** Personal access token of `admin` (Authorization: Bearer …). */
  accessToken: 'demo-token-not-secret',
  /** A plain annotator in org `demo` (worker role): may not read data it is not assigned to. */
  annotator: { username: 'annotator', password: 'annotator-password' },
} as const;

export function demoAuth(): EmulatorAuth {
  return {
    users: [
      {
        id: 1,
        username: DEMO_CREDENTIALS.username,
        password: DEMO_CREDENTIALS.password,
        isAdmin: true,
        accessTokens: [DEMO_CREDENTIALS.accessToken],
        orgRoles: { demo: 'owner' },
      },
      {
        id: 2,
        username: DEMO_CREDENTIALS.annotator.username,
        password: DEMO_CREDENTIALS.annotator.password,
        orgRoles: { demo: 'worker' },
      },
    ],
  };
}

export interface DemoDeployment {
  shareDir: string;
  tasks: TaskSpec[];
  organizations: OrganizationSpec[];
  auth: EmulatorAuth;
}

/**
 * Tasks over a share laid out like CVAT's `tests/mounted_file_share` (use `copySampleShare` or
 * `prepareDemoShare` to create it): images with a GT job, 2D images with context images,
 * a video, point clouds with context images; plus local tasks (a long video with overlap
 * and consensus replicas, images with start/step, a task without data).
 */
export function demoDeployment(shareDir: string): DemoDeployment {
  const images = Array.from({ length: 6 }, (_, i) => `images/image_${i}.jpg`);
  const related = Array.from({ length: 4 }, (_, i) => `images/with_related/image_${i}.png`);
  const clouds = [1, 2, 3].map((i) => `pcd_with_related/pointcloud/${String(i).padStart(6, '0')}.pcd`);
  return {
    shareDir,
    organizations: [{ id: 1, slug: 'demo', name: 'Demo organization', owner: 'admin' }],
    auth: demoAuth(),
    tasks: [
      { id: 1, name: 'share: images with GT', storage: 'share', frames: images, chunkSize: 2, segmentSize: 4, groundTruthFrames: [1, 4], organization: 'demo' },
      {
        id: 2,
        name: 'share: images with context images',
        storage: 'share',
        frames: related,
        relatedFiles: 'detect',
        chunkSize: 2,
        segmentSize: 2,
        organization: 'demo',
      },
      {
        id: 3,
        name: 'share: video',
        storage: 'share',
        mediaType: 'video',
        video: 'videos/video_1.mp4',
        size: 3,
        chunkSize: 2,
        frameWidth: 800,
        frameHeight: 800,
        organization: 'demo',
      },
      {
        id: 4,
        name: 'share: point clouds',
        storage: 'share',
        mediaType: 'pointcloud',
        frames: clouds,
        relatedFiles: 'detect',
        chunkSize: 2,
        organization: 'demo',
      },
      { id: 5, name: 'local: long video, overlap 5, consensus', mediaType: 'video', size: 300, chunkSize: 10, segmentSize: 64, consensusReplicas: 2 },
      {
        id: 6,
        name: 'local: images from frame 10, step 2',
        size: 40,
        startFrame: 10,
        frameStep: 2,
        chunkSize: 8,
        segmentSize: 15,
        groundTruthFrames: [0, 5, 17, 33],
        organization: 'demo',
        jobAssignees: ['annotator', null, null],
        jobStates: ['in progress', 'new', 'completed'],
      },
      { id: 7, name: 'local: created, no data yet', noData: true, organization: 'demo' },
    ],
  };
}

export interface SyntheticOptions {
  /** Number of tasks. Default 4. */
  tasks?: number;
  /** Default 'video'. */
  mediaType?: 'video' | 'image';
  /** Task frames per task. Default 500 (ignored when targetChunks is given). */
  framesPerTask?: number;
  /** Default 36. */
  chunkSize?: number;
  /** Default 100 (deliberately not a multiple of the chunk size). */
  segmentSize?: number;
  /** Default: CVAT's (5 for video, 0 for images). */
  overlap?: number;
  /** GT frames per task, spread evenly. Default 0 (no GT job). */
  groundTruthFrames?: number;
  /** Replicas per annotation job. Default 0. */
  consensusReplicas?: number;
  /** Size the tasks so the UI chunk count (countUiChunks) is this; exact when reachable, else just above. */
  targetChunks?: number;
  /** Id of the first task. Default 1. */
  firstId?: number;
  organization?: string;
  /** Per-task build time override. */
  buildTimeMs?: number;
}

/** UI chunk count of specs (what `state.uiChunkKeys().size` will be for a 2.20+ emulator). */
export function countUiChunks(specs: readonly TaskSpec[]): number {
  let total = 0;
  for (const spec of specs) {
    if (spec.noData) continue;
    const size = spec.size ?? spec.frames?.length ?? 0;
    const cs = spec.chunkSize ?? 36;
    const mode = spec.mode ?? (spec.mediaType === 'video' ? 'interpolation' : 'annotation');
    const plan = generateSegmentParams(size, spec.segmentSize ?? 0, spec.overlap, mode);
    for (const seg of plan.segments) total += chunkCount(seg.stopFrame - seg.startFrame + 1, cs);
    total += chunkCount(new Set(spec.groundTruthFrames ?? []).size, cs);
  }
  return total;
}

export function syntheticDeployment(options: SyntheticOptions = {}): TaskSpec[] {
  const n = Math.max(1, options.tasks ?? 4);
  const make = (id: number, frames: number): TaskSpec => {
    const gt = Math.min(options.groundTruthFrames ?? 0, frames);
    const spec: TaskSpec = {
      id,
      name: `synthetic ${options.mediaType ?? 'video'} ${id}`,
      mediaType: options.mediaType ?? 'video',
      size: frames,
      chunkSize: options.chunkSize ?? 36,
      segmentSize: options.segmentSize ?? 100,
    };
    if (options.overlap !== undefined) spec.overlap = options.overlap;
    if (gt > 0) spec.groundTruthFrames = Array.from({ length: gt }, (_, k) => Math.floor((k * frames) / gt));
    if (options.consensusReplicas) spec.consensusReplicas = options.consensusReplicas;
    if (options.organization) spec.organization = options.organization;
    if (options.buildTimeMs !== undefined) spec.buildTimeMs = options.buildTimeMs;
    return spec;
  };
  const firstId = options.firstId ?? 1;
  const build = (frames: number[]): TaskSpec[] => frames.map((f, k) => make(firstId + k, f));
  if (options.targetChunks === undefined) return build(Array.from({ length: n }, () => options.framesPerTask ?? 500));

  const target = options.targetChunks;
  const perTask = (frames: number): number => countUiChunks([make(firstId, frames)]);
  let f = 1;
  while (n * perTask(f) < target) f = Math.max(f + 1, Math.floor(f * 1.5));
  let lo = 1;
  let hi = f;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (n * perTask(mid) >= target) hi = mid;
    else lo = mid + 1;
  }
  const frames = Array.from({ length: n }, () => lo);
  const rest = (n - 1) * perTask(lo);
  for (let last = lo; last >= 1; last--) {
    if (rest + perTask(last) === target) {
      frames[n - 1] = last;
      break;
    }
    if (rest + perTask(last) < target) break;
  }
  return build(frames);
}
