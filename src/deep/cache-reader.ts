/**
 * Read-only view of CVAT's media cache (Kvrocks; any Redis-protocol server). The only
 * commands it can send are in READ_COMMANDS — `send` refuses anything else before it
 * reaches the socket, and ioredis is configured to add nothing of its own but AUTH/SELECT
 * (no CLIENT SETNAME/SETINFO, no offline queue, no retries of a command). Every batch is
 * bounded (PROBE_BATCH keys per pipeline) and SCAN is paced (`scanKeysPerSecond`), so a
 * million keys cost a bounded, known amount of the store's time. Values are never read.
 */
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../errors.js';
import type { StoreUrl } from './store-url.js';

/** Every command the warden may send to CVAT's Redis stores. None of them writes. */
export const READ_COMMANDS = new Set(['pttl', 'strlen', 'exists', 'scan', 'llen', 'ping', 'type', 'info', 'zcard', 'dbsize']);

/** Keys per pipelined round trip: one reply buffer stays small (2 × 1000 integers). */
export const PROBE_BATCH = 1000;

export interface KeyState {
  /** Milliseconds until CVAT's TTL drops the key; -1: no expiry (not written by CVAT's `cache.set`). */
  pttlMs: number;
  /** Stored (pickled) size in bytes. */
  bytes: number;
}

export interface CacheReaderOptions {
  store: StoreUrl;
  /** Connect and per-command deadline. @default 5000 */
  timeoutMs?: number;
  /** SCAN pace: keys examined per second at most. @default 50_000 */
  scanKeysPerSecond?: number;
  /** COUNT hint per SCAN call. @default 1000 */
  scanCount?: number;
}

export class StoreError extends Error {
  override name = 'StoreError';
}

export class CacheReader {
  readonly label: string;
  private readonly redis: Redis;
  private readonly timeoutMs: number;
  private readonly scanKeysPerSecond: number;
  private readonly scanCount: number;
  private closed = false;
  /** Commands sent, by name (the benchmark's cost measure; /status shows the total). */
  readonly sent = new Map<string, number>();

  constructor(options: CacheReaderOptions) {
    this.label = options.store.safeLabel;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.scanKeysPerSecond = Math.max(1, options.scanKeysPerSecond ?? 50_000);
    this.scanCount = Math.max(1, options.scanCount ?? 1000);
    this.redis = new Redis(options.store.url.toString(), {
      lazyConnect: true,
      connectTimeout: this.timeoutMs,
      commandTimeout: this.timeoutMs,
      // A command waits for no reconnect: the caller falls back to shallow mode and tries next poll.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(30_000, 500 * 2 ** Math.min(times, 6)),
      disableClientInfo: true,
      enableReadyCheck: true,
    });
    // Errors surface on the commands; the connection's own 'error' events would otherwise crash the process.
    this.redis.on('error', () => undefined);
  }

  /** Connects if needed; throws a StoreError naming the store (never its password). */
  private async ready(): Promise<void> {
    if (this.closed) throw new StoreError(`${this.label}: closed`);
    if (this.redis.status === 'ready') return;
    if (this.redis.status === 'wait' || this.redis.status === 'end') {
      try {
        await this.redis.connect();
      } catch (error) {
        throw new StoreError(`${this.label}: cannot connect (${describeError(error)})`);
      }
      return;
    }
    throw new StoreError(`${this.label}: not connected (${this.redis.status})`);
  }

  private count(name: string, n = 1): void {
    this.sent.set(name, (this.sent.get(name) ?? 0) + n);
  }

  /** One allow-listed command. */
  async send(name: string, ...args: Array<string | number>): Promise<unknown> {
    const command = name.toLowerCase();
    if (!READ_COMMANDS.has(command)) throw new StoreError(`refusing to send ${name.toUpperCase()}: the warden only reads CVAT's stores`);
    await this.ready();
    this.count(command);
    try {
      return await this.redis.call(command, ...args);
    } catch (error) {
      throw new StoreError(`${this.label}: ${command.toUpperCase()} failed (${describeError(error)})`);
    }
  }

  async ping(): Promise<void> {
    await this.send('ping');
  }

  /** `PTTL` and `STRLEN` of each key, pipelined PROBE_BATCH at a time; missing keys are absent from the map. */
  async probe(keys: readonly string[], signal?: AbortSignal): Promise<Map<string, KeyState>> {
    await this.ready();
    const found = new Map<string, KeyState>();
    for (let start = 0; start < keys.length; start += PROBE_BATCH) {
      if (signal?.aborted) throw new StoreError(`${this.label}: probe aborted`);
      const batch = keys.slice(start, start + PROBE_BATCH);
      const pipeline = this.redis.pipeline();
      for (const key of batch) {
        pipeline.pttl(key);
        pipeline.strlen(key);
      }
      this.count('pttl', batch.length);
      this.count('strlen', batch.length);
      let replies: Array<[Error | null, unknown]> | null;
      try {
        replies = await pipeline.exec();
      } catch (error) {
        throw new StoreError(`${this.label}: PTTL/STRLEN failed (${describeError(error)})`);
      }
      if (!replies) throw new StoreError(`${this.label}: pipeline returned nothing`);
      for (let i = 0; i < batch.length; i++) {
        const [pttlError, pttl] = replies[2 * i] ?? [new Error('no reply'), null];
        const [lenError, len] = replies[2 * i + 1] ?? [new Error('no reply'), null];
        if (pttlError) throw new StoreError(`${this.label}: PTTL failed (${describeError(pttlError)})`);
        const pttlMs = Number(pttl);
        if (pttlMs === -2) continue; // no such key
        // STRLEN on a non-string (not CVAT's) answers WRONGTYPE: count it with 0 bytes.
        found.set(batch[i]!, { pttlMs, bytes: lenError ? 0 : Number(len) });
      }
    }
    return found;
  }

  /**
   * Every key matching `pattern`, SCAN by SCAN with COUNT `scanCount`, paced to
   * `scanKeysPerSecond` and stopped at `maxKeys` (the cursor is not kept: a pass is complete or abandoned).
   */
  async *scan(pattern: string, maxKeys: number, signal?: AbortSignal): AsyncGenerator<string[]> {
    let cursor = '0';
    let seen = 0;
    const started = performance.now();
    do {
      if (signal?.aborted) return;
      const reply = (await this.send('scan', cursor, 'MATCH', pattern, 'COUNT', this.scanCount)) as [string, string[]];
      cursor = reply[0];
      seen += reply[1].length;
      if (reply[1].length > 0) yield reply[1];
      if (seen >= maxKeys) return;
      // Pace: the keys examined so far should have taken at least seen / rate seconds.
      const due = (seen / this.scanKeysPerSecond) * 1000 - (performance.now() - started);
      if (due > 1) await sleep(due, undefined, signal ? { signal } : {}).catch(() => undefined);
    } while (cursor !== '0');
  }

  /** Length of a list (the RQ queue `rq:queue:chunks`). */
  async llen(key: string): Promise<number> {
    return Number(await this.send('llen', key));
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.redis.status === 'ready') await this.redis.quit();
      else this.redis.disconnect();
    } catch {
      this.redis.disconnect();
    }
  }
}
