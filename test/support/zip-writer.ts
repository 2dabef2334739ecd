/**
 * A minimal zip writer for hostile archives yazl will not make: entries whose declared
 * sizes lie, or whose deflate stream is built by hand (a zip bomb of 1 GiB of zeros in
 * ~1 MiB, built in milliseconds by repeating one sync-flushed deflate block).
 */
import zlib from 'node:zlib';

export interface RawEntry {
  name: string;
  /** Stored (method 0) bytes, or deflate (method 8) bytes with the sizes the directory declares. */
  stored?: Buffer;
  deflated?: { data: Buffer; uncompressedSize: number; crc32: number };
}

export function writeZip(entries: readonly RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const method = e.stored ? 0 : 8;
    const data = e.stored ?? e.deflated?.data ?? Buffer.alloc(0);
    const crc = e.stored ? zlib.crc32(e.stored) : (e.deflated?.crc32 ?? 0);
    const size = e.stored ? e.stored.length : (e.deflated?.uncompressedSize ?? 0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x0800, 8);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt32LE(crc >>> 0, 16);
    cd.writeUInt32LE(data.length, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, name);
    parts.push(local, name, data);
    offset += local.length + name.length + data.length;
  }
  const cdBuf = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBuf, end]);
}

/**
 * `blocks` × 4 MiB of zeros as one raw deflate stream: a sync-flushed block decodes to
 * zeros wherever it stands, so repeating it and closing with an empty final fixed block
 * (0x03 0x00) makes the stream without deflating gigabytes.
 */
export function deflatedZeros(blocks: number): { data: Buffer; uncompressedSize: number; crc32: number } {
  const size = 4 * 1024 * 1024;
  const zeros = Buffer.alloc(size);
  const block = zlib.deflateRawSync(zeros, { level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  let crc = 0;
  for (let i = 0; i < blocks; i++) crc = zlib.crc32(zeros, crc);
  const data = Buffer.concat([...Array.from({ length: blocks }, () => block), Buffer.from([0x03, 0x00])]);
  return { data, uncompressedSize: blocks * size, crc32: crc };
}
