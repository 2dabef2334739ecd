/**
 * The context images a share task shows, found on the share with CVAT's layout rules
 * (the guard's findRelatedImages). CVAT's share-task backups leave them out on every
 * version — `_write_data`'s SHARE branch writes `self._db_data.images` only (backup.py,
 * cvat#9978) — so the warden adds them in the layout CVAT's importer reads back for a
 * local task: `data/<dir>/related_images/<image>_<ext>/…` (task.py
 * `_find_and_filter_related_images` → utils/dataset_manifest/utils.py `find_related_images`).
 */
import path from 'node:path';
import { DirLister, findRelatedImages, isPointCloudName, nodeFs, type GuardTask } from '../guard/index.js';

export interface ContextImages {
  /** Share-relative paths, distinct. */
  paths: string[];
  /** Frames with fewer context images on the share than CVAT counts (first 20). */
  short: Array<{ frame: string; expected: number; found: number }>;
  /** Frames CVAT says have context images. */
  framesWithContext: number;
}

/** Frames of the task that have context images, per CVAT's data meta (`frames[].related_files`). */
export function framesWithContext(task: GuardTask): number {
  if (task.isVideo) return 0;
  return (task.meta.frames ?? []).filter((f) => (f.related_files ?? 0) > 0).length;
}

export async function contextImagesOf(task: GuardTask, shareDir: string): Promise<ContextImages> {
  const root = path.resolve(shareDir);
  const lister = new DirLister(nodeFs, (rel) => path.join(root, rel));
  const paths = new Set<string>();
  const short: ContextImages['short'] = [];
  let withContext = 0;
  if (task.isVideo) return { paths: [], short, framesWithContext: 0 };
  for (const frame of task.meta.frames ?? []) {
    const expected = frame.related_files ?? 0;
    if (expected === 0) continue;
    withContext++;
    const threeD = task.dimension === '3d' || isPointCloudName(frame.name);
    const found = await findRelatedImages(frame.name.replace(/^\/+/, ''), threeD, lister);
    for (const p of found) paths.add(p);
    if (found.length < expected && short.length < 20) short.push({ frame: frame.name, expected, found: found.length });
  }
  return { paths: [...paths], short, framesWithContext: withContext };
}
