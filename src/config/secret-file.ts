/**
 * Reads a secret file (`--token-file`, `--api-key-file`, `--password-file`,
 * `--webhook-secret-file`) the way systemd and Kubernetes read what they are pointed
 * at: bounded. Opened non-blocking (a FIFO with no writer returns at once instead of
 * hanging the start), judged by fstat on the descriptor actually opened (a device such
 * as /dev/zero or /dev/urandom, a FIFO, a socket or a directory is refused before one
 * byte is read), and read up to a small cap. Symlinks are followed: Docker and
 * Kubernetes secrets are symlinks into their own volumes. Synchronous, like the rest of
 * configuration: a regular file's read returns at once.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** A token, key, password or webhook secret is far below this; a bigger file is not one. */
export const SECRET_FILE_MAX_BYTES = 64 * 1024;

export type SecretRead = { value: string } | { problem: string };

function kindOf(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The trimmed content of a secret file, or the problem with it (never the content). */
export function readSecretFile(path: string, what: string): SecretRead {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    return { problem: `${what} file ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { problem: `${what} file ${path} is ${kindOf(st)}, not a regular file: point it at a file holding only the secret` };
    if (st.size > SECRET_FILE_MAX_BYTES)
      return { problem: `${what} file ${path} is ${st.size} bytes, more than a secret can be (${SECRET_FILE_MAX_BYTES} bytes at most)` };
    // Read to the cap + 1 whatever fstat said: the file may grow while it is read.
    const buf = Buffer.alloc(SECRET_FILE_MAX_BYTES + 1);
    let length = 0;
    for (let n = -1; n !== 0 && length < buf.length; length += n) n = readSync(fd, buf, length, buf.length - length, null);
    if (length > SECRET_FILE_MAX_BYTES) return { problem: `${what} file ${path} is larger than ${SECRET_FILE_MAX_BYTES} bytes: not a secret` };
    const value = buf.toString('utf8', 0, length).trim();
    if (!value) return { problem: `${what} file ${path} is empty` };
    return { value };
  } catch (error) {
    return { problem: `${what} file ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  } finally {
    closeSync(fd);
  }
}
