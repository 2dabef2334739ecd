/**
 * Deep mode's one step per poll: read the exact cache state of every request in scope and
 * write it into the ledger, so the scheduler (which asks the ledger when each chunk comes
 * due) requests exactly what is missing or expired and nothing that is cached.
 *
 * - A key present with `PTTL` p: CVAT set it once with its TTL and reads never extend it
 *   (keys.ts), so it leaves the cache at now + p; the ledger gets confirmedAt = now + p − 24 h
 *   (for chunks that is the build time; a preview's 7 days map onto the same due clock). An
 *   annotator-built chunk's age is thereby learned, not assumed.
 * - A key absent while the ledger holds it warm: the copy is gone (wipe, invalidation that
 *   moved no date, eviction); the entry is recorded as expired now, so it is due at once.
 * - A request whose key cannot be named (job not in the database yet) is left to the ledger.
 *
 * Incremental (known-keys.ts): since a key's expiry and size are fixed for as long as it
 * lives, a poll SCANs the cache for which keys exist and sends PTTL + STRLEN only for keys
 * it has no live reading of — new in scope, listed again after being absent, known expiry
 * passed, or due for re-verification (known-keys.ts). A key in a complete SCAN with a live
 * reading costs nothing more; a key absent from a complete SCAN is gone (SCAN returns every
 * key present from its start to its end), except where the ledger knows more than the
 * reading (the warden built or found the chunk since — perhaps while the SCAN ran): that key
 * is probed. After a wipe the SCAN tells, checked by a sample of 16 probes per batch.
 *
 * Cost per poll: job→segment rows are fetched once per task (a segment never changes for a
 * job) — one query per 500 new tasks; one SCAN per 1000 keys in the cache (paced by the
 * reader); PTTL + STRLEN pipelined 1000 keys per round trip for the keys above. Requests are
 * planned task by task, so memory holds one batch plus one reading per keyed request in scope.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { planRequests } from '../plan/planner.js';
import type { PlanOptions, PlanTask, WarmRequest } from '../plan/types.js';
import type { Ledger } from '../warm/ledger.js';
import { PROBE_BATCH, type CacheReader, type KeyState } from './cache-reader.js';
import { CHUNK_TTL_MS, DJANGO_KEY_PREFIX, cacheKeyOf, type JobSegment, type KeyScheme, type SegmentMap } from './keys.js';
import { KnownKeys } from './known-keys.js';
import type { SegmentReader } from './segment-reader.js';

/** Keys probed per batch (several pipelines): bounds the memory of one step. */
const KEYS_PER_STEP = PROBE_BATCH * 10;
/** A ledger build time within this of the truth is left alone (no journal line per poll). */
const SAME_TIME_MS = 2_000;
/** Every media-cache key Django writes starts so (keys.ts); the SCAN lists only those. */
const SCAN_PATTERN = `${DJANGO_KEY_PREFIX}*`;
/** A SCAN stops here (a pass abandoned: every key not yet seen is probed instead). */
const MAX_SCAN_KEYS = 50_000_000;
/** Keys a complete SCAN calls gone that were there at the last reading: this many per batch are probed anyway. */
const GONE_SAMPLE = 16;

export interface DeepSyncResult {
  /** Requests in scope, and how many of them could be named as a cache key. */
  requests: number;
  keyed: number;
  cached: number;
  missing: number;
  /** Warm ledger entries found gone from the cache (now due). */
  voided: number;
  /** Ledger build times written from PTTL (annotator-built chunks, corrections). */
  learned: number;
  /** STRLEN sum over the keyed requests that are cached, total and per task. */
  bytes: number;
  bytesByTask: Map<number, number>;
  /** Keyed requests whose state came from a PTTL + STRLEN this poll (the rest: SCAN and memory). */
  probed: number;
  /** Keys the SCAN returned (all of CVAT's media-cache keys, in scope or not). */
  scanned: number;
  /** False when this poll's SCAN was incomplete or missed keys a probe found: every unknown key was probed. */
  scanTrusted: boolean;
  /** Tasks whose ledger entries changed: the scheduler evaluates them again. */
  changedTasks: Set<number>;
  /** Every cached key in scope gone while the ledger held some warm: the cache was wiped. */
  wipeSuspected: boolean;
  durationMs: number;
}

export interface DeepSyncOptions {
  cache: CacheReader;
  segments: SegmentReader;
  ledger: Ledger;
  scheme: KeyScheme;
  clock?: StoreClock;
  /** Each key's reading is checked by a probe once in this many polls. @default REVERIFY_POLLS (60) */
  reverifyPolls?: number;
  /** The keys the SCAN lists. @default `:1:*` (every key Django's media cache writes) */
  scanPattern?: string;
}

