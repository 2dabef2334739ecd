/**
 * The expiry model per CVAT version (cvat-facts "Key version boundaries", §4): ≤ 2.6.1
 * diskcache never expires; 2.6.2–2.10.0 KeyDB, 24 h TTL and allkeys-lfu eviction under
 * maxmemory 5G; 2.10.1+ Kvrocks, 24 h TTL. Forecasts say so instead of inventing a date.
 */
import { describe, expect, it } from 'vitest';
import { CHUNK_CACHE_TTL_MS, featuresFor, forecastExpiry, parseCvatVersion } from '../src/cvat/features.js';
import { affectedTask, compileTask } from '../src/guard/core/mapping.js';
import type { GuardTask } from '../src/guard/types.js';

const model = (v: string) => featuresFor(parseCvatVersion(v)).chunkExpiry;

describe('chunk expiry per version', () => {
  it('has the three regimes at their boundaries', () => {
    expect(model('2.0.0')).toEqual({ kind: 'none' });
    expect(model('2.6.1')).toEqual({ kind: 'none' });
    expect(model('2.6.2')).toEqual({ kind: 'ttl-lfu', ttlMs: CHUNK_CACHE_TTL_MS });
    expect(model('2.10.0')).toEqual({ kind: 'ttl-lfu', ttlMs: CHUNK_CACHE_TTL_MS });
    expect(model('2.10.1')).toEqual({ kind: 'ttl', ttlMs: CHUNK_CACHE_TTL_MS });
    expect(model('2.73.0')).toEqual({ kind: 'ttl', ttlMs: CHUNK_CACHE_TTL_MS });
    expect(forecastExpiry(model('2.5.0'), 1000)).toEqual({ at: null, reason: expect.stringContaining('never expires') });
    expect(forecastExpiry(model('2.8.0'), 1000)).toEqual({ at: 1000 + CHUNK_CACHE_TTL_MS, bound: 'latest' });
    expect(forecastExpiry(model('2.73.0'), 1000)).toEqual({ at: 1000 + CHUNK_CACHE_TTL_MS, bound: 'exact' });
  });

  it('guard forecasts: no date on diskcache, "at the latest" on KeyDB, the date on Kvrocks', () => {
    const task = (version: string): GuardTask => ({
      taskId: 1,
      storage: 'share',
      isVideo: false,
      meta: { size: 4, start_frame: 0, stop_frame: 3, frame_filter: '', frames: [], deleted_frames: [], chunk_size: 2 },
      jobs: [{ id: 1, type: 'annotation', startFrame: 0, stopFrame: 3, chunkSize: 2 }],
      chunkExpiry: model(version),
    });
    const warmed = () => 5000;
    const disk = affectedTask(compileTask(task('2.5.0')), [1], warmed);
    expect(disk.expiresAt).toBe('unknown');
    expect(disk.expiryNote).toMatch(/diskcache without expiry/);
    const keydb = affectedTask(compileTask(task('2.8.0')), [1], warmed);
    expect(keydb.expiresAt).toBe(5000 + CHUNK_CACHE_TTL_MS);
    expect(keydb.expiryNote).toMatch(/at the latest.*lfu/);
    const kvrocks = affectedTask(compileTask(task('2.73.0')), [1], warmed);
    expect(kvrocks.expiresAt).toBe(5000 + CHUNK_CACHE_TTL_MS);
    expect(kvrocks.expiryNote).toBeUndefined();
  });
});
