/**
 * Writes a new zip from a verified CVAT backup: every entry copied, `task.json`'s data
 * section optionally patched (the storage repair, restorability.ts), and share files added
 * at `data/<share-relative path>` (the context images CVAT leaves out, cvat#9978).
 *
 * It writes only `dest` (a temp name the caller owns, created exclusively) and reads only the source zip and
 * files that resolve — symlinks followed — inside the share root; anything else is refused.
 * Media is stored, not deflated again (JPEG/PNG/video do not compress; CVAT's importer reads
 * stored entries as Python's zipfile does any other).
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { listEntries, openZip } from './zip-read.js';
import yazl from 'yazl';
import { OwnedFile } from '../state/owned-file.js';

export interface RewritePlan {
  /** Returns the new data section of task.json. */
  patchData?: (data: Record<string, unknown>) => Record<string, unknown>;
  /** Share-relative paths to add as `data/<path>`. */
  addFromShare?: { shareDir: string; paths: readonly string[] };
  /** Most bytes all added files may hold together. */
  maxAddedBytes: number;
}

export class RewriteRefused extends Error {
  override name = 'RewriteRefused';
}

const COMPRESSIBLE = /\.(json|jsonl|txt|xml|csv|md)$/i;

/** The share file's real path, or a refusal when it is not a regular file inside the real share root. */
export async function shareFileInside(shareDir: string, rel: string): Promise<{ abs: string; size: number }> {
  const clean = rel.replace(/^\/+/, '');
  const root = await fs.realpath(path.resolve(shareDir));
  const lexical = path.resolve(root, clean);
  if (clean === '' || path.isAbsolute(clean) || !lexical.startsWith(`${root}${path.sep}`))
    throw new RewriteRefused(`${JSON.stringify(rel.slice(0, 200))} is not a path inside the share`);
  const real = await fs.realpath(lexical).catch(() => {
    throw new RewriteRefused(`share file ${clean} is missing`);
  });
  if (!real.startsWith(`${root}${path.sep}`)) throw new RewriteRefused(`share file ${clean} resolves outside the share (a symlink?): not copied`);
  const st = await fs.stat(real);
  if (!st.isFile()) throw new RewriteRefused(`share file ${clean} is not a regular file`);
  return { abs: real, size: st.size };
}

function entryStream(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream))));
}

async function entryBuffer(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await entryStream(zip, entry)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Copies `src` to `dest` with the plan applied. `dest` is created exclusively through
 * src/state/owned-file.ts (an existing file or link there is refused, EEXIST, and left
 * alone) and returned to the caller, who moves it into place or discards it; after a
 * failure it is gone.
 */
export async function rewriteBackup(src: string, dest: string, plan: RewritePlan): Promise<{ added: number; file: OwnedFile }> {
  const adds = await resolveAdds(plan);
  const zip = await openZip(src);
  try {
    const entries = await listEntries(zip);
    const file = await OwnedFile.create(dest);
    const out = new yazl.ZipFile();
    const written = file.fill(out.outputStream as unknown as Readable, { maxBytes: outputBound(entries, adds.bytes) });
    // A rejected write must not go unhandled while entries are still being added.
    written.catch(() => undefined);
    try {
      const copied = await copyEntries(zip, entries, out, plan);
      let added = 0;
      for (const a of adds.files) {
        if (copied.has(a.name)) continue; // already there: not added twice
        out.addReadStream(createReadStream(a.abs), a.name, { compress: false });
        added++;
      }
      out.end();
      await written;
      return { added, file };
    } catch (error) {
      (out.outputStream as unknown as Readable).destroy();
      await file.discard();
      throw error;
    }
  } finally {
    zip.close();
  }
}

/** Resolves and sizes every file to add first: a refusal leaves nothing half-written. */
async function resolveAdds(plan: RewritePlan): Promise<{ files: Array<{ abs: string; name: string }>; bytes: number }> {
  const files: Array<{ abs: string; name: string }> = [];
  let bytes = 0;
  const seen = new Set<string>();
  for (const rel of plan.addFromShare?.paths ?? []) {
    const name = `data/${rel.replace(/^\/+/, '')}`;
    if (seen.has(name)) continue;
    seen.add(name);
    const { abs, size } = await shareFileInside(plan.addFromShare?.shareDir ?? '', rel);
    bytes += size;
    if (bytes > plan.maxAddedBytes) throw new RewriteRefused(`the files to add hold more than ${plan.maxAddedBytes} bytes`);
    files.push({ abs, name });
  }
  return { files, bytes };
}

/**
 * The most bytes the new zip can hold: every entry at its uncompressed size (media are
 * stored; deflate grows text by well under 1 %), its headers, the added files, and room
 * for a patched task.json. The write stops beyond it.
 */
function outputBound(entries: readonly yauzl.Entry[], addedBytes: number): number {
  let bound = addedBytes + 1024 * 1024;
  for (const e of entries) bound += Math.ceil(e.uncompressedSize * 1.01) + 512 + 2 * e.fileName.length;
  return bound;
}

/** Copies every entry (task.json patched when the plan says so) into `out`; returns the names written. */
async function copyEntries(zip: yauzl.ZipFile, entries: readonly yauzl.Entry[], out: yazl.ZipFile, plan: RewritePlan): Promise<Set<string>> {
  const names = new Set<string>();
  for (const entry of entries) {
    const name = entry.fileName;
    if (name.endsWith('/')) continue;
    names.add(name);
    if (name === 'task.json' && plan.patchData) {
      const json = JSON.parse((await entryBuffer(zip, entry)).toString('utf8')) as { data?: Record<string, unknown> };
      json.data = plan.patchData(json.data ?? {});
      out.addBuffer(Buffer.from(JSON.stringify(json)), name, { compress: true });
      continue;
    }
    // Sequential: yazl pulls each read stream in turn, so one entry is open at a time.
    const stream = await entryStream(zip, entry);
    const done = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    out.addReadStream(stream, name, {
      compress: COMPRESSIBLE.test(name),
      size: entry.uncompressedSize,
      mtime: entry.getLastModDate(),
    });
    await done;
  }
  return names;
}