/**
 * The warden's clock as deep mode reads it. `storeRate`: clock ms per millisecond of the
 * store's own TTL countdown — absent (1) everywhere but a compressed-time benchmark, whose
 * clock runs that many times faster than the real Redis's expiry (bench/deep.mjs's day).
 */
export interface StoreClock {
  now(): number;
  readonly storeRate?: number;
}

class JobSegments implements SegmentMap {
  readonly jobs = new Map<number, JobSegment>();
  readonly previewSegments = new Map<number, number>();
  readonly tasksLoaded = new Set<number>();

  job(jobId: number): JobSegment | undefined {
    return this.jobs.get(jobId);
  }

  previewSegmentOf(taskId: number): number | undefined {
    return this.previewSegments.get(taskId);
  }

  add(rows: readonly JobSegment[], taskIds: readonly number[]): void {
    for (const id of taskIds) this.tasksLoaded.add(id);
    for (const row of rows) {
      this.jobs.set(row.jobId, row);
      // TaskFrameProvider.get_preview_image reads the segment holding frame 0.
      if (row.segmentType !== 'specific_frames' && row.startFrame <= 0 && row.stopFrame >= 0) this.previewSegments.set(row.taskId, row.segmentId);
    }
  }

  forgetTask(taskId: number, jobIds: Iterable<number>): void {
    this.tasksLoaded.delete(taskId);
    this.previewSegments.delete(taskId);
    for (const id of jobIds) this.jobs.delete(id);
  }
}

export class DeepSync {
  private readonly options: DeepSyncOptions;
  private readonly clock: StoreClock;
  private readonly map = new JobSegments();
  private readonly known: KnownKeys;
  /** The key names CVAT writes; set once CVAT's version is known. */
  scheme: KeyScheme;

  constructor(options: DeepSyncOptions) {
    this.options = options;
    this.clock = options.clock ?? Date;
    this.scheme = options.scheme;
    this.known = new KnownKeys(options.reverifyPolls);
  }

  /** Jobs known to the segment map (for /status and tests). */
  get mappedJobs(): number {
    return this.map.jobs.size;
  }

  /** Key readings held between polls (one per keyed request in scope). */
  get knownKeys(): number {
    return this.known.size;
  }

  /** Loads job→segment rows for tasks not loaded yet, or whose jobs are not all known (new jobs). */
  private async loadSegments(tasks: readonly PlanTask[]): Promise<void> {
    const need: number[] = [];
    for (const task of tasks) {
      if (!this.map.tasksLoaded.has(task.id) || task.jobs.some((j) => !this.map.jobs.has(j.id))) {
        if (this.map.tasksLoaded.has(task.id))
          this.map.forgetTask(
            task.id,
            task.jobs.map((j) => j.id),
          );
        need.push(task.id);
      }
    }
    if (need.length === 0) return;
    this.map.add(await this.options.segments.jobsOfTasks(need), need);
  }

  async sync(tasks: readonly PlanTask[], planOptions: PlanOptions, signal?: AbortSignal): Promise<DeepSyncResult> {
    const started = performance.now();
    await this.loadSegments(tasks);
    const result: DeepSyncResult = {
      requests: 0,
      keyed: 0,
      cached: 0,
      missing: 0,
      voided: 0,
      learned: 0,
      bytes: 0,
      bytesByTask: new Map(),
      probed: 0,
      scanned: 0,
      scanTrusted: false,
      changedTasks: new Set(),
      wipeSuspected: false,
      durationMs: 0,
    };
    this.known.beginPoll();
    result.scanned = await this.scan(signal);
    let warmBefore = 0;
    let keys: string[] = [];
    let requests: WarmRequest[] = [];
    const flush = async () => {
      if (keys.length === 0) return;
      const states = await this.read(keys, requests, result, signal);
      warmBefore += this.reconcile(keys, requests, states, result);
      keys = [];
      requests = [];
      await yieldToLoop();
    };
    for (const task of tasks) {
      for (const request of planRequests([task], planOptions)) {
        result.requests++;
        const key = cacheKeyOf(request, this.map, this.scheme);
        if (key === undefined) continue;
        result.keyed++;
        keys.push(key);
        requests.push(request);
        if (keys.length >= KEYS_PER_STEP) await flush();
      }
    }
    await flush();
    this.known.endPoll();
    result.scanTrusted = this.known.scanTrusted;
    result.wipeSuspected = result.cached === 0 && warmBefore > 0 && result.voided === warmBefore;
    result.durationMs = performance.now() - started;
    return result;
  }

