/** File-system steps that make a write survive a crash, shared by the ledger and the guard's state files. */
import { open, type FileHandle } from 'node:fs/promises';

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
