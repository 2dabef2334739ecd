/**
 * The parts of CVAT's API responses the warden relies on, checked where they enter.
 * Schemas are loose (`.loose()`: unknown fields pass) because CVAT adds fields every
 * release; they are strict about the fields we compute with. A record that fails is
 * reported with its id and skipped by the caller, never allowed to crash a run.
 */
import { z } from 'zod';

const id = z.number().int().nonnegative();
const frame = z.number().int().nonnegative();

export const AboutSchema = z
  .object({
    name: z.string().optional(),
    version: z.string(),
  })
  .loose();
export type About = z.infer<typeof AboutSchema>;

export const TaskSchema = z
  .object({
    id,
    name: z.string().optional(),
    size: z.number().int().nonnegative().nullable().optional(),
    data: z.number().int().nullable().optional(),
    data_chunk_size: z.number().int().positive().nullable().optional(),
    mode: z.string().optional(),
    media_type: z.string().optional(),
    dimension: z.string().nullable().optional(),
    project_id: z.number().int().nullable().optional(),
    organization: z.number().int().nullable().optional(),
    segment_size: z.number().int().nullable().optional(),
    overlap: z.number().int().nullable().optional(),
    status: z.string().optional(),
    updated_date: z.string().optional(),
    jobs: z.object({ count: z.number().int().nonnegative() }).loose().optional(),
    data_cloud_storage_id: z.number().int().nullable().optional(),
  })
  .loose();
export type Task = z.infer<typeof TaskSchema>;

export const JOB_TYPES = ['annotation', 'ground_truth', 'consensus_replica'] as const;

export const JobSchema = z
  .object({
    id,
    task_id: id,
    type: z.string().default('annotation'),
    parent_job_id: z.number().int().nullable().optional(),
    start_frame: frame,
    stop_frame: frame,
    // absent before CVAT 2.4.9; the planner falls back to stop - start + 1
    frame_count: z.number().int().nonnegative().optional(),
    data_chunk_size: z.number().int().positive().nullable().optional(),
    state: z.string().optional(),
    stage: z.string().optional(),
    status: z.string().optional(),
    project_id: z.number().int().nullable().optional(),
    organization: z.number().int().nullable().optional(),
    updated_date: z.string().optional(),
  })
  .loose()
  .refine((j) => j.stop_frame >= j.start_frame, { error: 'stop_frame is before start_frame' });
export type Job = z.infer<typeof JobSchema>;

export const FrameMetaSchema = z
  .object({
    name: z.string(),
    width: z.number().optional(),
    height: z.number().optional(),
    related_files: z.number().int().nonnegative().optional(),
    has_related_context: z.boolean().optional(),
  })
  .loose();
export type FrameMeta = z.infer<typeof FrameMetaSchema>;

/**
 * Whether FrameMetaSchema accepts `value` as it is (its parse would return an equal copy):
 * data meta lists every frame of a task, and zod's parse builds a new object per frame
 * (~420 MB allocated and ~0.3 s of the main thread at a 1,000,000-file share, profiled).
 * A frame this does not vouch for goes through the schema, whose verdict and issues stand;
 * test/cvat-frames-fast-path.test.ts holds the two to the same verdicts.
 */
export function isPlainFrame(value: unknown): value is FrameMeta {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const frame = value as Record<string, unknown>;
  const { width, height, related_files: related, has_related_context: hasRelated } = frame;
  return (
    typeof frame['name'] === 'string' &&
    (width === undefined || (typeof width === 'number' && Number.isFinite(width))) &&
    (height === undefined || (typeof height === 'number' && Number.isFinite(height))) &&
    (related === undefined || (typeof related === 'number' && Number.isSafeInteger(related) && related >= 0)) &&
    (hasRelated === undefined || typeof hasRelated === 'boolean')
  );
}

/** Frames reported at most, like summarizeIssues' three issues: a meta of a million bad frames is one failure. */
const FRAME_ISSUES_MAX = 3;

/** `frames` of data meta: the records kept as CVAT sent them where isPlainFrame vouches for them, else FrameMetaSchema's. */
const FramesSchema = z
  .array(z.unknown())
  .superRefine((frames, ctx) => {
    let failed = 0;
    for (let i = 0; i < frames.length && failed < FRAME_ISSUES_MAX; i++) {
      if (isPlainFrame(frames[i])) continue;
      const parsed = FrameMetaSchema.safeParse(frames[i]);
      if (parsed.success) {
        frames[i] = parsed.data;
        continue;
      }
      failed++;
      for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: [i, ...issue.path] });
    }
  })
  .transform((frames) => frames as FrameMeta[]);

export const DataMetaSchema = z
  .object({
    chunk_size: z.number().int().positive().nullable().optional(),
    size: z.number().int().nonnegative(),
    start_frame: frame,
    stop_frame: frame,
    frame_filter: z.string().default(''),
    frames: FramesSchema.nullable().default([]),
    deleted_frames: z.array(frame).default([]),
    included_frames: z.array(frame).nullable().optional(),
    chunks_updated_date: z.string().optional(),
    storage: z.enum(['local', 'share', 'cloud_storage']).optional(),
    cloud_storage_id: z.number().int().nullable().optional(),
  })
  .loose();
export type DataMeta = z.infer<typeof DataMetaSchema>;

export const PageSchema = z
  .object({
    count: z.number().int().nonnegative(),
    next: z.string().nullable().optional(),
    results: z.array(z.unknown()),
  })
  .loose();

/** The `step=N` of a frame filter; 1 when absent. */
export function frameStep(frameFilter: string | undefined): number {
  const match = /step\s*=\s*(\d+)/.exec(frameFilter ?? '');
  const step = match ? Number(match[1]) : 1;
  return step > 0 ? step : 1;
}

/** First line of a zod error, prefixed with the field path: for "task 7 skipped: …" messages. */
export function summarizeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}