  /** One SCAN pass over the media cache's keys, marking the known ones seen; returns the keys it listed. */
  private async scan(signal?: AbortSignal): Promise<number> {
    let scanned = 0;
    for await (const batch of this.options.cache.scan(this.options.scanPattern ?? SCAN_PATTERN, MAX_SCAN_KEYS, signal)) {
      this.known.markScanned(batch);
      scanned += batch.length;
    }
    this.known.endScan(!signal?.aborted && scanned < MAX_SCAN_KEYS);
    return scanned;
  }

  /**
   * The state of each key of one batch (absent from the map: not cached): live readings from
   * memory, PTTL + STRLEN for the rest. Keys the SCAN calls gone are sampled; one found there
   * means the SCAN cannot be trusted this poll, and the batch's other gone keys are probed too.
   */
  private async read(keys: readonly string[], requests: readonly WarmRequest[], result: DeepSyncResult, signal?: AbortSignal): Promise<Map<string, KeyState>> {
    const { cache } = this.options;
    const now = this.clock.now();
    const states = new Map<string, KeyState>();
    const probe: string[] = [];
    const gone: string[] = [];
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const found = this.known.lookup(key, now);
      if (found.state === 'cached') states.set(key, found.key);
      else if (found.state === 'probe') probe.push(key);
      else if (this.ledgerKnowsMore(requests[i]!, found.state === 'gone' ? found.expiresAt : undefined, now)) probe.push(key);
      else if (found.state === 'gone') gone.push(key);
    }
    const sample = gone.splice(0, GONE_SAMPLE);
    probe.push(...sample);
    const read = await cache.probe(probe, signal);
    if (sample.some((key) => read.has(key))) {
      this.known.distrustScan();
      probe.push(...gone);
      for (const [key, state] of await cache.probe(gone, signal)) read.set(key, state);
      gone.length = 0;
    }
    const rate = this.clock.storeRate ?? 1;
    for (const key of probe) {
      const raw = read.get(key);
      const state = raw && rate !== 1 && raw.pttlMs >= 0 ? { ...raw, pttlMs: raw.pttlMs * rate } : raw;
      this.known.learn(key, state, now);
      if (state) states.set(key, state);
    }
    for (const key of gone) this.known.learn(key, undefined, now);
    result.probed += probe.length;
    return states;
  }

  /**
   * Whether the ledger holds the request warm and fresh with a time the last reading does not
   * explain (`readExpiresAt`: the expiry it found; undefined: it found no key): the warden built
   * or found the chunk since — perhaps while the SCAN ran, which then need not list it — so
   * the key is probed rather than judged gone.
   */
  private ledgerKnowsMore(request: WarmRequest, readExpiresAt: number | undefined, now: number): boolean {
    const entry = this.options.ledger.get(request.series, request.slot);
    if (entry?.outcome !== 'warm' || entry.confirmedAt + CHUNK_TTL_MS <= now) return false;
    return readExpiresAt === undefined || Math.abs(entry.confirmedAt - (readExpiresAt - CHUNK_TTL_MS)) > SAME_TIME_MS;
  }

  /** Writes the truth of one batch into the ledger; returns how many of its entries were warm and fresh before. */
  private reconcile(keys: readonly string[], requests: readonly WarmRequest[], states: Map<string, KeyState>, result: DeepSyncResult): number {
    const { ledger } = this.options;
    const now = this.clock.now();
    let warmBefore = 0;
    for (let i = 0; i < keys.length; i++) {
      const request = requests[i]!;
      const state = states.get(keys[i]!);
      const prior = ledger.get(request.series, request.slot);
      const priorFresh = prior?.outcome === 'warm' && prior.confirmedAt + CHUNK_TTL_MS > now;
      if (priorFresh) warmBefore++;
      if (state) {
        result.cached++;
        result.bytes += state.bytes;
        result.bytesByTask.set(request.taskId, (result.bytesByTask.get(request.taskId) ?? 0) + state.bytes);
        // -1: no expiry (not set by CVAT's cache.set); treat it as built now and look again next poll.
        const confirmedAt = state.pttlMs >= 0 ? now + state.pttlMs - CHUNK_TTL_MS : now;
        if (!priorFresh || Math.abs(prior.confirmedAt - confirmedAt) > SAME_TIME_MS) {
          ledger.record(request.series, request.slot, { confirmedAt, outcome: 'warm', ...(prior?.checksum !== undefined ? { checksum: prior.checksum } : {}) });
          result.learned++;
          result.changedTasks.add(request.taskId);
        }
      } else {
        result.missing++;
        if (priorFresh) {
          // Gone from the cache: recorded as expiring now, so the chunk is due at once.
          ledger.record(request.series, request.slot, { confirmedAt: now - CHUNK_TTL_MS, outcome: 'warm' });
          result.voided++;
          result.changedTasks.add(request.taskId);
        }
      }
    }
    return warmBefore;
  }
}
