/**
 * Checks a downloaded CVAT task backup before it may replace an older one: the zip
 * opens, its central directory is sane (checked before anything is inflated), every entry
 * reads back with its CRC-32, `task.json` parses, and every media
 * file the task references is there at `data/<share-relative path>` (backup.py
 * `_write_files`: arcname = data/ + relpath(file, SHARE_ROOT)).
 *
 * yauzl reads the zip: it parses the central directory, refuses truncated or
 * inconsistent archives and entry names that escape (`..`, absolute), and streams each
 * entry with size checks — hand-written zip parsing would have to get all of that right
 * (ZIP64 for big backups included), and adm-zip/jszip load the whole archive into memory.
 */
import zlib from 'node:zlib';
import yauzl from 'yauzl';
import { listEntries, openZip } from './zip-read.js';
import type { BackupFacts } from './restorability.js';

export interface BackupVerdict {
  ok: boolean;
  problem?: string;
  entries: number;
  mediaFiles: number;
  /** Expected media files not in the zip (first 20). */
  missing: string[];
  /** Bytes inflated by the CRC pass: 0 when the central directory alone rejected the zip. */
  inflatedBytes: number;
  /** Expected context images found (share tasks' `related_images`, cvat#9978). */
  relatedFiles: number;
  /** What decides whether CVAT imports it (restorability.ts); set when the zip read through. */
  facts?: BackupFacts;
}

/** The manifest CVAT writes beside the media (backup.py MEDIA_MANIFEST_FILENAME) and its index. */
const MANIFEST = 'data/manifest.jsonl';
const MANIFEST_INDEX = 'data/index.json';

export interface VerifyLimits {
  /** Most entries accepted. @default twice the expected media + 10,000 */
  maxEntries?: number;
  /** Most uncompressed bytes the central directory may declare in all. @default 1 TiB */
  maxTotalBytes?: number;
}

/**
 * Deflate cannot do better than ~1032:1; real backup content (JPEG, video, JSON) stays
 * far below 100:1. An entry over 1 MiB claiming more than 1000:1 is a zip bomb.
 */
const MAX_RATIO = 1000;
const RATIO_FLOOR_BYTES = 1024 * 1024;
const TASK_JSON_MAX_BYTES = 64 * 1024 * 1024;

/** `data/<name>` for each media file of the task (images, or the one video). */
export function expectedMediaEntries(frameNames: readonly string[], isVideo: boolean): string[] {
  const names = isVideo ? frameNames.slice(0, 1) : frameNames;
  return [...new Set(names.map((n) => `data/${n.replace(/^\/+/, '')}`))];
}

function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, keep: boolean): Promise<{ crc: number; bytes: number; lines: number; data?: Buffer }> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err) {
        reject(err);
        return;
      }
      let crc = 0;
      let bytes = 0;
      let lines = 0;
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        crc = zlib.crc32(chunk, crc);
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
        if (keep) chunks.push(chunk);
      });
      stream.on('error', reject);
      stream.on('end', () => resolve(keep ? { crc, bytes, lines, data: Buffer.concat(chunks) } : { crc, bytes, lines }));
    });
  });
}

/** What the central directory alone says is wrong, before a byte is inflated; undefined when nothing. */
function directoryProblem(
  entries: readonly yauzl.Entry[],
  expected: readonly string[],
  related: readonly string[],
  maxTotal: number,
): { problem?: string; missing: string[]; found: number; relatedFound: number } {
  const names = new Set<string>();
  let total = 0;
  for (const entry of entries) {
    const name = entry.fileName;
    // yauzl's strictFileNames already refused `..`, absolute and backslash names; control characters are ours to refuse.
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f]/.test(name))
      return { problem: `entry name ${JSON.stringify(name.slice(0, 200))} holds control characters`, missing: [], found: 0, relatedFound: 0 };
    if (names.has(name)) return { problem: `entry ${name.slice(0, 200)} appears twice`, missing: [], found: 0, relatedFound: 0 };
    names.add(name);
    total += entry.uncompressedSize;
    if (total > maxTotal)
      return { problem: `the entries declare more than ${maxTotal} bytes uncompressed (the largest backup accepted)`, missing: [], found: 0, relatedFound: 0 };
    const ratio = entry.uncompressedSize / Math.max(1, entry.compressedSize);
    if (entry.uncompressedSize > RATIO_FLOOR_BYTES && ratio > MAX_RATIO)
      return {
        problem: `${name.slice(0, 200)} declares ${entry.uncompressedSize} bytes from ${entry.compressedSize} compressed (ratio ${Math.round(ratio)}:1 > ${MAX_RATIO}:1): a zip bomb, not a backup`,
        missing: [],
        found: 0,
        relatedFound: 0,
      };
    if (name === 'task.json' && entry.uncompressedSize > TASK_JSON_MAX_BYTES)
      return { problem: 'task.json is implausibly large', missing: [], found: 0, relatedFound: 0 };
  }
  if (!names.has('task.json')) return { problem: 'task.json is missing: not a CVAT task backup', missing: [], found: 0, relatedFound: 0 };
  const missing: string[] = [];
  let absent = 0;
  let found = 0;
  for (const name of expected) {
    if (names.has(name)) found++;
    else if (++absent <= 20) missing.push(name);
  }
  if (absent) return { problem: `${absent} media file(s) the task references are not in the backup, e.g. ${missing[0]}`, missing, found, relatedFound: 0 };
  let relatedFound = 0;
  for (const name of related) {
    if (names.has(name)) relatedFound++;
    else if (++absent <= 20) missing.push(name);
  }
  if (absent)
    return {
      problem: `${absent} context image(s) the task shows are not in the backup, e.g. ${missing[0]} (CVAT leaves them out of share-task backups, cvat#9978)`,
      missing,
      found,
      relatedFound,
    };
  return { missing, found, relatedFound };
}

