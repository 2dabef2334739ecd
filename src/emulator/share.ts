/**
 * The emulated `/home/django/share`: a real directory. Listing like
 * `GET /api/server/share` (one level, dirs first, `{name, type, mime_type}`), path checks,
 * CVAT's related-image layout rules, frame sizes read from image headers, and the
 * sample share that CVAT's CI mounts (copied — tests never write into /work/shared).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

export interface ShareEntry {
  name: string;
  type: 'REG' | 'DIR';
  mime_type: string;
}

export class InvalidShareDirectory extends Error {
  override name = 'InvalidShareDirectory';
}

const MIME_BY_EXT: Record<string, string> = {};
for (const ext of ['jpg', 'jpeg', 'jpe', 'png', 'bmp', 'gif', 'tif', 'tiff', 'webp', 'ppm', 'pgm', 'pbm', 'ico', 'jp2']) MIME_BY_EXT[ext] = 'image';
for (const ext of ['mp4', 'm4v', 'avi', 'mov', 'mkv', 'webm', 'mpg', 'mpeg', 'wmv', 'flv', '3gp', 'ts']) MIME_BY_EXT[ext] = 'video';
for (const ext of ['mp3', 'wav', 'ogg', 'oga', 'flac', 'aac', 'm4a', 'opus']) MIME_BY_EXT[ext] = 'audio';
for (const ext of ['zip', 'tar', 'gz', 'tgz', 'bz2', 'xz', '7z', 'rar']) MIME_BY_EXT[ext] = 'archive';
MIME_BY_EXT['pdf'] = 'pdf';

/** CVAT's `get_mime` categories; zip is reported as "archive"; anything else "unknown". */
export function shareMimeType(name: string): string {
  const ext = path.extname(name).slice(1).toLowerCase();
  return MIME_BY_EXT[ext] ?? 'unknown';
}

function isInside(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/**
 * Resolves a share-relative path, refusing anything that leaves the share (`..`, absolute
 * escapes, symlinks pointing outside). Returns null when it is not inside.
 */
export function resolveInShare(shareDir: string, relative: string): string | null {
  const root = path.resolve(shareDir);
  const cleaned = relative.replace(/^\/+/, '');
  if (cleaned.includes('\0')) return null;
  const candidate = path.resolve(root, cleaned);
  if (!isInside(root, candidate)) return null;
  try {
    const realRoot = fs.realpathSync(root);
    const real = fs.realpathSync(candidate);
    if (!isInside(realRoot, real)) return null;
  } catch {
    // a path that does not exist yet cannot escape through a symlink
  }
  return candidate;
}

/** `GET /api/server/share?directory=&search=`; throws InvalidShareDirectory like CVAT's 400. */
export async function listShare(shareDir: string, directory: string | null, search: string | null): Promise<ShareEntry[]> {
  const dirParam = directory ?? '/';
  const resolved = resolveInShare(shareDir, dirParam);
  const shown = dirParam.replace(/^\//, '');
  if (!resolved) throw new InvalidShareDirectory(`${shown} is an invalid directory`);
  let entries: fs.Dirent[];
  try {
    const stat = await fs.promises.stat(resolved);
    if (!stat.isDirectory()) throw new Error('not a directory');
    entries = await fs.promises.readdir(resolved, { withFileTypes: true });
  } catch {
    throw new InvalidShareDirectory(`${shown} is an invalid directory`);
  }
  const out: ShareEntry[] = [];
  for (const entry of entries) {
    if (search && !entry.name.startsWith(search)) continue;
    let isFile = entry.isFile();
    let isDir = entry.isDirectory();
    if (entry.isSymbolicLink()) {
      try {
        const st = await fs.promises.stat(path.join(resolved, entry.name));
        isFile = st.isFile();
        isDir = st.isDirectory();
      } catch {
        continue;
      }
    }
    if (isFile) out.push({ name: entry.name, type: 'REG', mime_type: shareMimeType(entry.name) });
    else if (isDir) out.push({ name: entry.name, type: 'DIR', mime_type: 'DIR' });
  }
  // CVAT sorts by (type, name): "DIR" < "REG" puts directories first.
  return out.sort((a, b) => (a.type === b.type ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.type < b.type ? -1 : 1));
}

/** Deletes one regular file of the share (control API). */
export async function deleteShareFile(shareDir: string, relative: string): Promise<'deleted' | 'missing' | 'refused'> {
  const resolved = resolveInShare(shareDir, relative);
  if (!resolved || resolved === path.resolve(shareDir)) return 'refused';
  try {
    const st = await fs.promises.lstat(resolved);
    if (!st.isFile() && !st.isSymbolicLink()) return 'refused';
    await fs.promises.unlink(resolved);
    return 'deleted';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
}

/**
 * Context images by CVAT's layout rules (`find_related_images`): 2D `dir/img.png` ↔
 * `dir/related_images/img_png/*`; Supervisely 3D `root/pointcloud/X.pcd` ↔ `root/related_images/X_pcd/*`.
 * Returns share-relative paths, sorted.
 */
export function detectRelatedFiles(shareDir: string, frameName: string): string[] {
  const dir = path.posix.dirname(frameName);
  const base = path.posix.basename(frameName);
  const ext = path.posix.extname(base);
  const stem = base.slice(0, base.length - ext.length);
  const folder = `${stem}_${ext.slice(1)}`;
  const candidates = [path.posix.join(dir, 'related_images', folder)];
  if (path.posix.basename(dir) === 'pointcloud') candidates.push(path.posix.join(path.posix.dirname(dir), 'related_images', folder));
  for (const rel of candidates) {
    const abs = resolveInShare(shareDir, rel);
    if (!abs) continue;
    try {
      const names = fs
        .readdirSync(abs, { withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => e.name);
      if (names.length > 0) return names.sort().map((n) => path.posix.join(rel, n));
    } catch {
      // no such directory: try the next layout
    }
  }
  return [];
}

/** Width/height from a PNG or JPEG header; null for anything else or unreadable files. */
export function readImageSize(file: string): { width: number; height: number } | null {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(65536);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return imageSizeFromBytes(buf.subarray(0, n));
  } catch {
    return null;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function imageSizeFromBytes(buf: Buffer): { width: number; height: number } | null {
  if (buf.length >= 24 && buf.readUInt32BE(0) === 0x89504e47 && buf.toString('latin1', 12, 16) === 'IHDR') {
    return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
  }
  if (buf.length >= 4 && buf[0] === 0xff && buf[1] === 0xd8) {
    let i = 2;
    while (i + 9 < buf.length) {
      if (buf[i] !== 0xff) return null;
      const marker = buf[i + 1] ?? 0;
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        i += 2;
        continue;
      }
      const len = buf.readUInt16BE(i + 2);
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
      i += 2 + len;
    }
  }
  return null;
}

/** Where CVAT's CI sample share lives in this workspace, or null. */
export function sampleShareDir(): string | null {
  const candidates = [
    process.env['CVAT_WARDEN_SAMPLE_SHARE'],
    path.resolve(process.cwd(), '../shared/cvat/v2.73.0/tests/mounted_file_share'),
    fileURLToPath(new URL('../../../shared/cvat/v2.73.0/tests/mounted_file_share', import.meta.url)),
  ];
  for (const dir of candidates) {
    if (dir && fs.existsSync(path.join(dir, 'images'))) return dir;
  }
  return null;
}

/** Copies CVAT's sample share (`tests/mounted_file_share`) into destDir (created if needed). */
export async function copySampleShare(destDir: string): Promise<string> {
  const src = sampleShareDir();
  if (!src) {
    throw new Error('CVAT sample share not found (expected ../shared/cvat/v2.73.0/tests/mounted_file_share, or set CVAT_WARDEN_SAMPLE_SHARE)');
  }
  await fs.promises.mkdir(destDir, { recursive: true });
  await fs.promises.cp(src, destDir, { recursive: true });
  return destDir;
}

function png(width: number, height: number, seed: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc((width * 3 + 1) * height, seed & 0xff);
  for (let y = 0; y < height; y++) raw[y * (width * 3 + 1)] = 0;
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

function jpegStub(width: number, height: number): Buffer {
  // SOI, SOF0 (8 bit, 1 component), EOI: enough for size readers and for chunk builds to read.
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x0b, 0x08, 0, 0, 0, 0, 0x01, 0x01, 0x11, 0x00]);
  sof.writeUInt16BE(height, 5);
  sof.writeUInt16BE(width, 7);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), sof, Buffer.from([0xff, 0xd9])]);
}

