/**
 * The 2.73 chunk path: cold build → wait → 429 + Retry-After (build continues), dedup of
 * concurrent requests, K FIFO workers, TTL from build time on an injected clock, Range,
 * X-Checksum, CVAT's error texts, task chunks and legacy `number` under separate keys.
 */
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, startEmulator, type Emulator, type EmulatorOptions } from '../src/emulator/index.js';
import { http } from './support/emulator-http.js';
import { waitFor } from './support/wait.js';

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

async function start(options: EmulatorOptions): Promise<Emulator> {
  emu = await startEmulator({ buildTimeMs: 5, serverWaitMs: 5_000, chunkBytes: 4096, ...options });
  return emu;
}

/** 3 video jobs of 30 frames with overlap 5: segments [0-29] [25-54] [50-79], chunk size 10. */
const VIDEO = { id: 1, mediaType: 'video' as const, size: 80, chunkSize: 10, segmentSize: 30 };
const chunkUrl = (e: Emulator, job: number, index: number, extra = ''): string =>
  `${e.url}/api/jobs/${job}/data?type=chunk&quality=compressed&index=${index}${extra}`;

describe('cold chunks and the 429 path', () => {
  it('answers 429 with Retry-After after serverWaitMs, keeps building, then serves the hit', async () => {
    const e = await start({ tasks: [VIDEO], buildTimeMs: 250, serverWaitMs: 40, retryAfterSeconds: 7 });
    const t0 = performance.now();
    const cold = await http(chunkUrl(e, 1, 0));
    const waited = performance.now() - t0;
    expect(cold.status).toBe(429);
    expect(cold.headers['retry-after']).toBe('7');
    expect(cold.body.length).toBe(0);
    expect(waited).toBeGreaterThanOrEqual(35);
    // The 429 came while the build was still running (no bound on how fast: that is for benchmarks).
    expect(e.state.isCached('segment_1_chunk_0_0')).toBe(false);
    await waitFor('segment_1_chunk_0_0 cached', () => e.state.isCached('segment_1_chunk_0_0'), { timeoutMs: 3_000, intervalMs: 5 });
    const hot = await http(chunkUrl(e, 1, 0));
    expect(hot.status).toBe(200);
    expect(e.state.buildCount('segment_1_chunk_0_0')).toBe(1);
    expect(e.state.sent429).toBe(1);
    expect(e.state.requestCounts()['job_chunk']).toEqual({ '429': 1, '200': 1 });
  });

  it('a retry while the build runs joins it instead of building again', async () => {
    const e = await start({ tasks: [VIDEO], buildTimeMs: 200, serverWaitMs: 30 });
    expect((await http(chunkUrl(e, 1, 1))).status).toBe(429);
    expect((await http(chunkUrl(e, 1, 1))).status).toBe(429);
    await waitFor('segment_1_chunk_1_0 cached', () => e.state.isCached('segment_1_chunk_1_0'), { timeoutMs: 3_000, intervalMs: 5 });
    expect(e.state.buildCount('segment_1_chunk_1_0')).toBe(1);
    expect(e.state.totalBuilds).toBe(1);
  });

  it('two concurrent requests for one cold chunk cause one build', async () => {
    const e = await start({ tasks: [VIDEO], buildTimeMs: 60 });
    const [a, b] = await Promise.all([http(chunkUrl(e, 2, 0)), http(chunkUrl(e, 2, 0))]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body.equals(b.body)).toBe(true);
    expect(e.state.buildCount('segment_2_chunk_0_0')).toBe(1);
    expect(e.state.duplicateBuilds()).toEqual([]);
  });

  it('K=2 FIFO workers: 4 cold chunks build two at a time, in arrival order', async () => {
    const e = await start({ tasks: [VIDEO], buildTimeMs: 150, chunkWorkers: 2 });
    const urls = [chunkUrl(e, 1, 0), chunkUrl(e, 1, 1), chunkUrl(e, 1, 2), chunkUrl(e, 2, 0)];
    const pending: Array<Promise<Awaited<ReturnType<typeof http>>>> = [];
    for (const [i, url] of urls.entries()) {
      pending.push(http(url));
      // The next request goes out once the emulator has taken this one in: the arrival order is fixed by events, not a sleep.
      await waitFor(`request ${i + 1} queued`, () => e.state.runningBuilds + e.state.queueLength === i + 1, { timeoutMs: 3_000, intervalMs: 1 });
    }
    const replies = await Promise.all(pending);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(e.state.maxQueueLength).toBeGreaterThanOrEqual(2);
    // Two workers: never more than two builds at once, and the third waits for a worker to be free.
    const log = e.state.buildLog;
    const overlapping = (at: number) => log.filter((b) => b.startedAt <= at && at < b.finishedAt).length;
    expect(Math.max(...log.map((b) => overlapping(b.startedAt)))).toBe(2);
    expect(log[2]!.startedAt).toBeGreaterThanOrEqual(Math.min(log[0]!.finishedAt, log[1]!.finishedAt));
    expect(e.state.buildLog.map((b) => b.key)).toEqual(['segment_1_chunk_0_0', 'segment_1_chunk_1_0', 'segment_1_chunk_2_0', 'segment_2_chunk_0_0']);
  });
});