/**
 * Checks the central directory first (count, names, task.json and every media entry there,
 * declared sizes and ratios), then inflates each entry once to check its CRC-32; yauzl's
 * validateEntrySizes stops an entry that inflates past its declared size.
 */
export async function verifyBackup(
  file: string,
  expected: readonly string[],
  limits: VerifyLimits = {},
  /** `data/<path>` of each context image the task shows (expectedRelatedEntries). */
  expectedRelated: readonly string[] = [],
): Promise<BackupVerdict> {
  const verdict: BackupVerdict = { ok: false, entries: 0, mediaFiles: 0, missing: [], inflatedBytes: 0, relatedFiles: 0 };
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(file);
  } catch (error) {
    return { ...verdict, problem: `not a readable zip: ${(error as Error).message}` };
  }
  const maxEntries = limits.maxEntries ?? (expected.length + expectedRelated.length) * 2 + 10_000;
  let taskJson: unknown;
  let manifestLines: number | undefined;
  try {
    if (zip.entryCount > maxEntries)
      return { ...verdict, problem: `the zip has ${zip.entryCount} entries, more than a backup of this task can hold (${maxEntries})` };
    let entries: yauzl.Entry[];
    try {
      entries = await listEntries(zip);
    } catch (error) {
      return { ...verdict, problem: `the zip is damaged: ${(error as Error).message}` };
    }
    verdict.entries = entries.length;
    const dir = directoryProblem(entries, expected, expectedRelated, limits.maxTotalBytes ?? 1024 ** 4);
    verdict.missing = dir.missing;
    if (dir.problem !== undefined) return { ...verdict, problem: dir.problem };
    try {
      for (const entry of entries) {
        if (entry.fileName.endsWith('/')) continue;
        const isTaskJson = entry.fileName === 'task.json';
        const { crc, data, bytes, lines } = await readEntry(zip, entry, isTaskJson);
        verdict.inflatedBytes += bytes;
        if (crc !== entry.crc32) throw new Error(`${entry.fileName}: CRC mismatch (damaged download)`);
        if (data) taskJson = JSON.parse(data.toString('utf8'));
        if (entry.fileName === MANIFEST) manifestLines = lines;
      }
    } catch (error) {
      return { ...verdict, problem: `the zip is damaged: ${(error as Error).message}` };
    }
    if (!taskJson || typeof taskJson !== 'object' || !('data' in taskJson))
      return { ...verdict, problem: 'task.json has no data section: not a CVAT task backup' };
    const facts = factsOf(taskJson.data, entries, manifestLines);
    return { ...verdict, mediaFiles: dir.found, relatedFiles: dir.relatedFound, facts, ok: true };
  } finally {
    zip.close();
  }
}

/** `data/<path>` of each context image (share-relative paths, as backup.py names entries). */
export function expectedRelatedEntries(relatedPaths: readonly string[]): string[] {
  return [...new Set(relatedPaths.map((n) => `data/${n.replace(/^\/+/, '')}`))];
}

function factsOf(data: unknown, entries: readonly yauzl.Entry[], manifestLines: number | undefined): BackupFacts {
  const d = (data && typeof data === 'object' ? data : {}) as { storage?: unknown; start_frame?: unknown; frame_filter?: unknown; chunk_type?: unknown };
  let media = 0;
  let video = false;
  for (const e of entries) {
    const name = e.fileName;
    if (!name.startsWith('data/') || name.endsWith('/') || name === MANIFEST || name === MANIFEST_INDEX) continue;
    if (name.split('/').includes('related_images')) continue;
    media++;
    if (/\.(mp4|avi|mov|mkv|webm|mpe?g|m4v|wmv|flv|3gp)$/i.test(name)) video = true;
  }
  return {
    storage: typeof d.storage === 'string' ? d.storage : undefined,
    startFrame: typeof d.start_frame === 'number' ? d.start_frame : undefined,
    frameFilter: typeof d.frame_filter === 'string' ? d.frame_filter : undefined,
    // manifest.jsonl: a version line and a type line, then one line per frame (utils/dataset_manifest).
    manifestEntries: manifestLines === undefined ? undefined : Math.max(0, manifestLines - 2),
    mediaEntries: media,
    isVideo: video || d.chunk_type === 'video',
  };
}
