/**
 * One non-recursive `fs.watch` per directory — the directories that hold expected
 * files, plus the nearest existing ancestor of a directory that vanished (to notice
 * it coming back). Never one watch per file, never the whole share. Events are
 * coalesced per directory for `debounceMs` and handed over as one batch of names
 * ('all' when node gave no file name or the directory itself changed).
 */
import type { DirWatcher, GuardFs } from './fsio.js';
import { errorCode } from './fsio.js';

export type WatchPurpose = 'files' | 'ancestor';

export type WatchOutcome = 'ok' | 'absent' | 'limit' | 'error';

export interface DirBatch {
  dir: string;
  /** Base names that changed, or 'all'. */
  names: Set<string> | 'all';
  files: boolean;
  ancestor: boolean;
}

interface Entry {
  watcher: DirWatcher;
  files: boolean;
  ancestor: boolean;
}

export interface DirWatchersOptions {
  fs: GuardFs;
  abs: (rel: string) => string;
  persistent: boolean;
  debounceMs: number;
  onBatch: (batches: DirBatch[]) => void;
  /** A live watcher emitted 'error' (it is closed and forgotten before this runs). */
  onError: (dir: string, error: Error) => void;
}

export class DirWatchers {
  readonly #options: DirWatchersOptions;
  readonly #entries = new Map<string, Entry>();
  #pending = new Map<string, Set<string> | 'all'>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: DirWatchersOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#entries.size;
  }

  has(dir: string, purpose: WatchPurpose): boolean {
    const entry = this.#entries.get(dir);
    return entry !== undefined && entry[purpose];
  }

  /** Start (or widen) a watch. Synchronous: fs.watch throws ENOENT/ENOSPC right away. */
  watch(dir: string, purpose: WatchPurpose): { outcome: WatchOutcome; error?: unknown } {
    if (this.#closed) return { outcome: 'error' };
    const existing = this.#entries.get(dir);
    if (existing) {
      existing[purpose] = true;
      return { outcome: 'ok' };
    }
    let watcher: DirWatcher;
    try {
      watcher = this.#options.fs.watch(this.#options.abs(dir), (_eventType, filename) => this.#onEvent(dir, filename), {
        persistent: this.#options.persistent,
      });
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return { outcome: 'absent', error };
      if (code === 'ENOSPC' || code === 'EMFILE') return { outcome: 'limit', error };
      return { outcome: 'error', error };
    }
    const entry: Entry = { watcher, files: purpose === 'files', ancestor: purpose === 'ancestor' };
    watcher.on('error', (error: Error) => {
      if (this.#entries.get(dir) !== entry) return;
      this.#drop(dir);
      this.#options.onError(dir, error);
    });
    this.#entries.set(dir, entry);
    return { outcome: 'ok' };
  }

  /** Narrow or stop a watch. */
  unwatch(dir: string, purpose: WatchPurpose): void {
    const entry = this.#entries.get(dir);
    if (!entry) return;
    entry[purpose] = false;
    if (!entry.files && !entry.ancestor) this.#drop(dir);
  }

  #drop(dir: string): void {
    const entry = this.#entries.get(dir);
    if (!entry) return;
    this.#entries.delete(dir);
    try {
      entry.watcher.close();
    } catch {
      // already closed
    }
  }

  /** Feed a change noticed elsewhere (polling, root watcher) through the same batching. */
  enqueue(dir: string, name: string | null): void {
    this.#onEvent(dir, name);
  }

  #onEvent(dir: string, filename: string | null): void {
    if (this.#closed) return;
    const names = this.#pending.get(dir);
    if (filename === null || filename === '') this.#pending.set(dir, 'all');
    else if (names === undefined) this.#pending.set(dir, new Set([filename]));
    else if (names !== 'all') names.add(filename);
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.#flush(), this.#options.debounceMs);
      this.#timer.unref();
    }
  }

  #flush(): void {
    this.#timer = undefined;
    const pending = this.#pending;
    this.#pending = new Map();
    const batches: DirBatch[] = [];
    for (const [dir, names] of pending) {
      const entry = this.#entries.get(dir);
      batches.push({ dir, names, files: entry?.files ?? true, ancestor: entry?.ancestor ?? false });
    }
    if (batches.length) this.#options.onBatch(batches);
  }

  /** Directories currently watched for `purpose`. */
  dirs(purpose: WatchPurpose): string[] {
    return [...this.#entries].filter(([, e]) => e[purpose]).map(([d]) => d);
  }

  closeAll(): void {
    for (const dir of [...this.#entries.keys()]) this.#drop(dir);
    this.#pending.clear();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  close(): void {
    this.closeAll();
    this.#closed = true;
  }
}
