/**
 * Stat many files without flooding a file server or starving the event loop.
 *  - sync mode (local disks): on the guard's stat thread in batches when it has one and
 *    the rate is unlimited (stat-thread.ts); otherwise statSync in time slices (≤ ~8 ms),
 *    yielding between them, so watcher events still get through.
 *  - async mode (network filesystems): a bounded pool of async stats, so a hung NFS
 *    server blocks threads of the pool, never the event loop.
 * All honour `ratePerSecond` (Infinity = unlimited; a finite rate uses the slices).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { GUARD_SCAN_DEFAULTS } from '../../config/presets.js';
import { describeError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { FileStatus, type ShareIndex } from '../core/share-index.js';
import type { FileTracker } from '../core/tracker.js';
import type { FileStat, ScanResult } from '../types.js';
import { errorCode, type GuardFs } from './fsio.js';
import type { StatThread } from './stat-thread.js';

export interface StatEachOptions {
  sync: boolean;
  concurrency: number;
  ratePerSecond: number;
  /** Stop early (close()). */
  stopped: () => boolean;
  statSync: (f: number) => FileStat | null;
  statAsync: (f: number) => Promise<FileStat | null>;
  /**
   * Sync mode, unlimited rate: stat in batches on this thread instead. `writePath` puts a
   * slot's absolute path as UTF-8 into the batch's bytes (undefined: no room left).
   */
  thread?: { statsEncoded: StatThread['statsEncoded']; writePath: (f: number, target: Uint8Array, at: number) => number | undefined } | undefined;
  /** Called with the result or the error of each stat. `token` is whatever `before(f)` returned. */
  before: (f: number) => number;
  onResult: (f: number, st: FileStat | null, token: number) => void;
  onError: (f: number, error: unknown) => void;
}

const SLICE_MS = 8;

class RateGate {
  readonly #perMs: number;
  readonly #start = performance.now();
  #count = 0;

  constructor(ratePerSecond: number) {
    this.#perMs = ratePerSecond / 1000;
  }

