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
 * a top-level file costs nothing more). When the root itself is no longer a readable
 * directory the root is reported gone (''), whatever the event was.
 */
import type { DirWatcher, GuardFs } from './fsio.js';

export interface RootWatchHandlers {
  /** A top-level directory appeared or vanished ('' = the root itself). */
  onTopLevel: (name: string, event: 'addDir' | 'unlinkDir') => void;
  onError: (error: Error) => void;
}

/**
 * Watches `root` (absolute); throws what `fs.watch` throws (ENOENT, ENOSPC…). The returned
 * watcher's `close()` also drops events not told apart yet.
 */
export function watchShareRoot(root: string, fs: Pick<GuardFs, 'watch' | 'accessibleDir'>, handlers: RootWatchHandlers): { close(): void } {
  let pending = new Set<string>();
  let scheduled = false;
  let closed = false;

  const sort = async (names: Set<string>): Promise<void> => {
    if (!(await fs.accessibleDir(root))) {
      if (!closed) handlers.onTopLevel('', 'unlinkDir');
      return;
    }
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
      // No name: the kernel did not say which entry (or the root itself changed); the root check still runs.
      if (filename) pending.add(filename);
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        const names = pending;
        pending = new Set();
        if (!closed) sort(names).catch((error: unknown) => handlers.onError(error instanceof Error ? error : new Error(String(error))));
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
