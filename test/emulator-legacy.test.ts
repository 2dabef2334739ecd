/**
 * Old mode (version < 2.20, here 2.14.4): task-chunk `number` only, border chunks shared by
 * neighbouring jobs under `{data_id}_{N}_Quality.X`, GT jobs under `job_{id}_{N}_Quality.X`,
 * no checksum headers, no Range, builds in the request without dedup (a slow build → 504
 * from the proxy while it continues), v2.14.4 response shapes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator, type EmulatorOptions } from '../src/emulator/index.js';
import { http } from './support/emulator-http.js';
import { waitFor } from './support/wait.js';

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

/** size 25, chunk 10, jobs [0-11] [12-23] [24-24], GT frames 1 and 24 (job 4). */
const TASK = { id: 1, size: 25, chunkSize: 10, segmentSize: 12, groundTruthFrames: [1, 24], consensusReplicas: 2 };

async function start(options: EmulatorOptions = {}): Promise<Emulator> {
  emu = await startEmulator({ version: '2.14.4', buildTimeMs: 5, chunkBytes: 2048, tasks: [TASK], ...options });
  return emu;
}

describe('old mode (2.14.4)', () => {
  it('reports the version and has no replicas (consensus did not exist)', async () => {
    const e = await start();
    expect((await http(`${e.url}/api/server/about`)).json()).toMatchObject({ version: '2.14.4' });
    const jobs = (await http(`${e.url}/api/jobs?page_size=all`)).json() as { results: Array<Record<string, unknown>> };
    expect(jobs.results.map((j) => j['type'])).toEqual(['ground_truth', 'annotation', 'annotation', 'annotation']);
    expect(jobs.results[0]).not.toHaveProperty('parent_job_id');
  });

  it('needs `number`; `index` is not a parameter', async () => {
    const e = await start();
    const r = await http(`${e.url}/api/jobs/1/data?type=chunk&quality=compressed&index=0`);
    expect([r.status, r.json()]).toEqual([400, ['Number is not specified']]);
    const out = await http(`${e.url}/api/jobs/2/data?type=chunk&quality=compressed&number=0`);
    expect([out.status, out.json()]).toEqual([400, 'The chunk number should be in [1, 2] range']);
  });

  it('border chunks are shared by neighbouring jobs', async () => {
    const e = await start();
    const a = await http(`${e.url}/api/jobs/1/data?type=chunk&quality=compressed&number=1`);
    const b = await http(`${e.url}/api/jobs/2/data?type=chunk&quality=compressed&number=1`);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body.equals(b.body)).toBe(true);
    expect(e.state.cachedKeys()).toEqual(['1_1_Quality.COMPRESSED']);
    expect(e.state.buildCount('1_1_Quality.COMPRESSED')).toBe(1);
    expect(a.headers['x-checksum']).toBeUndefined();
    expect(a.headers['x-updated-date']).toBeUndefined();
    expect(a.headers['accept-ranges']).toBeUndefined();
    // the shared chunk carries the whole task chunk: frames 10-19 (+ descriptor)
    const eocd = a.body.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    expect(a.body.readUInt16LE(eocd + 10)).toBe(11);
  });

  it('GT jobs use their own masked keys', async () => {
    const e = await start();
    const r = await http(`${e.url}/api/jobs/4/data?type=chunk&quality=compressed&number=2`);
    expect(r.status).toBe(200);
    expect(e.state.cachedKeys()).toEqual(['job_4_2_Quality.COMPRESSED']);
    expect(e.state.uiChunkKeys()).toEqual(
      new Set(['1_0_Quality.COMPRESSED', '1_1_Quality.COMPRESSED', '1_2_Quality.COMPRESSED', 'job_4_0_Quality.COMPRESSED', 'job_4_2_Quality.COMPRESSED']),
    );
  });

  it('ignores Range and serves the full body', async () => {
    const e = await start();
    const r = await http(`${e.url}/api/jobs/1/data?type=chunk&quality=compressed&number=0`, { headers: { range: 'bytes=0-0' } });
    expect(r.status).toBe(200);
    expect(r.body.length).toBeGreaterThan(1);
  });

  it('builds in the request without dedup; a slow build is a 504 while it goes on', async () => {
    const e = await start({ buildTimeMs: 80 });
    const [a, b] = await Promise.all([
      http(`${e.url}/api/jobs/1/data?type=chunk&quality=compressed&number=0`),
      http(`${e.url}/api/jobs/1/data?type=chunk&quality=compressed&number=0`),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(e.state.buildCount('1_0_Quality.COMPRESSED')).toBe(2);
    await e.close();
    const slow = await start({ buildTimeMs: 150, serverWaitMs: 20 });
    const r = await http(`${slow.url}/api/jobs/1/data?type=chunk&quality=compressed&number=0`);
    expect(r.status).toBe(504);
    expect(r.text).toContain('504 Gateway Time-out');
    expect(slow.state.sent429).toBe(0);
    await waitFor('the chunk built behind the 504', () => slow.state.isCached('1_0_Quality.COMPRESSED'), { intervalMs: 5 });
    expect((await http(`${slow.url}/api/jobs/1/data?type=chunk&quality=compressed&number=0`)).status).toBe(200);
  });

  it('the task endpoint checks numbers against ABSOLUTE start/stop (CVAT < 2.20 bug)', async () => {
    const e = await start({ tasks: [{ id: 7, size: 30, startFrame: 20, chunkSize: 10 }] });
    // data frames 20…49 → task chunks 0…2, but the range check is [20//10, 49//10] = [2, 4]
    const low = await http(`${e.url}/api/tasks/7/data?type=chunk&quality=compressed&number=0`);
    expect([low.status, low.json()]).toEqual([400, 'The chunk number should be in [2, 4] range']);
    expect((await http(`${e.url}/api/tasks/7/data?type=chunk&quality=compressed&number=2`)).status).toBe(200);
    expect((await http(`${e.url}/api/jobs/1/data?type=chunk&quality=compressed&number=0`)).status).toBe(200);
  });

  it('meta has no chunks_updated_date / storage; a PAT is not a credential before 2.48', async () => {
    const e = await start({ auth: { users: [{ username: 'admin', isAdmin: true, accessTokens: ['pat-1'], legacyKeys: ['key-1'] }] } });
    const meta = (await http(`${e.url}/api/jobs/1/data/meta`, { headers: { authorization: 'Token key-1' } })).json() as Record<string, unknown>;
    expect(meta).not.toHaveProperty('chunks_updated_date');
    expect(meta).not.toHaveProperty('storage');
    expect(meta).toHaveProperty('image_quality', 70);
    const bearer = await http(`${e.url}/api/tasks`, { headers: { authorization: 'Bearer pat-1' } });
    expect([bearer.status, bearer.json()]).toEqual([401, { detail: 'Authentication credentials were not provided.' }]);
  });
});
