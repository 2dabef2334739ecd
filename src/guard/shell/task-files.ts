/**
 * Turns one task into index entries: every frame image (honeypot placeholders repeat
 * a real frame's path and stay as extra references), the single video, and the
 * context images found by CVAT's layout rules. Unsafe names are rejected here and
 * never reach the index.
 */
import type { GuardFs } from './fsio.js';
import { compileTask } from '../core/mapping.js';
import { checkName, dirOf, type ShareRootResolver } from './paths.js';
import { findRelatedImages, isPointCloudName, type DirLister } from './related.js';
import type { IndexedTask, ShareIndex } from '../core/share-index.js';
import type { GuardTask, IndexWarning, RejectedName } from '../types.js';

/** Name CVAT puts in job meta for frames outside a GT job's segment. */
export const PLACEHOLDER_NAME = 'placeholder.jpg';

export interface TaskFilesContext {
  fs: GuardFs;
  resolver: ShareRootResolver;
  lister: DirLister;
  /** Accept `storage: 'unknown'` tasks whose first frame exists under the share root. */
  includeUnknownStorage: boolean;
  /** Share-relative directories never expected (the vault): names under them are left out. */
  ignoredPrefixes?: readonly string[];
}

function isIgnored(rel: string, prefixes: readonly string[] | undefined): boolean {
  return prefixes !== undefined && prefixes.some((p) => rel === p || rel.startsWith(`${p}/`));
}

export interface AddTaskResult {
  indexed: IndexedTask | null;
  /** Slots created by this task (never stat-ed yet). */
  created: number[];
  skipped?: string;
}

/** Cheap fingerprint of what decides the task's file list; equal → only the job list needs refreshing. */
export function taskSignature(task: GuardTask): string {
  const frames = task.meta.frames ?? [];
  let related = 0;
  for (const frame of frames) related += frame.related_files ?? 0;
  return [
    task.storage,
    task.isVideo ? 'v' : 'i',
    task.dimension ?? '',
    frames.length,
    frames[0]?.name ?? '',
    frames[frames.length - 1]?.name ?? '',
    related,
    task.meta.start_frame,
    task.meta.frame_filter,
    task.meta.chunks_updated_date ?? '',
  ].join('|');
}

async function mayBeShare(task: GuardTask, ctx: TaskFilesContext): Promise<boolean> {
  for (const frame of task.meta.frames ?? []) {
    const verdict = checkName(frame.name);
    if (!verdict.ok || frame.name === PLACEHOLDER_NAME) continue;
    if (!(await ctx.resolver.dirInside(dirOf(verdict.rel)))) return false;
    return (await ctx.fs.stat(ctx.resolver.abs(verdict.rel)).catch(() => null)) !== null;
  }
  return false;
}

async function runLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

type Reject = (name: string, reason: RejectedName['reason']) => void;
type Frames = NonNullable<GuardTask['meta']['frames']>;

/** Share-relative paths of the frames (undefined for placeholders and rejected names) and their directories. */
function frameRels(task: GuardTask, frames: Frames, reject: Reject): { rels: Array<string | undefined>; dirs: Set<string> } {
  const rels = new Array<string | undefined>(task.isVideo ? Math.min(1, frames.length) : frames.length);
  const dirs = new Set<string>();
  for (let i = 0; i < rels.length; i++) {
    const name = frames[i]!.name;
    if (name === PLACEHOLDER_NAME) continue;
    const verdict = checkName(name);
    if (!verdict.ok) {
      reject(name, verdict.reason);
      continue;
    }
    rels[i] = verdict.rel;
    dirs.add(dirOf(verdict.rel));
  }
  return { rels, dirs };
}

interface RelatedPass {
  task: GuardTask;
  frames: Frames;
  rels: ReadonlyArray<string | undefined>;
  withRelated: readonly number[];
  ctx: TaskFilesContext;
  add: (rel: string, frame: number, role: 'related') => void;
  reject: Reject;
  warnings: IndexWarning[];
}

