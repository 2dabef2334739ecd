/**
 * What happened inside the emulator, for tests, benchmarks and the control API: builds
 * (per key, to catch duplicate work), the cache as it is now (TTL applied), the queue,
 * a request log with counters per path kind and status, and the UI's chunk keys
 * computed from the emulator's own segment model.
 */
import type { BuildEvent, MediaCache } from './cache.js';
import type { Clock } from './clock.js';
import { uiChunkKeys, uiReadKeys } from './keys.js';
import type { Deployment } from './model.js';

export type RequestKind =
  | 'about'
  | 'login'
  | 'user_self'
  | 'organizations'
  | 'tasks_list'
  | 'task'
  | 'task_meta'
  | 'task_chunk'
  | 'task_context_image'
  | 'task_frame'
  | 'task_preview'
  | 'task_data_other'
  | 'jobs_list'
  | 'job'
  | 'job_meta'
  | 'job_chunk'
  | 'job_context_image'
  | 'job_frame'
  | 'job_preview'
  | 'job_data_other'
  | 'share'
  | 'control'
  | 'other';

/** Groups of request kinds, usable wherever a kind is (counts, fault matching). */
export type RequestGroup = 'chunk' | 'data' | 'meta' | 'list';

const GROUPS: Record<RequestGroup, ReadonlySet<RequestKind>> = {
  chunk: new Set<RequestKind>(['job_chunk', 'task_chunk']),
  data: new Set<RequestKind>([
    'task_chunk',
    'job_chunk',
    'task_context_image',
    'job_context_image',
    'task_frame',
    'job_frame',
    'task_preview',
    'job_preview',
    'task_data_other',
    'job_data_other',
  ]),
  meta: new Set<RequestKind>(['job_meta', 'task_meta']),
  list: new Set<RequestKind>(['tasks_list', 'jobs_list', 'organizations']),
};

/** Whether a request kind is the given kind or belongs to the given group. */
export function kindMatches(kind: RequestKind, wanted: RequestKind | RequestGroup): boolean {
  return kind === wanted || ((GROUPS as Partial<Record<string, ReadonlySet<RequestKind>>>)[wanted]?.has(kind) ?? false);
}

export interface RequestRecord {
  /** Injected-clock ms when the request arrived. */
  at: number;
  method: string;
  /** Path without the prefix, e.g. `/api/jobs/3/data`. */
  path: string;
  query: string;
  kind: RequestKind;
  status: number;
  /** Real time spent answering, ms. */
  durationMs: number;
  /** Set when a fault answered instead of the emulated CVAT. */
  fault?: string;
}

const LOG_CAP = 50_000;

export class EmulatorState {
  readonly #cache: MediaCache;
  readonly #deployment: Deployment;
  readonly #legacy: boolean;
  readonly #builds = new Map<string, number>();
  readonly #failures = new Map<string, number>();
  readonly #builtAt = new Map<string, number>();
  readonly #counts = new Map<RequestKind, Map<number, number>>();
  readonly clock: Clock;
  readonly version: string;
  /** Most recent builds (capped). */
  buildLog: BuildEvent[] = [];
  /** Most recent requests (capped). */
  requestLog: RequestRecord[] = [];
  totalBuilds = 0;
  failedBuilds = 0;
  /** 429 answers sent by the emulated chunk path (not by injected faults). */
  sent429 = 0;
  /** 504 answers of the pre-2.23 synchronous path (gateway timeout while the build continues). */
  sent504 = 0;
  faultsInjected = 0;

  constructor(deps: { cache: MediaCache; deployment: Deployment; legacy: boolean; clock: Clock; version: string }) {
    this.#cache = deps.cache;
    this.#deployment = deps.deployment;
    this.#legacy = deps.legacy;
    this.clock = deps.clock;
    this.version = deps.version;
  }

  /** @internal fed by the cache */
  recordBuild(event: BuildEvent): void {
    if (event.ok) {
      this.totalBuilds++;
      this.#builds.set(event.key, (this.#builds.get(event.key) ?? 0) + 1);
      this.#builtAt.set(event.key, this.clock.now());
    } else {
      this.failedBuilds++;
      this.#failures.set(event.key, (this.#failures.get(event.key) ?? 0) + 1);
    }
    this.buildLog.push(event);
    if (this.buildLog.length > LOG_CAP) this.buildLog.splice(0, this.buildLog.length - LOG_CAP);
  }

  /** @internal fed by the server */
  recordRequest(record: RequestRecord): void {
    let byStatus = this.#counts.get(record.kind);
    if (!byStatus) this.#counts.set(record.kind, (byStatus = new Map<number, number>()));
    byStatus.set(record.status, (byStatus.get(record.status) ?? 0) + 1);
    if (record.fault) this.faultsInjected++;
    this.requestLog.push(record);
    if (this.requestLog.length > LOG_CAP) this.requestLog.splice(0, this.requestLog.length - LOG_CAP);
  }

