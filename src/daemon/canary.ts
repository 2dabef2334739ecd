/**
 * Shallow mode's wipe detector. Without deep mode the warden infers the cache from answer
 * times, and its ledger would call a wiped cache "warm" for up to 24 h. Each poll the canary
 * re-reads one chunk the warden saw CVAT build (its build time is known, so it must still be
 * cached): a cached chunk answers in milliseconds (with `Range: bytes=0-0` on 2.66+, one
 * byte), one that has to be built is slow or answers 429. Two such answers in a row, from two
 * different chunks when the warden knows two (one slow answer may be load), mean the cache
 * was wiped or invalidated; then every ledger entry in scope that says warm is voided and the
 * scheduler asks for them again at its bounded concurrency — cached ones answer at once and
 * keep a known-by-then age, missing ones are rebuilt.
 */
import type { CvatClient } from '../cvat/client.js';
import { describeError } from '../errors.js';
import type { WarmRequest } from '../plan/types.js';

/** Chunks the canary may re-read: the last few the warden saw built (distinct chunks). */
const CANDIDATES = 4;

export interface CanaryOptions {
  client: CvatClient;
  coldThresholdMs: number;
  rangeRequests: boolean;
  ttlMs: number;
  clock?: { now(): number };
}

export type CanaryVerdict =
  | { state: 'none' }
  | { state: 'blind' }
  | { state: 'cached'; latencyMs: number }
  | { state: 'wiped'; latencyMs: number; checked: number }
  | { state: 'error'; reason: string };

export class CacheCanary {
  private readonly options: CanaryOptions;
  private readonly clock: { now(): number };
  /** Most recent last; each with the time the warden saw it built. */
  private candidates: Array<{ request: WarmRequest; builtAt: number }> = [];
  checks = 0;

  constructor(options: CanaryOptions) {
    this.options = options;
    this.clock = options.clock ?? Date;
  }

  /** The engine saw CVAT build this chunk just now. */
  built(request: WarmRequest): void {
    if (request.kind !== 'chunk' || this.blind) return;
    const id = `${request.series}#${request.slot}`;
    this.candidates = this.candidates.filter((c) => `${c.request.series}#${c.request.slot}` !== id);
    this.candidates.push({ request, builtAt: this.clock.now() });
    if (this.candidates.length > CANDIDATES) this.candidates.shift();
  }

  /** Forgets every candidate (after a wipe is handled: the re-warm provides new ones). */
  reset(): void {
    this.candidates = [];
  }

  private live(): Array<{ request: WarmRequest; builtAt: number }> {
    // Leave a minute's margin: a chunk about to expire would look wiped.
    const now = this.clock.now();
    return this.candidates.filter((c) => c.builtAt + this.options.ttlMs - 60_000 > now).reverse();
  }

  /**
   * With `--cold-threshold 0` every answer counts as a build, so a re-read cannot tell a
   * cached chunk from a rebuilt one: the canary stays blind rather than call every poll a
   * wipe (which would re-warm everything in scope each time).
   */
  get blind(): boolean {
    return this.options.coldThresholdMs <= 0;
  }

  /** One or two re-reads; 'wiped' only when every chunk checked had to be built. */
  async check(signal?: AbortSignal): Promise<CanaryVerdict> {
    if (this.blind) return { state: 'blind' };
    const live = this.live();
    if (live.length === 0) return { state: 'none' };
    let latencyMs = 0;
    let checked = 0;
    for (const candidate of live.slice(0, 2)) {
      const read = await this.read(candidate.request, signal);
      if ('reason' in read) return { state: 'error', reason: read.reason };
      checked++;
      latencyMs = read.latencyMs;
      if (!read.built) return { state: 'cached', latencyMs };
      // It was rebuilt by this read: its build time is now.
      candidate.builtAt = this.clock.now();
    }
    return { state: 'wiped', latencyMs, checked };
  }

  private async read(request: WarmRequest, signal?: AbortSignal): Promise<{ built: boolean; latencyMs: number } | { reason: string }> {
    const { client } = this.options;
    this.checks++;
    const begun = performance.now();
    try {
      const response = await client.raw(request.path, {
        query: request.query,
        headers: { ...request.headers, ...(this.options.rangeRequests ? { range: 'bytes=0-0' } : {}) },
        signal,
        kind: 'chunk',
      });
      await client.drain(response, signal);
      const latencyMs = performance.now() - begun;
      if (response.status === 429) return { built: true, latencyMs };
      if (response.status !== 200 && response.status !== 206) return { reason: `CVAT answered ${response.status}` };
      return { built: latencyMs >= this.options.coldThresholdMs, latencyMs };
    } catch (error) {
      return { reason: describeError(error) };
    }
  }
}