/** The context images of frames that have any, found by the layout rules; a count other than CVAT's is a warning. */
async function addRelatedImages({ task, frames, rels, withRelated, ctx, add, reject, warnings }: RelatedPass): Promise<void> {
  const threeDTask = task.dimension === '3d';
  await runLimited(withRelated, 16, async (i) => {
    const rel = rels[i]!;
    const expected = frames[i]!.related_files ?? 0;
    const found = await findRelatedImages(rel, threeDTask || isPointCloudName(rel), ctx.lister);
    let accepted = 0;
    for (const related of found) {
      if (!(await ctx.resolver.dirInside(dirOf(related)))) {
        reject(related, 'symlink_escape');
        continue;
      }
      add(related, i, 'related');
      accepted++;
    }
    if (accepted !== expected) {
      warnings.push({
        taskId: task.taskId,
        kind: 'related_count_mismatch',
        message: `frame ${i} (${rel}): CVAT counts ${expected} context image(s), found ${accepted} by the layout rules`,
        path: rel,
        expected,
        found: accepted,
      });
    }
  });
}

export async function addTaskToIndex(index: ShareIndex, task: GuardTask, ctx: TaskFilesContext): Promise<AddTaskResult> {
  const warnings: IndexWarning[] = [];
  if (task.storage !== 'share') {
    if (task.storage !== 'unknown' || !ctx.includeUnknownStorage) return { indexed: null, created: [], skipped: `storage is ${task.storage}` };
    if (!(await mayBeShare(task, ctx))) return { indexed: null, created: [], skipped: 'storage unknown and frames not found under the share root' };
    warnings.push({ taskId: task.taskId, kind: 'assumed_share', message: 'storage unknown; frames exist under the share root, guarded as a share task' });
  }

  const frames = task.meta.frames ?? [];
  const rejected: RejectedName[] = [];
  const rejectedNames = new Set<string>();
  const reject: Reject = (name, reason) => {
    if (rejectedNames.has(name)) return;
    rejectedNames.add(name);
    rejected.push({ taskId: task.taskId, name, reason });
  };

  // Lexical pass, then one realpath per distinct directory.
  const { rels, dirs } = frameRels(task, frames, reject);
  const inside = new Map<string, boolean>();
  await runLimited([...dirs], 64, async (dir) => {
    inside.set(dir, await ctx.resolver.dirInside(dir));
  });

  const fileIds: number[] = [];
  const refFrames: number[] = [];
  const created: number[] = [];
  const distinct = new Set<number>();
  const add = (rel: string, frame: number, role: 'frame' | 'video' | 'related') => {
    if (isIgnored(rel, ctx.ignoredPrefixes)) return;
    const { f, created: isNew } = index.addRef(rel, task.taskId, frame, role);
    if (isNew) created.push(f);
    fileIds.push(f);
    refFrames.push(frame);
    distinct.add(f);
  };

  const withRelated: number[] = [];
  for (let i = 0; i < rels.length; i++) {
    const rel = rels[i];
    if (rel === undefined) continue;
    if (!inside.get(dirOf(rel))) {
      reject(frames[i]!.name, 'symlink_escape');
      continue;
    }
    add(rel, task.isVideo ? -1 : i, task.isVideo ? 'video' : 'frame');
    if (!task.isVideo && (frames[i]!.related_files ?? 0) > 0) withRelated.push(i);
  }

  await addRelatedImages({ task, frames, rels, withRelated, ctx, add, reject, warnings });

  if (frames.length === 0) warnings.push({ taskId: task.taskId, kind: 'no_frames', message: 'task meta lists no frames' });

  const indexed: IndexedTask = {
    mapping: compileTask(task),
    signature: taskSignature(task),
    fileIds: Int32Array.from(fileIds),
    frames: Int32Array.from(refFrames),
    distinctFiles: distinct.size,
    rejected,
    warnings,
  };
  index.tasks.set(task.taskId, indexed);
  return { indexed, created };
}
