/**
 * The media cache and the chunk build queue.
 *
 * 2.23+ (cvat-facts §4.1): a miss enqueues a build on the FIFO `chunks` queue served by K
 * workers; the job id is derived from the cache key, so a queued/running build is re-used
 * (dedup); a finished or failed build is not, the next miss enqueues again. Items expire
 * `ttlMs` after they were BUILT (injected clock); reads never extend them.
 * Before 2.23 builds run in the request (modelled as the same K slots, standing for web
 * workers) without dedup.
 */
import type { Clock } from './clock.js';
import { cvatChecksum, MIME, renderBody, type BodyDescriptor } from './content.js';

export interface CachedItem {
  key: string;
  body: BodyDescriptor;
  mime: string;
  size: number;
  /** X-Checksum value of the full body. */
  checksum: string;
  /** Clock ms when the build stored it; the item expires at builtAt + ttl. */
  builtAt: number;
  expiresAt: number;
  /** A context-image item for a frame without related files (served as 404). */
  empty: boolean;
}

export interface BuildSpec {
  key: string;
  ttlMs: number;
  buildTimeMs: number;
  /**
   * Runs in the worker: reads the sources (throws when one is missing) and describes the body.
   * May call `MediaCache.buildInline` for items it depends on (task chunks assembled from segment chunks).
   */
  produce: () => Promise<{ body: BodyDescriptor; empty?: boolean }>;
}

export interface BuildEvent {
  key: string;
  ok: boolean;
  error?: string;
  /** Real (performance) times, ms. */
  enqueuedAt: number;
  startedAt: number;
  finishedAt: number;
  inline: boolean;
}

interface BuildJob {
  spec: BuildSpec;
  enqueuedAt: number;
  done: Promise<CachedItem>;
  resolve: (item: CachedItem) => void;
  reject: (error: Error) => void;
}

/** Sees every change of the cache's contents (redis-mirror.ts copies them into a real Redis). */
export interface CacheObserver {
  stored(item: CachedItem): void;
  dropped(keys: readonly string[]): void;
  cleared(): void;
}

export interface MediaCacheOptions {
  clock: Clock;
  workers: number;
  onBuild?: (event: BuildEvent) => void;
  observer?: CacheObserver;
}

export class MediaCache {
  readonly #items = new Map<string, CachedItem>();
  readonly #inflight = new Map<string, BuildJob>();
  readonly #pending: BuildJob[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #opts: MediaCacheOptions;
  #running = 0;
  #paused = false;
  #closed = false;
  maxQueueLength = 0;

  constructor(opts: MediaCacheOptions) {
    this.#opts = opts;
  }

  /** A fresh item, or undefined (expired items are dropped here). */
  get(key: string): CachedItem | undefined {
    const item = this.#items.get(key);
    if (!item) return undefined;
    if (this.#opts.clock.now() >= item.expiresAt) {
      this.#items.delete(key);
      return undefined;
    }
    return item;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  delete(key: string): boolean {
    const had = this.#items.delete(key);
    if (had) this.#opts.observer?.dropped([key]);
    return had;
  }

  /** Drops every item whose key starts with the prefix; returns the keys dropped. */
  deletePrefix(prefix: string): string[] {
    const dropped: string[] = [];
    for (const key of [...this.#items.keys()]) {
      if (key.startsWith(prefix)) {
        this.#items.delete(key);
        dropped.push(key);
      }
    }
    if (dropped.length) this.#opts.observer?.dropped(dropped);
    return dropped;
  }

  /** Keys of fresh items. */
  keys(): string[] {
    return [...this.#items.keys()].filter((k) => this.has(k));
  }

  clear(): void {
    this.#items.clear();
    this.#opts.observer?.cleared();
  }

  get queueLength(): number {
    return this.#pending.length;
  }

  get running(): number {
    return this.#running;
  }

  /** Whether a build for the key is queued or running. */
  isBuilding(key: string): boolean {
    return this.#inflight.has(key);
  }

  /** Enqueues a build (or, with dedup, joins the queued/running one for the same key). */
  ensureBuild(spec: BuildSpec, dedup: boolean): Promise<CachedItem> {
    if (dedup) {
      const existing = this.#inflight.get(spec.key);
      if (existing) return existing.done;
    }
    let resolve!: (item: CachedItem) => void;
    let reject!: (error: Error) => void;
    const done = new Promise<CachedItem>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => undefined); // a request that already answered 429 no longer listens
    const job: BuildJob = { spec, enqueuedAt: performance.now(), done, resolve, reject };
    if (dedup) this.#inflight.set(spec.key, job);
    this.#pending.push(job);
    this.maxQueueLength = Math.max(this.maxQueueLength, this.#pending.length);
    this.#pump();
    return done;
  }

  /** Builds inside the current worker, bypassing the queue (CVAT builds dependencies synchronously inside an RQ job). */
  async buildInline(spec: BuildSpec): Promise<CachedItem> {
    const now = performance.now();
    return this.#execute(spec, now, true);
  }

  /** Stops the workers from picking new builds (running builds finish): "chunk workers down". */
  pauseWorkers(): void {
    this.#paused = true;
  }

  resumeWorkers(): void {
    this.#paused = false;
    this.#pump();
  }

  get workersPaused(): boolean {
    return this.#paused;
  }

  /** Cancels timers and queued builds; pending promises are rejected. */
  shutdown(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const job of this.#pending.splice(0)) job.reject(new Error('emulator closed'));
    this.#inflight.clear();
  }

  #pump(): void {
    while (!this.#closed && !this.#paused && this.#running < this.#opts.workers && this.#pending.length > 0) {
      const job = this.#pending.shift() as BuildJob;
      this.#running++;
      this.#execute(job.spec, job.enqueuedAt, false)
        .then(
          (item) => {
            if (this.#inflight.get(job.spec.key) === job) this.#inflight.delete(job.spec.key);
            job.resolve(item);
          },
          (error: unknown) => {
            if (this.#inflight.get(job.spec.key) === job) this.#inflight.delete(job.spec.key);
            job.reject(error instanceof Error ? error : new Error(String(error)));
          },
        )
        .finally(() => {
          this.#running--;
          this.#pump();
        });
    }
  }

  async #execute(spec: BuildSpec, enqueuedAt: number, inline: boolean): Promise<CachedItem> {
    const startedAt = performance.now();
    try {
      const produced = await spec.produce();
      await this.#sleep(spec.buildTimeMs);
      if (this.#closed) throw new Error('emulator closed');
      const body = renderBody(produced.body);
      const builtAt = this.#opts.clock.now();
      const item: CachedItem = {
        key: spec.key,
        body: produced.body,
        mime: MIME[produced.body.format],
        size: body.length,
        checksum: cvatChecksum(body),
        builtAt,
        expiresAt: builtAt + spec.ttlMs,
        empty: produced.empty ?? false,
      };
      this.#items.set(spec.key, item);
      this.#opts.observer?.stored(item);
      this.#opts.onBuild?.({ key: spec.key, ok: true, enqueuedAt, startedAt, finishedAt: performance.now(), inline });
      return item;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#opts.onBuild?.({ key: spec.key, ok: false, error: message, enqueuedAt, startedAt, finishedAt: performance.now(), inline });
      throw error;
    }
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }
}

/** Renders the body of a cached item (deterministic, so nothing but the descriptor is stored). */
export function itemBody(item: CachedItem): Buffer {
  return renderBody(item.body);
}
