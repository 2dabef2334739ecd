/**
 * Programmable failures in front of the emulated CVAT: status answers (429 with
 * Retry-After, 500, 502/503/504 like a proxy), connection resets, slow or truncated
 * bodies, a seeded random mode, and "chunk workers down" (every cold build waits forever,
 * so 2.23+ answers 429 until the workers come back).
 */
import { kindMatches, type RequestKind } from './state.js';

export type FaultMatch = 'any' | 'chunk' | 'data' | 'meta' | 'list' | RegExp;
export type FaultStatus = 429 | 500 | 502 | 503 | 504;

export interface FaultSpec {
  /** Which requests: 'chunk' (job/task chunk), 'data' (any /data, preview), 'meta', 'list', 'any' (default), or a RegExp on the path+query. */
  match?: FaultMatch;
  /** Default 'status'. 'reset' destroys the socket; 'slowBody' pauses mid-body; 'truncate' sends part of the body and drops the connection. */
  kind?: 'status' | 'reset' | 'slowBody' | 'truncate';
  /** For kind 'status'; default 503. */
  status?: FaultStatus;
  /** Retry-After seconds sent with a 429/503 fault; default 10 for 429. */
  retryAfter?: number;
  /** slowBody: pause after the headers and first bytes; reset: pause before destroying. Default 0 (reset) / 200 (slowBody). */
  delayMs?: number;
  /** truncate: bytes sent before the connection drops (default half the body). */
  truncateAt?: number;
  /** How many matching requests get the fault; default 1. `Infinity` = until removed. */
  times?: number;
  /** Let this many matching requests through first. */
  skip?: number;
}

export interface RandomFaultOptions {
  seed: number;
  /** Chance per matching request, 0…1. */
  probability: number;
  match?: FaultMatch;
  /** Faults drawn uniformly; default [503, 'reset']. */
  outcomes?: Array<FaultStatus | 'reset'>;
}

export type FaultDecision =
  | { kind: 'status'; status: FaultStatus; retryAfter: number | undefined; label: string }
  | { kind: 'reset'; delayMs: number; label: string }
  | { kind: 'slowBody'; delayMs: number; label: string }
  | { kind: 'truncate'; at: number | undefined; label: string };

interface ActiveFault {
  id: number;
  spec: FaultSpec;
  remaining: number;
  toSkip: number;
}

function matches(match: FaultMatch | undefined, kind: RequestKind, target: string): boolean {
  if (kind === 'control') return false;
  if (match === undefined || match === 'any') return true;
  if (match instanceof RegExp) return match.test(target);
  return kindMatches(kind, match);
}

/** mulberry32: small, seeded, good enough for fault dice (and the benchmarks' simulated days). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultInjector {
  #faults: ActiveFault[] = [];
  #nextId = 1;
  #random: { opts: RandomFaultOptions; next: () => number } | null = null;
  readonly #workers: { pause: () => void; resume: () => void; paused: () => boolean };

  constructor(workers: { pause: () => void; resume: () => void; paused: () => boolean }) {
    this.#workers = workers;
  }

  /** Adds a fault; returns its id (for `remove`). Faults are checked in the order added. */
  add(spec: FaultSpec): number {
    const times = spec.times ?? 1;
    if (!(times > 0)) throw new RangeError('fault times must be > 0');
    const id = this.#nextId++;
    this.#faults.push({ id, spec, remaining: times, toSkip: spec.skip ?? 0 });
    return id;
  }

  remove(id: number): void {
    this.#faults = this.#faults.filter((f) => f.id !== id);
  }

  /** Removes every fault, switches random mode off and restarts stopped workers. */
  clear(): void {
    this.#faults = [];
    this.#random = null;
    this.startWorkers();
  }

  /** Seeded random faults on matching requests; `null` switches it off. */
  random(opts: RandomFaultOptions | null): void {
    this.#random = opts ? { opts, next: prng(opts.seed) } : null;
  }

  /** Chunk workers down: queued builds stay queued (2.23+ answers 429 after the wait). */
  stopWorkers(): void {
    this.#workers.pause();
  }

  startWorkers(): void {
    this.#workers.resume();
  }

  get workersStopped(): boolean {
    return this.#workers.paused();
  }

  /** Faults still armed (remaining uses). */
  get pending(): number {
    return this.#faults.reduce((n, f) => n + (Number.isFinite(f.remaining) ? f.remaining : 1), 0);
  }

  /** @internal the server asks for each request. */
  decide(kind: RequestKind, target: string): FaultDecision | null {
    for (const fault of this.#faults) {
      if (!matches(fault.spec.match, kind, target)) continue;
      if (fault.toSkip > 0) {
        fault.toSkip--;
        continue;
      }
      fault.remaining--;
      if (fault.remaining <= 0) this.remove(fault.id);
      return toDecision(fault.spec);
    }
    if (this.#random && matches(this.#random.opts.match, kind, target)) {
      const { opts, next } = this.#random;
      if (next() < opts.probability) {
        const outcomes = opts.outcomes ?? [503, 'reset'];
        const pick = outcomes[Math.floor(next() * outcomes.length)] ?? 503;
        return pick === 'reset' ? toDecision({ kind: 'reset' }) : toDecision({ kind: 'status', status: pick });
      }
    }
    return null;
  }
}

function toDecision(spec: FaultSpec): FaultDecision {
  switch (spec.kind ?? 'status') {
    case 'reset':
      return { kind: 'reset', delayMs: spec.delayMs ?? 0, label: 'reset' };
    case 'slowBody':
      return { kind: 'slowBody', delayMs: spec.delayMs ?? 200, label: 'slowBody' };
    case 'truncate':
      return { kind: 'truncate', at: spec.truncateAt, label: 'truncate' };
    case 'status': {
      const status = spec.status ?? 503;
      return {
        kind: 'status',
        status,
        retryAfter: spec.retryAfter ?? (status === 429 ? 10 : undefined),
        label: `status ${status}`,
      };
    }
  }
}
