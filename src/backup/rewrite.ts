/**
 * Writes a new zip from a verified CVAT backup: every entry copied, `task.json`'s data
 * section optionally patched (the storage repair, restorability.ts), and share files added
 * at `data/<share-relative path>` (the context images CVAT leaves out, cvat#9978).
 *
 * It writes only `dest` (a temp name the caller owns) and reads only the source zip and
 * files that resolve — symlinks followed — inside the share root; anything else is refused.
 * Media is stored, not deflated again (JPEG/PNG/video do not compress; CVAT's importer reads
 * stored entries as Python's zipfile does any other).
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import yazl from 'yazl';

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

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false, strictFileNames: true, validateEntrySizes: true }, (err, zip) =>
      err ? reject(err) : resolve(zip),
    ),
  );
}

function entryStream(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream))));
}

async function entryBuffer(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await entryStream(zip, entry)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Copies `src` to `dest` with the plan applied; `dest` is removed on any failure. */
export async function rewriteBackup(src: string, dest: string, plan: RewritePlan): Promise<{ added: number }> {
  // Resolve and size every added file first: a refusal leaves nothing half-written.
  const adds: Array<{ abs: string; name: string }> = [];
  let addedBytes = 0;
  const seen = new Set<string>();
  for (const rel of plan.addFromShare?.paths ?? []) {
    const name = `data/${rel.replace(/^\/+/, '')}`;
    if (seen.has(name)) continue;
    seen.add(name);
    const { abs, size } = await shareFileInside(plan.addFromShare?.shareDir ?? '', rel);
    addedBytes += size;
    if (addedBytes > plan.maxAddedBytes) throw new RewriteRefused(`the files to add hold more than ${plan.maxAddedBytes} bytes`);
    adds.push({ abs, name });
  }
  const zip = await openZip(src);
  // 'wx': an existing file at dest is never truncated — and never removed below, since we did not create it.
  const handle = await fs.open(dest, 'wx', 0o600).catch((error: unknown) => {
    zip.close();
    throw error;
  });
  const out = new yazl.ZipFile();
  const written = pipeline(out.outputStream, handle.createWriteStream());
  // A rejected write must not go unhandled while entries are still being added.
  written.catch(() => undefined);
  try {
    const entries: yauzl.Entry[] = await new Promise((resolve, reject) => {
      const list: yauzl.Entry[] = [];
      zip.on('error', reject);
      zip.on('end', () => resolve(list));
      zip.on('entry', (e: yauzl.Entry) => {
        list.push(e);
        zip.readEntry();
      });
      zip.readEntry();
    });
    for (const entry of entries) {
      const name = entry.fileName;
      if (name.endsWith('/')) continue;
      if (seen.has(name)) seen.delete(name); // already there: not added twice
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
    let added = 0;
    for (const a of adds) {
      if (!seen.has(a.name)) continue;
      out.addReadStream(createReadStream(a.abs), a.name, { compress: false });
      added++;
    }
    out.end();
    await written;
    return { added };
  } catch (error) {
    (out.outputStream as unknown as import('node:stream').Readable).destroy();
    await fs.rm(dest, { force: true });
    throw error;
  } finally {
    zip.close();
  }
}
