/** Fault injection: statuses, resets, slow and truncated bodies, matching, seeded random mode, workers down. */
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator, type EmulatorOptions } from '../src/emulator/index.js';
import { http } from './support/emulator-http.js';
import { waitFor } from './support/wait.js';

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

async function start(options: EmulatorOptions = {}): Promise<Emulator> {
  emu = await startEmulator({ buildTimeMs: 2, chunkBytes: 8192, tasks: [{ id: 1, size: 20, chunkSize: 5, segmentSize: 10 }], ...options });
  return emu;
}
const chunk = (e: Emulator, i = 0): string => `${e.url}/api/jobs/1/data?type=chunk&quality=compressed&index=${i}`;

describe('faults', () => {
  it('status faults fire `times` times on matching requests only', async () => {
    const e = await start();
    e.faults.add({ match: 'chunk', status: 429, retryAfter: 3, times: 2 });
    e.faults.add({ match: 'meta', status: 502, times: 1 });
    expect((await http(`${e.url}/api/tasks/1`)).status).toBe(200);
    const first = await http(chunk(e));
    expect([first.status, first.headers['retry-after']]).toEqual([429, '3']);
    expect((await http(chunk(e))).status).toBe(429);
    expect((await http(chunk(e))).status).toBe(200);
    const bad = await http(`${e.url}/api/jobs/1/data/meta`);
    expect([bad.status, bad.headers['content-type']]).toEqual([502, 'text/html']);
    expect((await http(`${e.url}/api/jobs/1/data/meta`)).status).toBe(200);
    expect(e.state.faultsInjected).toBe(3);
    expect(e.state.count('chunk')).toBe(3);
    expect(e.state.count('chunk', 429)).toBe(2);
    expect(e.state.count('meta', 502)).toBe(1);
    expect(e.state.count(undefined, 200)).toBe(3);
    expect(e.state.sent429).toBe(0); // fault 429s are not the emulated chunk path
    expect(e.faults.pending).toBe(0);
  });

  it('RegExp match, skip, 500 and 503/504', async () => {
    const e = await start();
    e.faults.add({ match: /index=1/, status: 500, skip: 1 });
    e.faults.add({ match: /\/api\/tasks\/1$/, status: 504, times: Infinity });
    expect((await http(chunk(e, 1))).status).toBe(200);
    const r = await http(chunk(e, 1));
    expect([r.status, r.text]).toEqual([500, expect.stringContaining('Server Error (500)')]);
    expect((await http(`${e.url}/api/tasks/1`)).status).toBe(504);
    expect((await http(`${e.url}/api/tasks/1`)).status).toBe(504);
    e.faults.clear();
    expect((await http(`${e.url}/api/tasks/1`)).status).toBe(200);
  });

  it('reset destroys the connection', async () => {
    const e = await start();
    e.faults.add({ kind: 'reset', match: 'chunk' });
    await expect(http(chunk(e))).rejects.toThrow();
    expect((await http(chunk(e))).status).toBe(200);
    const reset = await waitFor('the reset request logged', () => e.state.requestLog.find((r) => r.fault === 'reset'));
    expect(reset.status).toBe(0);
  });

  it('slowBody delays the second half of the body; truncate drops the connection mid-body', async () => {
    const e = await start();
    e.faults.add({ kind: 'slowBody', delayMs: 150, match: 'chunk' });
    const t0 = performance.now();
    const slow = await http(chunk(e));
    expect(slow.status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    const full = await http(chunk(e));
    expect(slow.body.equals(full.body)).toBe(true);
    e.faults.add({ kind: 'truncate', truncateAt: 100, match: 'chunk' });
    await expect(http(chunk(e))).rejects.toThrow();
  });

  it('seeded random faults are reproducible', async () => {
    const run = async (): Promise<number[]> => {
      const e = await start();
      e.faults.random({ seed: 42, probability: 0.5, outcomes: [503, 502] });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await http(`${e.url}/api/server/about`)).status);
      await e.close();
      return statuses;
    };
    const a = await run();
    const b = await run();
    expect(a).toEqual(b);
    expect(a.some((s) => s !== 200)).toBe(true);
    expect(a.some((s) => s === 200)).toBe(true);
  });

  it('workers down: cold chunks answer 429 until the workers come back', async () => {
    const e = await start({ serverWaitMs: 30 });
    e.faults.stopWorkers();
    expect((await http(chunk(e))).status).toBe(429);
    expect((await http(chunk(e))).status).toBe(429);
    expect(e.state.queueLength).toBe(1);
    e.faults.startWorkers();
    await waitFor('the queued chunk built', () => e.state.isCached('segment_1_chunk_0_0'), { intervalMs: 5 });
    expect((await http(chunk(e))).status).toBe(200);
  });

  it('control API adds and clears faults', async () => {
    const e = await start();
    const added = await http(`${e.url}/__emulator/faults`, { method: 'POST', body: { match: 'chunk', status: 503, times: 1 } });
    expect(added.status).toBe(200);
    expect((await http(chunk(e))).status).toBe(503);
    await http(`${e.url}/__emulator/faults`, { method: 'POST', body: { match: 'any', status: 502, times: 5 } });
    expect((await http(`${e.url}/__emulator/faults`, { method: 'DELETE' })).status).toBe(200);
    expect((await http(chunk(e))).status).toBe(200);
  });
});
