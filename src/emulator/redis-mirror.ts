/**
 * The emulator's media cache, mirrored into a real Redis the way CVAT 2.73 stores it in
 * Kvrocks, so deep mode is tested against a real server: Django's `RedisCache` writes
 * `:1:<key>` (`make_key` with no KEY_PREFIX, version 1; `cvat/settings/base.py` CACHES["media"])
 * with `SET … PX` of the item's lifetime (`cache.set(key, item, timeout=ttl)` in
 * `cvat/apps/engine/cache.py` `_create_and_set_cache_item`, set once per build), and deletes
 * keys on invalidation (`_delete_cache_item`, `_bulk_delete_cache_items`). The value stands in
 * for the pickle: as many bytes as the item's body (the warden never reads values; STRLEN counts).
 *
 * Writes go out in order on one connection; `settled()` waits for those issued so far.
 *
 * A clock with `storeRate` (a compressed-time benchmark's: clock ms per real ms) gets its
 * lifetimes divided by it, so Redis, which counts real time, expires a key when the clock
 * says so; deep mode multiplies the PTTL it reads by the same rate (src/deep/deep-sync.ts).
 */
import { Redis } from 'ioredis';
import type { Clock } from './clock.js';
import type { CacheObserver, CachedItem } from './cache.js';

export class RedisCacheMirror implements CacheObserver {
  private readonly redis: Redis;
  private readonly clock: Clock & { readonly storeRate?: number };
  private chain: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;

  constructor(url: string, clock: Clock & { readonly storeRate?: number }) {
    this.redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1, disableClientInfo: true });
    this.redis.on('error', () => undefined);
    this.clock = clock;
  }

  private queue(run: () => Promise<unknown>): void {
    this.chain = this.chain.then(run).catch((error: unknown) => {
      this.failure ??= error instanceof Error ? error : new Error(String(error));
    });
  }

  stored(item: CachedItem): void {
    const ttl = Math.max(1, Math.round((item.expiresAt - this.clock.now()) / (this.clock.storeRate ?? 1)));
    const value = Buffer.alloc(item.size, 0x80); // 0x80: pickle's PROTO opcode, a fitting filler
    this.queue(() => this.redis.set(`:1:${item.key}`, value, 'PX', ttl));
  }

  dropped(keys: readonly string[]): void {
    if (keys.length) this.queue(() => this.redis.del(...keys.map((k) => `:1:${k}`)));
  }

  cleared(): void {
    this.queue(() => this.redis.flushdb());
  }

  /** Resolves once every write issued so far is done; rejects with the first failed one. */
  async settled(): Promise<void> {
    await this.chain;
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    await this.chain;
    this.redis.disconnect();
  }
}
