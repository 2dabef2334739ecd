/**
 * The file-system steps every durable write of the warden is built from: read a file that
 * may be absent, write a buffer whole, fsync a directory, and write a file atomically
 * (temp file in the same directory, fsync, rename, directory fsync). Nothing outside
 * src/state/ writes state files; the ledger, the guard's baseline and its open problems go
 * through here.
 */
import { constants, writeSync } from 'node:fs';
import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';

/** State files hold task paths and chunk history: readable by the service's user only. */
export const STATE_FILE_MODE = 0o600;

export function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** The file's bytes, or undefined when it does not exist (any other error is thrown). */
export async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * fsync a directory, so a rename inside it survives a crash. Some file systems refuse
 * fsync on a directory (and Windows has none); the rename itself is still atomic then.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // refused: nothing more can be done, and the rename stays atomic
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Writes all of `buf` at `position` (a short write is continued, a zero-byte one is an error). */
export async function writeAll(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error('short write');
    done += bytesWritten;
  }
}

/**
 * What to write: bytes, text, or a synchronous producer that hands its pieces to `write`
 * (each piece is written before `write` returns, so one reused buffer is enough, and the
 * producer captures one consistent state without holding a copy of it).
 */
export type AtomicContent = Buffer | string | ((write: (piece: Buffer) => void) => void);

export interface AtomicWriteOptions {
  /** fsync the file and its directory (default true). Only tests turn this off. */
  durable?: boolean;
  /** Runs once the temp file is complete, before the rename (e.g. moves the old file aside). */
  beforeRename?: () => Promise<void>;
  /**
   * The temp file's name (default `<file>.tmp`), created exclusively ('wx': never written
   * through something already there) when given — the vault names its own temp files.
   */
  tmp?: string;
}

/**
 * Writes `file` atomically: a temp file (mode 0600), fsync, rename, directory fsync. A
 * crash leaves the old file or the new one, never a mix; the temp file is removed when a
 * step fails. One writer per file: callers hold the state directory's lock or are its
 * only writer.
 */
const REUSED_TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

export async function writeFileAtomic(file: string, content: AtomicContent, options: AtomicWriteOptions = {}): Promise<void> {
  const durable = options.durable ?? true;
  const tmp = options.tmp ?? `${file}.tmp`;
  // Removed on failure only once this call created it: an exclusive open that finds the
  // name taken must leave what is there alone.
  let created = false;
  try {
    // The default temp name is reused after a crash, so it may exist: truncated, but never
    // followed if someone made it a symlink (O_NOFOLLOW: ELOOP). A given name is created fresh.
    const handle = await open(tmp, options.tmp === undefined ? REUSED_TEMP_FLAGS : 'wx', STATE_FILE_MODE);
    created = true;
    try {
      if (typeof content === 'function') {
        content((piece) => {
          for (let off = 0; off < piece.length;) off += writeSync(handle.fd, piece, off, piece.length - off);
        });
      } else await writeAll(handle, typeof content === 'string' ? Buffer.from(content, 'utf8') : content, 0);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await options.beforeRename?.();
    await rename(tmp, file);
  } catch (error) {
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    throw error;
  }
  if (durable) await fsyncDir(dirOf(file));
}

function dirOf(file: string): string {
  const cut = file.lastIndexOf('/');
  return cut <= 0 ? (cut === 0 ? '/' : '.') : file.slice(0, cut);
}
