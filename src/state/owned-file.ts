/**
 * A file this process created and can prove it still holds: the primitive for writes that
 * stream (a backup download, a rewritten zip) and stay a temp file across several steps
 * (written, verified, moved into place or dropped).
 *
 * - Created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600): never written through
 *   a name someone placed first — a file, or a symlink, dangling or not (EEXIST).
 * - Filled from a stream within a byte bound (the bound is the caller's, and required).
 * - Moved into place with fsync, rename and a directory fsync, only while its name still
 *   holds the inode it created.
 * - Discarded — on failure, or after use — only while its name still holds that inode: a
 *   file or a link put there in the meantime is left alone.
 *
 * The file stays open until it is moved or discarded, so its inode cannot be freed and
 * reused by a file put at its name meanwhile: (device, inode) identifies it for that long.
 * The check narrows, but cannot close, the window between it and the rename or unlink;
 * callers keep their temp files in a 0700 directory of their own (backup/store.ts).
 */
import { constants } from 'node:fs';
import { lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncDir, STATE_FILE_MODE, writeAll } from './files.js';

const EXCLUSIVE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export interface FillOptions {
  /** Bytes the file may hold; more is an error (`tooLarge`), and the write stops there. */
  maxBytes: number;
  /** The error for a stream longer than maxBytes (default: a plain Error naming the bound). */
  tooLarge?: (bytes: number) => Error;
  /** Stages between the source and the file (e.g. a free-space check); an error in one stops the write. */
  through?: Transform[];
}

export class OwnedFile implements AsyncDisposable {
  readonly path: string;
  readonly #identity: { dev: number; ino: number };
  #handle: FileHandle | undefined;
  #filled = false;
  #gone = false;

  private constructor(path: string, handle: FileHandle, identity: { dev: number; ino: number }) {
    this.path = path;
    this.#handle = handle;
    this.#identity = identity;
  }

  /** Creates `path` exclusively (0600 by default); EEXIST when anything is there, and that is left as it was. */
  static async create(path: string, mode: number = STATE_FILE_MODE): Promise<OwnedFile> {
    const handle = await open(path, EXCLUSIVE_FLAGS, mode);
    try {
      const st = await handle.stat();
      return new OwnedFile(path, handle, { dev: st.dev, ino: st.ino });
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(path).catch(() => undefined); // just created by this call: ours
      throw error;
    }
  }

  /**
   * Streams `source` (through `options.through`) into the file, at most `maxBytes`. Once
   * per file. On an error the partial file stays until `discard()`.
   */
  async fill(source: Readable, options: FillOptions): Promise<number> {
    const handle = this.#handle;
    if (!handle || this.#filled) throw new Error(`${this.path} was already filled, moved or discarded`);
    this.#filled = true;
    let bytes = 0;
    const bound = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        if (bytes > options.maxBytes) done(options.tooLarge?.(bytes) ?? new Error(`more than ${options.maxBytes} bytes: write stopped`));
        else done(null, chunk);
      },
    });
    // Written through our own handle, which stays open (and the inode ours) until the file is moved or discarded.
    let position = 0;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        writeAll(handle, chunk, position).then(() => {
          position += chunk.length;
          done();
        }, done);
      },
    });
    await pipeline([source, ...(options.through ?? []), bound, sink]);
    return bytes;
  }

  /** Whether the name still holds the file this process created (not another file, not a symlink). */
  async isMine(): Promise<boolean> {
    if (this.#gone) return false;
    const st = await lstat(this.path).catch(() => undefined);
    return st !== undefined && st.isFile() && st.dev === this.#identity.dev && st.ino === this.#identity.ino;
  }

  /**
   * fsync, rename to `target` and fsync the target's directory: the bytes are on disk
   * before the name is. Refused (nothing renamed) when the name no longer holds this file.
   */
  async moveInto(target: string): Promise<void> {
    const handle = this.#handle;
    if (!handle || !(await this.isMine())) throw new Error(`${this.path} is no longer the file this process wrote: not moved into ${target}`);
    await handle.sync();
    await rename(this.path, target);
    this.#gone = true;
    await this.#close();
    await fsyncDir(dirname(target));
  }

  /** Removes the file, only while its name still holds it, and closes it. Idempotent; never throws for a file already gone. */
  async discard(): Promise<void> {
    if (await this.isMine()) await unlink(this.path).catch(() => undefined);
    this.#gone = true;
    await this.#close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.discard();
  }

  async #close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
  }
}
