/**
 * The guard's stats on a local disk, off the main thread: one worker thread runs
 * `statSync` over batches of paths while the main thread parses CVAT's answers and
 * indexes tasks. On a local disk the stats were synchronous on the main thread anyway
 * (the fastest way, ~0.7 s per 100,000); here they cost it one message per batch.
 * Profiled at 1,000,000 share files: stats were 2.6 s of the main thread's 19 s to ready.
 * Batches must be large: waking another thread costs ~130 µs on a 2-core VM (measured:
 * 20,000 messages took 2.6 s of the main thread), so callers send thousands of paths.
 *
 * Bounded: a batch that does not answer within `timeoutMs` (a disk that hangs) fails with
 * STAT_TIMEOUT, the worker is terminated and the next call starts a new one; a worker
 * that dies fails what it had and is replaced the same way. Never throws synchronously.
 */
import { Worker } from 'node:worker_threads';
import { GUARD_SCAN_DEFAULTS } from '../../config/presets.js';
import type { FileStat } from '../types.js';

/**
 * The worker's code, plain CommonJS evaluated by `new Worker(…, { eval: true })`: the same
 * code runs from dist/ and from the TypeScript sources under test, with no loader.
 * Per path: state 0 = stat in `fields` (size, mtimeMs, ino, dev), 1 = absent (ENOENT /
 * ENOTDIR, as fsio's statSync), 2 = error [index, code, message] in `errors`.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
parentPort.on('message', (m) => {
  if (m.op === 'stat') {
    const paths = Buffer.from(m.paths.buffer, m.paths.byteOffset, m.paths.byteLength).toString('utf8').split('\\0');
    const n = paths.length;
    const fields = new Float64Array(n * 4);
    const state = new Uint8Array(n);
    const errors = [];
    for (let i = 0; i < n; i++) {
      try {
        const st = fs.statSync(paths[i], { throwIfNoEntry: false });
        if (st === undefined) { state[i] = 1; continue; }
        fields[i * 4] = st.size; fields[i * 4 + 1] = st.mtimeMs; fields[i * 4 + 2] = st.ino; fields[i * 4 + 3] = st.dev;
      } catch (e) {
        if (e && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) { state[i] = 1; continue; }
        state[i] = 2;
        errors.push([i, String((e && e.code) || 'UNKNOWN'), String((e && e.message) || e)]);
      }
    }
    parentPort.postMessage({ id: m.id, fields, state, errors }, [fields.buffer, state.buffer]);
  }
});
`;

/**
 * The worker's heap: it holds one batch (2,048 paths and their results) at a time, but
 * V8 would grow its young generation to 32 MB like any busy isolate's. Too small a limit
 * only makes the worker fail and be replaced (the batch then fails as a whole).
 */
const STAT_THREAD_HEAP = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 } as const;

/** The outcome of one path of a batch. */
export type BatchStat = { kind: 'stat'; stat: FileStat } | { kind: 'absent' } | { kind: 'error'; error: Error };

export interface StatBatch {
  readonly length: number;
  at(i: number): BatchStat;
}

interface Reply {
  id: number;
  fields?: Float64Array;
  state?: Uint8Array;
  errors?: Array<[number, string, string]>;
}

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** An Error carrying an errno-style `code`, as node's fs throws (fsio's isAbsent/errorCode read it). */
function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function batchOf(reply: Reply, length: number): StatBatch {
  const fields = reply.fields ?? new Float64Array(0);
  const state = reply.state ?? new Uint8Array(0);
  const errors = new Map((reply.errors ?? []).map(([i, code, message]) => [i, codedError(code, message)]));
  return {
    length,
    at(i) {
      if (state[i] === 0)
        return { kind: 'stat', stat: { size: fields[i * 4]!, mtimeMs: fields[i * 4 + 1]!, ino: fields[i * 4 + 2]!, dev: fields[i * 4 + 3]! } };
      if (state[i] === 1) return { kind: 'absent' };
      return { kind: 'error', error: errors.get(i) ?? codedError('UNKNOWN', 'stat failed') };
    },
  };
}

