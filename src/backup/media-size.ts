/**
 * The size a task's backup should have, from its share files: CVAT's API reports no media
 * sizes (2.73 schema: DataMetaRead.frames has width, height and name only), but the share
 * is on this host when --share-dir is set. A backup holds those files (`data/<path>`,
 * backup.py `_write_data`) plus task.json, annotations.json and the manifest.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

const GiB = 1024 ** 3;
/** More files than this are not stat'ed one by one for a size estimate. */
const MAX_FILES = 200_000;
const STATS_AT_ONCE = 32;

/** Sum of the share files' sizes; undefined when any is missing, escapes the share, or there are too many to count. */
export async function shareMediaBytes(shareDir: string, names: readonly string[]): Promise<number | undefined> {
  if (names.length > MAX_FILES) return undefined;
  const root = path.resolve(shareDir);
  let total = 0;
  for (let i = 0; i < names.length; i += STATS_AT_ONCE) {
    const sizes = await Promise.all(
      names.slice(i, i + STATS_AT_ONCE).map(async (name) => {
        const file = path.resolve(root, name.replace(/^\/+/, ''));
        if (!file.startsWith(`${root}${path.sep}`)) return undefined;
        return fs.stat(file).then(
          (s) => s.size,
          () => undefined,
        );
      }),
    );
    for (const size of sizes) {
      if (size === undefined) return undefined;
      total += size;
    }
  }
  return total;
}

/**
 * The largest backup accepted for a task with this much share media: the media plus a
 * quarter, at least 1 GiB more — room for annotations (JSON that compresses ~10:1) and
 * zip overhead, while an endless download stops near the task's real size.
 */
export function backupCapFor(mediaBytes: number): number {
  return mediaBytes + Math.max(GiB, Math.ceil(mediaBytes / 4));
}
