/**
 * The share root's own watch (inotify mode): one non-recursive `fs.watch` on the root
 * notices top-level directories appearing or vanishing (renames included) and the root
 * itself going. The directories that hold files have their own watches (DirWatchers).
 *
 * This was chokidar at depth 0, which lists and stats every top-level entry when it starts,
 * to report later changes the guard does not use (files, initial adds): with 10,000
 * top-level directories ~0.45 s of the main thread and as much on libuv's pool before the
 * guard was ready (profiled at 1,000,000 share files). Here nothing is read at start; each
 * changed name costs one stat when it changes.
 *
 * Events are gathered per turn of the event loop (a burst of renames is told apart once
 * per name) and told apart by what is there now: a directory is `addDir`, anything else
 * `unlinkDir` (the handler then looks only at the watched directories under that name, so
 * a top-level file costs nothing more). The root itself is handed to `onRoot` to check
 * (gone, unmounted, or another directory now at its path) when it is no longer a readable
 * directory, and when the kernel reports the watched directory itself moved or deleted:
 * libuv names such an event after the root's own base name (and a top-level entry of that
 * name only costs a check).
 */
import path from 'node:path';
import type { DirWatcher, GuardFs } from './fsio.js';

export interface RootWatchHandlers {
  /** A top-level directory appeared or vanished. */
  onTopLevel: (name: string, event: 'addDir' | 'unlinkDir') => void;
  /** The root itself may have gone or been replaced: check it. */
  onRoot: () => void;
  onError: (error: Error) => void;
}

/**
 * Watches `root` (absolute); throws what `fs.watch` throws (ENOENT, ENOSPC…). The returned
 * watcher's `close()` also drops events not told apart yet.
 */
export function watchShareRoot(root: string, fs: Pick<GuardFs, 'watch' | 'accessibleDir'>, handlers: RootWatchHandlers): { close(): void } {
  let pending = new Set<string>();
  /** An event without a name, or named after the root: the root itself changed. */
  let rootEvent = false;
  let scheduled = false;
  let closed = false;
  const rootName = path.basename(root);

  const sort = async (names: Set<string>, aboutRoot: boolean): Promise<void> => {
    if (!(await fs.accessibleDir(root))) {
      if (!closed) handlers.onRoot();
      return;
    }
    if (aboutRoot && !closed) handlers.onRoot();
    for (const name of names) {
      const isDir = await fs.accessibleDir(`${root}/${name}`);
      if (closed) return;
      handlers.onTopLevel(name, isDir ? 'addDir' : 'unlinkDir');
    }
  };

  const watcher: DirWatcher = fs.watch(
    root,
    (_eventType, filename) => {
      if (closed) return;
      if (filename) pending.add(filename);
      if (!filename || filename === rootName) rootEvent = true;
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        const names = pending;
        const aboutRoot = rootEvent;
        pending = new Set();
        rootEvent = false;
        if (!closed) sort(names, aboutRoot).catch((error: unknown) => handlers.onError(error instanceof Error ? error : new Error(String(error))));
      });
    },
    { persistent: false },
  );
  watcher.on('error', (error) => {
    if (!closed) handlers.onError(error);
  });
  return {
    close() {
      if (closed) return;
      closed = true;
      pending.clear();
      try {
        watcher.close();
      } catch {
        // already closed
      }
    },
  };
}