export class StatThread {
  readonly #timeoutMs: number;
  readonly #idleMs: number;
  #worker: Worker | undefined;
  /** Stops an idle worker: scans are start-up, hourly and degraded rounds, and an idle isolate keeps ~25 MB. */
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  constructor(options: { timeoutMs?: number; idleMs?: number } = {}) {
    this.#timeoutMs = options.timeoutMs ?? GUARD_SCAN_DEFAULTS.statBatchTimeoutMs;
    this.#idleMs = options.idleMs ?? GUARD_SCAN_DEFAULTS.statThreadIdleMs;
  }

  /** Whether a worker is running now (tests; it starts on the first batch and stops when idle). */
  get running(): boolean {
    return this.#worker !== undefined;
  }

  /** stat (following symlinks, as CVAT's open() does) every path, in order. */
  stats(paths: readonly string[]): Promise<StatBatch> {
    const bytes = Buffer.from(paths.join('\0'), 'utf8');
    return this.statsEncoded(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length).slice(), paths.length);
  }

  /**
   * As `stats`, for `count` paths already encoded as UTF-8 and separated by NUL bytes: the
   * guard writes them straight from its name arena, and the bytes are moved to the worker,
   * not copied (`bytes` is unusable afterwards). A path never holds a NUL: the guard refuses
   * such names before anything is stat-ed. Cloning one string per batch, as before, cost
   * the main thread ~0.12 s at 1,000,000 files (profiled).
   */
  async statsEncoded(bytes: Uint8Array, count: number): Promise<StatBatch> {
    if (count === 0) return batchOf({ id: 0 }, 0);
    return batchOf(await this.#call({ op: 'stat', paths: bytes }), count);
  }

  #call(message: { op: 'stat'; paths: Uint8Array }): Promise<Reply> {
    if (this.#closed) return Promise.reject(codedError('STAT_THREAD_CLOSED', 'the stat thread is closed'));
    clearTimeout(this.#idleTimer);
    const worker = this.#ensureWorker();
    const id = this.#nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        // A disk that hangs: fail everything the worker holds and start afresh next time.
        this.#failAll(codedError('STAT_TIMEOUT', `no answer from the file system within ${this.#timeoutMs} ms`));
        void worker.terminate();
        if (this.#worker === worker) this.#worker = undefined;
      }, this.#timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      worker.ref();
      worker.postMessage({ ...message, id }, [message.paths.buffer as ArrayBuffer]);
    });
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, stdout: false, stderr: false, resourceLimits: STAT_THREAD_HEAP });
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const pending = this.#pending.get(reply.id);
      if (!pending) return; // answered after a timeout: already failed
      this.#pending.delete(reply.id);
      clearTimeout(pending.timer);
      if (this.#pending.size === 0) {
        worker.unref();
        this.#idleTimer = setTimeout(() => this.#stopIdle(worker), this.#idleMs);
        this.#idleTimer.unref();
      }
      pending.resolve(reply);
    });
    const gone = (error: Error): void => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#failAll(error);
    };
    worker.on('error', (error) => gone(codedError('STAT_THREAD_FAILED', `stat thread failed: ${error.message}`)));
    worker.on('exit', (code) => gone(codedError('STAT_THREAD_FAILED', `stat thread exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }

  #stopIdle(worker: Worker): void {
    if (this.#worker !== worker || this.#pending.size > 0) return;
    this.#worker = undefined;
    void worker.terminate();
  }

  #failAll(error: Error): void {
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(error);
    }
  }

  /** Stops the worker; pending calls fail with STAT_THREAD_CLOSED. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#failAll(codedError('STAT_THREAD_CLOSED', 'the stat thread is closed'));
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }
}
