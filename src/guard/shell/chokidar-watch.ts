/**
 * Where chokidar serves the guard better than raw fs.watch: polling for SMALL network
 * shares (inotify cannot see other NFS/SMB clients), chokidar's stat polling over the
 * expected files only. Large network shares get none: scans only. (The share root's own
 * watch is a plain fs.watch: root-watcher.ts says why.)
 */
import chokidar, { type FSWatcher } from 'chokidar';

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
