/**
 * Related (context) images of a frame, derived with CVAT's layout rules
 * (`utils/dataset_manifest/utils.py`, `_detect_related_images_2D/_3D`). The API gives
 * only a per-frame count (`frames[].related_files`), so we list the candidate
 * directories once per frame that has context images and compare the counts.
 *
 *   2D          dir/img.png            ↔ dir/related_images/img_png/*
 *   Supervisely pointcloud/X.pcd       ↔ related_images/X_pcd/*   (sibling of pointcloud/)
 *   KITTI raw   velodyne_points/data/X ↔ IMAGE_NN/data/X.*
 *   Custom 1    dir/X.pcd              + dir/X.<img>
 *   Custom 2    X/X.pcd                + X/*.<img>
 */
import type { Dirent } from 'node:fs';
import type { GuardFs } from './fsio.js';
import { baseOf, dirOf, joinRel } from './paths.js';

/** Extensions Python's `mimetypes` maps to image/* (minus svg), compared case-insensitively. */
const IMAGE_EXTENSIONS = new Set([
  'jpg',
  'jpeg',
  'jpe',
  'jfif',
  'png',
  'bmp',
  'gif',
  'tif',
  'tiff',
  'webp',
  'ico',
  'heic',
  'heif',
  'avif',
  'jp2',
  'j2k',
  'jpx',
  'pbm',
  'pgm',
  'ppm',
  'pnm',
  'ras',
  'rgb',
  'xbm',
  'xpm',
  'xwd',
  'ief',
  'dng',
  'cr2',
  'nef',
]);

export function isImageName(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot > 0 && IMAGE_EXTENSIONS.has(name.slice(dot + 1).toLowerCase());
}

function stemOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

/** `img.png` → `img_png` (CVAT: "_".join(basename.rsplit(".", 1))). */
function underscoreName(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? name : `${name.slice(0, dot)}_${name.slice(dot + 1)}`;
}

export function isPointCloudName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.endsWith('.pcd') || lower.endsWith('.bin');
}

/**
 * Lists directories at most once per indexing pass. A directory that cannot be read
 * counts as empty (and is remembered as such); errors never escape.
 */
export class DirLister {
  readonly #fs: GuardFs;
  readonly #abs: (rel: string) => string;
  readonly #cache = new Map<string, Promise<Dirent[] | null>>();

  constructor(fs: GuardFs, abs: (rel: string) => string) {
    this.#fs = fs;
    this.#abs = abs;
  }

  list(relDir: string): Promise<Dirent[] | null> {
    let entries = this.#cache.get(relDir);
    if (!entries) {
      entries = this.#fs.readdir(this.#abs(relDir)).catch(() => null);
      this.#cache.set(relDir, entries);
    }
    return entries;
  }

  async files(relDir: string): Promise<string[]> {
    const entries = await this.list(relDir);
    return entries ? entries.filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name) : [];
  }

  async dirs(relDir: string): Promise<string[]> {
    const entries = await this.list(relDir);
    return entries ? entries.filter((e) => e.isDirectory() || e.isSymbolicLink()).map((e) => e.name) : [];
  }
}

/** `a/b/..` resolved lexically within the share ('' = root); undefined when it would leave the root. */
function parentRel(relDir: string): string | undefined {
  return relDir === '' ? undefined : dirOf(relDir);
}

/**
 * Share-relative paths of the context images of one frame (sorted, distinct).
 * `threeD` follows the task's dimension, or the frame's extension when unknown.
 */
export async function findRelatedImages(frameRel: string, threeD: boolean, lister: DirLister): Promise<string[]> {
  const dir = dirOf(frameRel);
  const name = baseOf(frameRel);
  const found = new Set<string>();
  const addImages = async (relDir: string, filter?: (file: string) => boolean) => {
    for (const file of await lister.files(relDir)) {
      if (isImageName(file) && (!filter || filter(file))) found.add(joinRel(relDir, file));
    }
  };

  if (!threeD) {
    await addImages(joinRel(joinRel(dir, 'related_images'), underscoreName(name)));
    return [...found].sort();
  }

  const stem = stemOf(name);
  const dirName = baseOf(dir);
  if (dir !== '' && dirName === stem) {
    // Custom 2: X/X.pcd + every other image in X/.
    await addImages(dir, (file) => file !== name);
  } else {
    // Custom 1: X.pcd + X.<img> side by side.
    await addImages(dir, (file) => file !== name && stemOf(file) === stem);
  }
  // Supervisely: <dir>/../related_images/X_pcd/*.
  const parent = parentRel(dir);
  if (parent !== undefined) await addImages(joinRel(joinRel(parent, 'related_images'), underscoreName(name)));
  // KITTI raw: velodyne_points/data/X.bin ↔ <dir>/../../image_NN/data/X.*
  if (dir === 'velodyne_points/data' || dir.endsWith('/velodyne_points/data')) {
    const grand = parent === undefined ? undefined : parentRel(parent);
    if (grand !== undefined) {
      for (const sub of await lister.dirs(grand)) {
        if (!/image_\d/i.test(sub)) continue;
        await addImages(joinRel(joinRel(grand, sub), 'data'), (file) => stemOf(file) === stem);
      }
    }
  }
  return [...found].sort();
}