/**
 * Writes a small stand-in for the sample share (same paths as the parts the demo uses) when
 * the real one is not available, e.g. for `cvat-warden emulate` outside this workspace.
 */
export async function writeSyntheticShare(destDir: string): Promise<string> {
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 6; i++) files[`images/image_${i}.jpg`] = jpegStub(800, 800);
  const related: Record<number, number[]> = { 0: [30, 31, 33], 1: [30], 2: [32, 33, 34], 3: [] };
  for (let i = 0; i < 4; i++) {
    files[`images/with_related/image_${i}.png`] = png(64 + i * 16, 48, i);
    for (const r of related[i] ?? []) files[`images/with_related/related_images/image_${i}_png/${r}.png`] = png(32, 32, r);
  }
  for (let i = 1; i <= 3; i++) {
    const id = String(i).padStart(6, '0');
    files[`pcd_with_related/pointcloud/${id}.pcd`] = Buffer.from(
      'VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 0\nHEIGHT 1\nPOINTS 0\nDATA ascii\n',
    );
    files[`pcd_with_related/related_images/${id}_pcd/${id}.png`] = png(40, 30, i);
    files[`videos/video_${i}.mp4`] = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypmp42'), Buffer.alloc(4554 - 12, i)]);
  }
  for (const [rel, data] of Object.entries(files)) {
    const abs = path.join(destDir, rel);
    await fs.promises.mkdir(path.dirname(abs), { recursive: true });
    await fs.promises.writeFile(abs, data);
  }
  return destDir;
}

/** The sample share if this workspace has it, else the synthetic stand-in. */
export async function prepareDemoShare(destDir: string): Promise<{ dir: string; source: 'sample' | 'synthetic' }> {
  if (sampleShareDir()) return { dir: await copySampleShare(destDir), source: 'sample' };
  return { dir: await writeSyntheticShare(destDir), source: 'synthetic' };
}