  /** Milliseconds to wait before the next operation (0 when under the rate). */
  delay(): number {
    if (!Number.isFinite(this.#perMs) || this.#perMs <= 0) return 0;
    this.#count++;
    const due = this.#start + this.#count / this.#perMs;
    const wait = due - performance.now();
    return wait > 2 ? wait : 0;
  }
}

/**
 * Batches on the stat thread, two in flight: the worker stats one while this thread
 * applies the other. A batch that fails as a whole (timeout, worker gone) is an error for
 * each of its files, as a failed statSync would be.
 */
async function statEachOnThread(ids: ArrayLike<number>, options: StatEachOptions, thread: NonNullable<StatEachOptions['thread']>): Promise<void> {
  const size = GUARD_SCAN_DEFAULTS.statBatchSize;
  let next = 0;
  const send = () => {
    if (next >= ids.length || options.stopped()) return undefined;
    const end = Math.min(ids.length, next + size);
    const slots = new Int32Array(end - next);
    const tokens = new Float64Array(end - next);
    let bytes = new Uint8Array((end - next) * PATH_BYTES_GUESS);
    let at = 0;
    for (let i = 0; next < end; i++, next++) {
      const f = ids[next]!;
      slots[i] = f;
      tokens[i] = options.before(f);
      // The path and a NUL after it (the last one is cut off below).
      let after = thread.writePath(f, bytes, at);
      while (after === undefined || after >= bytes.length) {
        const larger = new Uint8Array(bytes.length * 2);
        larger.set(bytes.subarray(0, at));
        bytes = larger;
        after = thread.writePath(f, bytes, at);
      }
      bytes[after] = 0;
      at = after + 1;
    }
    // Settled into a value: the batch after it may be sent before this one is awaited.
    const reply = thread.statsEncoded(bytes.subarray(0, at - 1), slots.length).then(
      (batch) => ({ batch }),
      (error: unknown) => ({ error }),
    );
    return { slots, tokens, reply };
  };
  for (let batch = send(); batch;) {
    const following = send();
    const reply = await batch.reply;
    // The worker itself failed (not the disk): this batch is stat-ed here, as without a thread.
    // A timeout is the disk hanging, which a statSync here would turn into a hung event loop.
    const here = 'error' in reply && errorCode(reply.error) === 'STAT_THREAD_FAILED';
    for (let i = 0; i < batch.slots.length; i++) {
      const f = batch.slots[i]!;
      if (here) {
        statHere(f, batch.tokens[i]!, options);
        continue;
      }
      if ('error' in reply) {
        options.onError(f, reply.error);
        continue;
      }
      const one = reply.batch.at(i);
      if (one.kind === 'error') options.onError(f, one.error);
      else options.onResult(f, one.kind === 'stat' ? one.stat : null, batch.tokens[i]!);
    }
    batch = following;
  }
}

/** Bytes a batch reserves per path at first (it doubles when a path does not fit). */
const PATH_BYTES_GUESS = 96;

function statHere(f: number, token: number, options: StatEachOptions): void {
  try {
    options.onResult(f, options.statSync(f), token);
  } catch (error) {
    options.onError(f, error);
  }
}

export async function statEach(ids: ArrayLike<number>, options: StatEachOptions): Promise<void> {
  const gate = new RateGate(options.ratePerSecond);
  if (options.sync && options.thread && !Number.isFinite(options.ratePerSecond)) return statEachOnThread(ids, options, options.thread);
  if (options.sync) {
    let i = 0;
    while (i < ids.length && !options.stopped()) {
      const sliceEnd = performance.now() + SLICE_MS;
      while (i < ids.length && performance.now() < sliceEnd) {
        const wait = gate.delay();
        if (wait > 0) await sleep(wait);
        const f = ids[i++]!;
        statHere(f, options.before(f), options);
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return;
  }

  let next = 0;
  const worker = async () => {
    while (next < ids.length && !options.stopped()) {
      const wait = gate.delay();
      if (wait > 0) await sleep(wait);
      const f = ids[next++]!;
      const token = options.before(f);
      try {
        options.onResult(f, await options.statAsync(f), token);
      } catch (error) {
        options.onError(f, error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, ids.length)) }, worker));
}

export type ScanCounts = Pick<ScanResult, 'filesChecked' | 'present' | 'missing' | 'modified' | 'errors' | 'alerts'>;

export interface ScanSlotsContext {
  index: ShareIndex;
  tracker: FileTracker;
  fs: GuardFs;
  /** Share root (absolute, resolved). */
  root: string;
  sync: boolean;
  concurrency: number;
  ratePerSecond: number;
  stopped: () => boolean;
  source: 'scan' | 'startup';
  /** After the share came back: inode changes alone are not modifications. */
  ignoreInode: boolean;
  /** Publish the tracker's outbox; returns the number of alerts. */
  drain: () => number;
  logger: Logger;
  /** The stat thread, for sync mode (absent: statSync on this thread). */
  thread?: StatThread | undefined;
  /** Each stat's verdict on readability: the error (EACCES, EIO…) or undefined when it worked. */
  onReadable?: (f: number, error: unknown) => void;
}

/** Stat index slots and feed each result to the tracker; a stat that raced a newer observation is dropped. */
export async function scanSlots(ids: Int32Array, ctx: ScanSlotsContext): Promise<ScanCounts> {
  const counts: ScanCounts = { filesChecked: 0, present: 0, missing: 0, modified: 0, errors: 0, alerts: 0 };
  const { index } = ctx;
  let sinceDrain = 0;
  await statEach(ids, {
    sync: ctx.sync,
    concurrency: ctx.concurrency,
    ratePerSecond: ctx.ratePerSecond,
    stopped: ctx.stopped,
    statSync: (f) => ctx.fs.statSync(index.absPath(f, ctx.root)),
    statAsync: (f) => ctx.fs.stat(index.absPath(f, ctx.root)),
    thread: ctx.thread
      ? {
          statsEncoded: (bytes, count) => ctx.thread!.statsEncoded(bytes, count),
          writePath: (f, target, at) => index.writeAbsPath(f, ctx.root, target, at),
        }
      : undefined,
    before: (f) => index.gen[f]!,
    onResult: (f, st, token) => {
      if (!index.isLive(f) || index.gen[f] !== token) return;
      ctx.onReadable?.(f, undefined);
      counts.filesChecked++;
      ctx.tracker.observe(f, { stat: st, source: ctx.source, mode: ctx.ignoreInode ? 'ignore-inode' : 'normal' });
      if (index.status[f] === FileStatus.modified) counts.modified++;
      else if (st) counts.present++;
      else counts.missing++;
      if (++sinceDrain >= 4096) {
        sinceDrain = 0;
        counts.alerts += ctx.drain();
      }
    },
    onError: (f, error) => {
      counts.errors++;
      if (index.isLive(f)) ctx.onReadable?.(f, error);
      if (counts.errors <= 5) ctx.logger.warn({ path: !index.isLive(f) ? undefined : index.relPath(f), err: describeError(error) }, 'stat failed during scan');
    },
  });
  counts.alerts += ctx.drain();
  return counts;
}