describe('responses', () => {
  it('X-Checksum uses CVAT formula and X-Updated-Date the segment date', async () => {
    const e = await start({ tasks: [VIDEO] });
    const r = await http(chunkUrl(e, 1, 0));
    const expected = zlib.crc32(r.body.subarray(0, 1000), zlib.crc32(String(r.body.length)));
    expect(r.headers['x-checksum']).toBe(String(expected));
    expect(r.headers['content-type']).toBe('video/mp4');
    expect(r.headers['accept-ranges']).toBe('bytes');
    const meta = (await http(`${e.url}/api/jobs/1/data/meta`)).json() as { chunks_updated_date: string };
    expect(r.headers['x-updated-date']).toBe(meta.chunks_updated_date);
    const other = await http(chunkUrl(e, 1, 1));
    expect(other.headers['x-checksum']).not.toBe(r.headers['x-checksum']);
  });

  it('Range: 206 + Content-Range, suffix ranges, 416 beyond the end, 400 when malformed', async () => {
    const e = await start({ tasks: [VIDEO] });
    const full = await http(chunkUrl(e, 1, 0));
    const size = full.body.length;
    const first = await http(chunkUrl(e, 1, 0), { headers: { range: 'bytes=0-0' } });
    expect(first.status).toBe(206);
    expect(first.headers['content-range']).toBe(`bytes 0-0/${size}`);
    expect(first.body.equals(full.body.subarray(0, 1))).toBe(true);
    expect(first.headers['x-checksum']).toBe(full.headers['x-checksum']);
    const tail = await http(chunkUrl(e, 1, 0), { headers: { range: 'bytes=-10' } });
    expect(tail.headers['content-range']).toBe(`bytes ${size - 10}-${size - 1}/${size}`);
    const open = await http(chunkUrl(e, 1, 0), { headers: { range: `bytes=${size - 3}-` } });
    expect(open.body.equals(full.body.subarray(size - 3))).toBe(true);
    const beyond = await http(chunkUrl(e, 1, 0), { headers: { range: `bytes=${size}-${size + 5}` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${size}`);
    const builds = e.state.totalBuilds;
    const bad = await http(chunkUrl(e, 1, 2), { headers: { range: 'bytes=abc' } });
    expect(bad.status).toBe(400);
    expect(bad.json()).toBe('Invalid Range header');
    expect(e.state.totalBuilds).toBe(builds);
  });

  it('imageset chunks are zip archives with one entry per frame (plus a descriptor)', async () => {
    const e = await start({ tasks: [{ size: 25, chunkSize: 10, segmentSize: 12 }] });
    const r = await http(chunkUrl(e, 2, 1));
    expect(r.headers['content-type']).toBe('application/zip');
    const eocd = r.body.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    expect(r.body.readUInt16LE(eocd + 10)).toBe(1 + 2); // job [12-23]: index 1 = frames 22, 23
  });
});

describe('validation like CVAT', () => {
  it('uses CVAT texts and body forms', async () => {
    const e = await start({ tasks: [VIDEO] });
    const check = async (query: string, status: number, body: unknown): Promise<void> => {
      const r = await http(`${e.url}/api/jobs/1/data?${query}`);
      expect([r.status, r.json()]).toEqual([status, body]);
    };
    await check('type=chunk&index=3', 400, ["Invalid chunk number '3'. The chunk number should be in the [0, 2] range"]);
    await check('type=chunk', 400, ['Number or Index is not specified']);
    await check('type=chunk&index=0&number=0', 400, ['Number and Index cannot be used together']);
    await check('index=0', 400, ['Data type not specified or has wrong value']);
    await check('type=chunk&number=5', 400, ["Invalid chunk number '5'. The chunk number should be in the [0, 2] range"]);
    await check('type=context_image&number=40', 400, 'Incorrect requested frame number: 40');
    const task = await http(`${e.url}/api/tasks/1/data?type=chunk&number=8`);
    expect([task.status, task.json()]).toEqual([400, "Invalid chunk number '8'. The chunk number should be in the [0, 7] range"]);
    const missing = await http(`${e.url}/api/jobs/99/data?type=chunk&index=0`);
    expect([missing.status, missing.json()]).toEqual([404, { detail: 'Not found.' }]);
    expect((await http(`${e.url}/api/jobs/1/data?type=chunk&index=x`)).status).toBe(500);
  });
});

describe('TTL on the injected clock', () => {
  it('expires 24 h after the build; reads do not extend it', async () => {
    const clock = new ManualClock();
    const e = await start({ tasks: [VIDEO], clock });
    const key = 'segment_1_chunk_0_0';
    expect((await http(chunkUrl(e, 1, 0))).status).toBe(200);
    expect(e.state.expiresAt(key)).toBe(clock.now() + 24 * 3600_000);
    clock.advance(23 * 3600_000);
    expect((await http(chunkUrl(e, 1, 0))).status).toBe(200);
    clock.advance(3600_000 - 1);
    expect(e.state.isCached(key)).toBe(true);
    clock.advance(1);
    expect(e.state.isCached(key)).toBe(false);
    expect(e.state.coldUiChunkKeys().has(key)).toBe(true);
    expect((await http(chunkUrl(e, 1, 0))).status).toBe(200);
    expect(e.state.buildCount(key)).toBe(2);
  });

  it('honours a custom ttlMs', async () => {
    const clock = new ManualClock();
    const e = await start({ tasks: [VIDEO], clock, ttlMs: 1000 });
    await http(chunkUrl(e, 1, 0));
    clock.advance(1000);
    expect(e.state.cachedKeys()).toEqual([]);
  });
});

describe('keys that are not what the UI reads', () => {
  it('task chunks build task_{id}_chunk_{N}_{q} (assembling from segment chunks)', async () => {
    const e = await start({ tasks: [VIDEO] });
    const r = await http(`${e.url}/api/tasks/1/data?type=chunk&number=2&quality=compressed`);
    expect(r.status).toBe(200);
    expect(r.headers['x-checksum']).toBeDefined();
    // task chunk 2 = frames 20-29, all in segment 1 (its index 2): CVAT still builds a separate key
    expect(e.state.buildCount('task_1_chunk_2_0')).toBe(1);
    // …and the segment chunk it read was built (inline) and cached on the way
    expect(e.state.isCached('segment_1_chunk_2_0')).toBe(true);
    const r2 = await http(`${e.url}/api/tasks/1/data?type=chunk&number=3&quality=original`);
    expect(r2.status).toBe(200);
    expect(e.state.isCached('task_1_chunk_3_100')).toBe(true);
    // frames 30-39 live in segment 2 ([25-54]): its chunk index 0 = 25-34, index 1 = 35-44
    expect(e.state.isCached('segment_2_chunk_0_100')).toBe(true);
    expect(e.state.isCached('segment_2_chunk_1_100')).toBe(true);
  });

  it('legacy `number` on the job endpoint builds segment_{id}_task_chunk_{N}_{q}', async () => {
    const e = await start({ tasks: [VIDEO] });
    // job 2 = segment 2 [25-54] → task chunks 2…5
    const r = await http(`${e.url}/api/jobs/2/data?type=chunk&number=3&quality=compressed`);
    expect(r.status).toBe(200);
    expect(e.state.cachedKeys()).toEqual(['segment_2_task_chunk_3_0']);
    const out = await http(`${e.url}/api/jobs/2/data?type=chunk&number=6`);
    expect([out.status, out.json()]).toEqual([400, ["Invalid chunk number '6'. The chunk number should be in the [2, 5] range"]]);
  });

  it('matchingChunkShortcut serves exactly matching chunks from the job chunk key', async () => {
    const e = await start({ tasks: [VIDEO], matchingChunkShortcut: true });
    await http(`${e.url}/api/tasks/1/data?type=chunk&number=1`);
    await http(`${e.url}/api/jobs/1/data?type=chunk&number=0`);
    expect(e.state.cachedKeys().sort()).toEqual(['segment_1_chunk_0_0', 'segment_1_chunk_1_0']);
  });
});

describe('honeypot-style segment updates', () => {
  it('touchSegment drops the segment items, moves chunks_updated_date and makes stale task chunks 429', async () => {
    const clock = new ManualClock();
    const e = await start({ tasks: [VIDEO], clock });
    const before = await http(chunkUrl(e, 1, 0));
    await http(`${e.url}/api/jobs/1/preview`);
    await http(`${e.url}/api/tasks/1/data?type=chunk&number=0`);
    expect(e.state.isCached('segment_1_preview')).toBe(true);
    clock.advance(60_000);
    e.touchSegment(1);
    expect(e.state.cachedKeys()).toEqual(['task_1_chunk_0_0']);
    const after = await http(chunkUrl(e, 1, 0));
    expect(after.status).toBe(200);
    expect(after.headers['x-updated-date']).not.toBe(before.headers['x-updated-date']);
    expect(after.headers['x-checksum']).not.toBe(before.headers['x-checksum']);
    const task = (await http(`${e.url}/api/tasks/1`)).json() as { updated_date: string };
    expect(Date.parse(task.updated_date)).toBe(clock.now());
    const stale = await http(`${e.url}/api/tasks/1/data?type=chunk&number=0`);
    expect(stale.status).toBe(429);
  });
});

describe('other data types', () => {
  it('context images (zip, or 404 without related files), previews, frames', async () => {
    const e = await start({ tasks: [{ id: 1, size: 4, chunkSize: 2, relatedFiles: [2, 0, 1, 0] }] });
    const ctx = await http(`${e.url}/api/jobs/1/data?type=context_image&quality=original&number=0`);
    expect(ctx.status).toBe(200);
    expect(ctx.headers['content-type']).toBe('application/zip');
    expect(e.state.isCached('context_images_1_0')).toBe(true);
    const none = await http(`${e.url}/api/jobs/1/data?type=context_image&quality=original&number=1`);
    expect([none.status, none.body.length]).toEqual([404, 0]);
    const preview = await http(`${e.url}/api/tasks/1/preview`);
    expect([preview.status, preview.headers['content-type']]).toEqual([200, 'image/jpeg']);
    expect(e.state.isCached('segment_1_preview')).toBe(true);
    const frame = await http(`${e.url}/api/jobs/1/data?type=frame&quality=compressed&number=3`);
    expect([frame.status, frame.headers['content-type']]).toEqual([200, 'image/jpeg']);
    expect(e.state.isCached('segment_1_chunk_1_0')).toBe(true);
    const meta = (await http(`${e.url}/api/tasks/1/data/meta`)).json() as { frames: Array<{ related_files: number }> };
    expect(meta.frames.map((f) => f.related_files)).toEqual([2, 0, 1, 0]);
  });
});