  /** Successful builds of the key (> 1 means the same item was built again: expiry, invalidation or duplicate work). */
  buildCount(key: string): number {
    return this.#builds.get(key) ?? 0;
  }

  failedBuildCount(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  buildsByKey(): Record<string, number> {
    return Object.fromEntries(this.#builds);
  }

  /** Keys built more than once. */
  duplicateBuilds(): string[] {
    return [...this.#builds].filter(([, n]) => n > 1).map(([k]) => k);
  }

  /** Clock ms of the key's latest successful build. */
  builtAt(key: string): number | undefined {
    return this.#builtAt.get(key);
  }

  /** Keys in the cache right now (expired items excluded). */
  cachedKeys(): string[] {
    return this.#cache.keys();
  }

  isCached(key: string): boolean {
    return this.#cache.has(key);
  }

  /** Clock ms when a cached item expires, or undefined. */
  expiresAt(key: string): number | undefined {
    return this.#cache.get(key)?.expiresAt;
  }

  get queueLength(): number {
    return this.#cache.queueLength;
  }

  get maxQueueLength(): number {
    return this.#cache.maxQueueLength;
  }

  get runningBuilds(): number {
    return this.#cache.running;
  }

  /** Counts per request kind and HTTP status. */
  requestCounts(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [kind, byStatus] of this.#counts) out[kind] = Object.fromEntries([...byStatus].map(([s, n]) => [String(s), n]));
    return out;
  }

  /** Number of requests, optionally of one kind (or group: 'chunk', 'data', 'meta', 'list') and/or status. */
  count(kind?: RequestKind | RequestGroup, status?: number): number {
    let total = 0;
    for (const [k, byStatus] of this.#counts) {
      if (kind !== undefined && !kindMatches(k, kind)) continue;
      for (const [s, n] of byStatus) if (status === undefined || s === status) total += n;
    }
    return total;
  }

  /** Keys the 2.73 UI reads when opening every job (pre-2.20 numbering in old mode). */
  uiChunkKeys(): Set<string> {
    return uiChunkKeys(this.#deployment, this.#legacy);
  }

  /** UI keys that are not in the cache right now. */
  coldUiChunkKeys(): Set<string> {
    const cold = new Set<string>();
    for (const key of this.uiChunkKeys()) if (!this.#cache.has(key)) cold.add(key);
    return cold;
  }

  /**
   * Every key the UI reads — chunks and context images — of live segments (`liveOnly`: a job
   * new, in progress or rejected on it) or of all; from the emulator's own job states.
   */
  uiReadKeys(options: { liveOnly: boolean } = { liveOnly: false }): Set<string> {
    return uiReadKeys(this.#deployment, this.#legacy, options);
  }

  /** UI read keys (chunks and context images) not in the cache right now. */
  coldUiReadKeys(options: { liveOnly: boolean } = { liveOnly: false }): Set<string> {
    const cold = new Set<string>();
    for (const key of this.uiReadKeys(options)) if (!this.#cache.has(key)) cold.add(key);
    return cold;
  }

  /** Forget counters and logs (the cache and the deployment stay). */
  resetCounters(): void {
    this.#builds.clear();
    this.#failures.clear();
    this.#counts.clear();
    this.buildLog = [];
    this.requestLog = [];
    this.totalBuilds = 0;
    this.failedBuilds = 0;
    this.sent429 = 0;
    this.sent504 = 0;
    this.faultsInjected = 0;
    this.#cache.maxQueueLength = this.#cache.queueLength;
  }

  /** JSON summary (control API `GET /__emulator/state`). */
  summary(): Record<string, unknown> {
    const ui = this.uiChunkKeys();
    let cold = 0;
    for (const key of ui) if (!this.#cache.has(key)) cold++;
    return {
      version: this.version,
      now: new Date(this.clock.now()).toISOString(),
      tasks: this.#deployment.tasks.size,
      jobs: this.#deployment.jobs.size,
      builds: { total: this.totalBuilds, failed: this.failedBuilds, duplicates: this.duplicateBuilds().length },
      cache: { items: this.cachedKeys().length },
      queue: { length: this.queueLength, max: this.maxQueueLength, running: this.runningBuilds },
      ui: {
        chunkKeys: ui.size,
        cold,
        readKeys: this.uiReadKeys().size,
        coldReads: this.coldUiReadKeys().size,
        coldLiveReads: this.coldUiReadKeys({ liveOnly: true }).size,
      },
      sent429: this.sent429,
      sent504: this.sent504,
      faultsInjected: this.faultsInjected,
      requests: this.requestCounts(),
    };
  }
}
