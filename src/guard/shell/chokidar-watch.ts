/**
 * The two places where chokidar serves the guard better than raw fs.watch:
 *  - the share root itself, depth 0 with files ignored (one watch, a readdir of the
 *    root only): notices the root disappearing and top-level directory renames;
 *  - polling for SMALL network shares (inotify cannot see other NFS/SMB clients):
 *    chokidar's stat polling over the expected files only.
 * Large network shares get neither: scans only.
 */
import chokidar, { type FSWatcher } from 'chokidar';
import path from 'node:path';

export interface RootWatchHandlers {
  /** A top-level directory appeared or vanished ('' = the root itself). */
  onTopLevel: (name: string, event: 'addDir' | 'unlinkDir') => void;
  onError: (error: Error) => void;
}

/** Resolves once chokidar has read the root (events before that could be lost). */
export function whenReady(watcher: FSWatcher, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    watcher.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export function watchShareRoot(root: string, handlers: RootWatchHandlers): FSWatcher {
  const watcher = chokidar.watch(root, {
    depth: 0,
    ignoreInitial: true,
    persistent: false,
    // Files at the top level are not our business; directories are.
    ignored: (_p: string, stats?: { isFile(): boolean }) => stats?.isFile() ?? false,
  });
  const relName = (p: string) => {
    const rel = path.relative(root, p);
    return rel === '' ? '' : rel.split(path.sep)[0]!;
  };
  watcher.on('addDir', (p: string) => handlers.onTopLevel(relName(p), 'addDir'));
  watcher.on('unlinkDir', (p: string) => handlers.onTopLevel(relName(p), 'unlinkDir'));
  watcher.on('error', (error: unknown) => handlers.onError(error instanceof Error ? error : new Error(String(error))));
  return watcher;
}

export interface PollHandlers {
  /** A polled file changed, appeared or vanished (absolute path). */
  onChange: (absPath: string) => void;
  onError: (error: Error) => void;
}

export function pollFiles(absPaths: string[], intervalMs: number, handlers: PollHandlers): FSWatcher {
  const watcher = chokidar.watch(absPaths, {
    usePolling: true,
    interval: intervalMs,
    binaryInterval: intervalMs,
    ignoreInitial: true,
    persistent: false,
    atomic: false,
    alwaysStat: false,
  });
  for (const event of ['add', 'change', 'unlink'] as const) watcher.on(event, (p: string) => handlers.onChange(p));
  watcher.on('error', (error: unknown) => handlers.onError(error instanceof Error ? error : new Error(String(error))));
  return watcher;
}

export type { FSWatcher };
