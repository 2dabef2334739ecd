/**
 * Synthetic media bodies. Imageset chunks and context images are real (stored) ZIP
 * archives with one entry per frame, video chunks are mp4-shaped (ftyp/free/mdat boxes),
 * previews and frames are JPEG/PNG-shaped. A text "descriptor" near the start names the
 * cache key, the frames, the segment version and the source fingerprints, so the first
 * 1000 bytes — and with them CVAT's X-Checksum — change whenever the content would.
 * Bodies are rendered on demand from a small descriptor (no per-item buffers kept).
 */
import zlib from 'node:zlib';

export type BodyFormat = 'zip' | 'mp4' | 'jpeg' | 'png';

export interface BodyDescriptor {
  format: BodyFormat;
  /** Approximate total size in bytes. */
  bytes: number;
  /** Text embedded at the start (key, frames, version, source fingerprints). */
  descriptor: string;
  /** ZIP entry names (one per frame / related image); ignored by other formats. */
  entries: string[];
}

export const MIME: Record<BodyFormat, string> = {
  zip: 'application/zip',
  mp4: 'video/mp4',
  jpeg: 'image/jpeg',
  png: 'image/png',
};

let filler: Buffer | undefined;

/** 1 MiB of deterministic pseudo-random bytes (xorshift32), shared by every body. */
function fillerBytes(length: number): Buffer {
  if (!filler) {
    filler = Buffer.alloc(1 << 20);
    let x = 0x9e3779b9;
    for (let i = 0; i < filler.length; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      filler.writeUInt32LE(x >>> 0, i);
    }
  }
  if (length <= filler.length) return filler.subarray(0, Math.max(0, length));
  const out = Buffer.alloc(length);
  for (let off = 0; off < length; off += filler.length) filler.copy(out, off, 0, Math.min(filler.length, length - off));
  return out;
}

/** CVAT's `_get_chunk_checksum`: crc32(data[:1000], crc32(str(len(data)))) as a decimal string. */
export function cvatChecksum(body: Buffer): string {
  const seed = zlib.crc32(String(body.length));
  return String(zlib.crc32(body.subarray(0, 1000), seed));
}

function zip(files: Array<{ name: string; data: Buffer }>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const file of files) {
    const name = Buffer.from(file.name, 'utf8');
    const crc = zlib.crc32(file.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(file.data.length, 18);
    local.writeUInt32LE(file.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(file.data.length, 20);
    central.writeUInt32LE(file.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, file.data);
    centrals.push(central, name);
    offset += 30 + name.length + file.data.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}

function box(type: string, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + payload.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, payload]);
}

export function renderBody(d: BodyDescriptor): Buffer {
  const text = Buffer.from(d.descriptor, 'utf8');
  switch (d.format) {
    case 'zip': {
      const names = ['cvat-emulator.txt', ...d.entries];
      const overhead = names.reduce((n, name) => n + 76 + Buffer.byteLength(name), 22) + text.length;
      const per = d.entries.length ? Math.max(1, Math.floor((d.bytes - overhead) / d.entries.length)) : 0;
      return zip([{ name: 'cvat-emulator.txt', data: text }, ...d.entries.map((name) => ({ name, data: fillerBytes(per) }))]);
    }
    case 'mp4': {
      const ftyp = box('ftyp', Buffer.from('isom\0\0\x02\0isomiso2avc1mp41', 'latin1'));
      const free = box('free', text);
      return Buffer.concat([ftyp, free, box('mdat', fillerBytes(Math.max(0, d.bytes - ftyp.length - free.length - 8)))]);
    }
    case 'jpeg': {
      const comment = text.subarray(0, 65000);
      const com = Buffer.alloc(4);
      com.writeUInt16BE(0xfffe, 0);
      com.writeUInt16BE(comment.length + 2, 2);
      const rest = Math.max(0, d.bytes - comment.length - 8);
      return Buffer.concat([Buffer.from([0xff, 0xd8]), com, comment, fillerBytes(rest), Buffer.from([0xff, 0xd9])]);
    }
    case 'png': {
      const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      return Buffer.concat([sig, box('tEXt', text), fillerBytes(Math.max(0, d.bytes - text.length - 16))]);
    }
  }
}
