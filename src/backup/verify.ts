/**
 * Checks a downloaded CVAT task backup before it may replace an older one: the zip
 * opens, every entry reads back with its CRC-32, `task.json` parses, and every media
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

export interface BackupVerdict {
  ok: boolean;
  problem?: string;
  entries: number;
  mediaFiles: number;
  /** Expected media files not in the zip (first 20). */
  missing: string[];
}

/** `data/<name>` for each media file of the task (images, or the one video). */
export function expectedMediaEntries(frameNames: readonly string[], isVideo: boolean): string[] {
  const names = isVideo ? frameNames.slice(0, 1) : frameNames;
  return [...new Set(names.map((n) => `data/${n.replace(/^\/+/, '')}`))];
}

function open(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false, strictFileNames: true, validateEntrySizes: true }, (err, zip) => {
      if (err) reject(err);
      else resolve(zip);
    }),
  );
}

function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, keep: boolean): Promise<{ crc: number; data?: Buffer }> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err) {
        reject(err);
        return;
      }
      let crc = 0;
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        crc = zlib.crc32(chunk, crc);
        if (keep) chunks.push(chunk);
      });
      stream.on('error', reject);
      stream.on('end', () => resolve(keep ? { crc, data: Buffer.concat(chunks) } : { crc }));
    });
  });
}

export async function verifyBackup(file: string, expected: readonly string[], limits: { maxEntries?: number } = {}): Promise<BackupVerdict> {
  const verdict: BackupVerdict = { ok: false, entries: 0, mediaFiles: 0, missing: [] };
  let zip: yauzl.ZipFile;
  try {
    zip = await open(file);
  } catch (error) {
    return { ...verdict, problem: `not a readable zip: ${(error as Error).message}` };
  }
  const maxEntries = limits.maxEntries ?? expected.length * 2 + 10_000;
  const seen = new Set<string>();
  let taskJson: unknown;
  try {
    if (zip.entryCount > maxEntries)
      return { ...verdict, problem: `the zip has ${zip.entryCount} entries, more than a backup of this task can hold (${maxEntries})` };
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        verdict.entries++;
        const isDir = entry.fileName.endsWith('/');
        if (isDir) {
          zip.readEntry();
          return;
        }
        const isTaskJson = entry.fileName === 'task.json';
        if (isTaskJson && entry.uncompressedSize > 64 * 1024 * 1024) {
          reject(new Error('task.json is implausibly large'));
          return;
        }
        readEntry(zip, entry, isTaskJson).then(({ crc, data }) => {
          if (crc !== entry.crc32) {
            reject(new Error(`${entry.fileName}: CRC mismatch (damaged download)`));
            return;
          }
          seen.add(entry.fileName);
          if (data) taskJson = JSON.parse(data.toString('utf8'));
          zip.readEntry();
        }, reject);
      });
      zip.readEntry();
    });
  } catch (error) {
    return { ...verdict, problem: `the zip is damaged: ${(error as Error).message}` };
  } finally {
    zip.close();
  }
  if (taskJson === undefined) return { ...verdict, problem: 'task.json is missing: not a CVAT task backup' };
  if (!taskJson || typeof taskJson !== 'object' || !('data' in taskJson))
    return { ...verdict, problem: 'task.json has no data section: not a CVAT task backup' };
  let missing = 0;
  for (const name of expected) {
    if (seen.has(name)) verdict.mediaFiles++;
    else if (++missing <= 20) verdict.missing.push(name);
  }
  if (verdict.missing.length) return { ...verdict, problem: `${missing} media file(s) the task references are not in the backup, e.g. ${verdict.missing[0]}` };
  return { ...verdict, ok: true };
}
