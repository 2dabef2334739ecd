/**
 * Incremental scheduling (issue 12): a restart on a warm ledger evaluates each task once
 * and requests nothing fresh, with /healthz answering throughout; a chunk's expiry
 * schedules exactly that chunk; evaluation and the engine's skipping of fresh chunks
 * yield to the event loop however large the plan.
 */
import { getEventListeners } from 'node:events';
import { defaultCvatBounds } from '../src/config/index.js';
import { describe, expect, it } from 'vitest';
import { CvatClient } from '../src/cvat/client.js';
import { featuresFor, parseCvatVersion } from '../src/cvat/features.js';
import { WarmScheduler } from '../src/daemon/scheduler.js';
import { DEMO_CREDENTIALS, ManualClock, startEmulator, syntheticDeployment, type Emulator } from '../src/emulator/index.js';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import type { PlanTask } from '../src/plan/types.js';
import { WarmEngine } from '../src/warm/engine.js';
import { Ledger } from '../src/warm/ledger.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const HOUR = 3_600_000;
const TTL = 24 * HOUR;
const tmp = useTempDir('warden-scheduler-');
let emulator: Emulator | undefined;
let running: RunningService | undefined;

closeAfterEach(
  () => [running?.service, emulator],
  () => (running = emulator = undefined),
);

const auth = () => ({ users: [{ username: 'admin', isAdmin: true, accessTokens: [DEMO_CREDENTIALS.accessToken] }] });
const env = () => ({ CVAT_URL: emulator!.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken });
const chunkRequests = (since: number) => emulator!.state.requestLog.slice(since).filter((r) => r.kind === 'job_chunk');
interface Status {
  discovery: { done: boolean; tasks: number };
  warm: { passes: number; evaluations: number; chunks: { total: number; warm: number } | null };
}
const status = async (): Promise<Status> => (await fetch(`${running!.url}/status`)).json() as Promise<Status>;

describe('incremental warm scheduling', () => {
  it('restart on a warm ledger: one evaluation per task, no chunk requested, /healthz answering throughout', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 1));
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 6, framesPerTask: 360 }), auth: auth(), clock, buildTimeMs: 1 });
    const argv = ['--state-dir', tmp.path, '--concurrency', '2', '--warm-completed', '--cold-threshold', '0ms'];
    running = await startService(argv, env(), { clock });
    await waitFor('all warm', () => emulator!.state.coldUiChunkKeys().size === 0);
    const chunks = emulator.state.uiChunkKeys().size;
    await waitFor('evaluated after the pass', async () => (await status()).warm.chunks?.warm === chunks);
    await running.service.close();

    clock.advance(HOUR);
    const since = emulator.state.requestLog.length;
    running = await startService(argv, env(), { clock });
    const healthy: number[] = [];
    await waitFor('restart evaluated', async () => {
      healthy.push((await fetch(`${running!.url}/healthz`)).status);
      const s = await status();
      return s.discovery.done && s.warm.chunks?.warm === chunks ? s : undefined;
    });
    expect(healthy.every((code) => code === 200)).toBe(true);
    expect(healthy.length).toBeGreaterThan(0);
    // The loop looks again after the clock moved (each look that finds nothing due stamps
    // the last-pass gauge with the clock) and still finds nothing: nothing is due for 23 h.
    clock.advance(60_000);
    await waitFor('a look after the clock moved', async () => (await running!.metric('cvat_warden_last_warm_pass_timestamp_seconds')) === clock.now() / 1000, {
      timeoutMs: 10_000,
    });
    expect(chunkRequests(since)).toHaveLength(0);
    const after = await status();
    expect(after.warm.evaluations).toBe(6); // one per task, not one per pass or per chunk
    expect(after.warm.passes).toBe(0); // nothing was due, so no pass ran
    expect(await running.metric('cvat_warden_chunks{state="warm"}')).toBe(chunks);
    expect(await running.metric('cvat_warden_chunks{state="pending"}')).toBe(0);
  });

  it("a chunk's expiry schedules exactly that chunk", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 1));
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 3, framesPerTask: 360 }), auth: auth(), clock, buildTimeMs: 1 });
    const argv = ['--state-dir', tmp.path, '--warm-completed', '--cold-threshold', '0ms'];
    running = await startService(argv, env(), { clock });
    await waitFor('all warm', () => emulator!.state.coldUiChunkKeys().size === 0);
    await running.service.close();

    // Make one chunk's recorded build 23 h old (the rest were built "now").
    const ledger = await Ledger.open(tmp.path, { clock });
    const series = [...ledger.seriesNames()].find((name) => /^j\d+\/compressed$/.test(name))!;
    const [slot, entry] = [...ledger.entries(series)][2]!;
    ledger.record(series, slot, { ...entry, confirmedAt: clock.now() - 23 * HOUR });
    await ledger.close();

    running = await startService(argv, env(), { clock });
    await waitFor('restart evaluated', async () => (await status()).warm.evaluations >= 3);
    const since = emulator.state.requestLog.length;
    clock.advance(HOUR + 1_000); // that chunk's copy has now expired; the others have 23 h left
    const result = await running.service.warmNow();
    expect(result.warm).toBe(1);
    const requested = chunkRequests(since);
    expect(requested).toHaveLength(1);
    expect(requested[0]!.path).toBe(`/api/jobs/${series.slice(1, series.indexOf('/'))}/data`);
    expect(requested[0]!.query).toContain(`index=${slot}`);
    // Only the task holding that chunk was planned again: 3 at start, 1 after the pass.
    expect((await status()).warm.evaluations).toBeLessThanOrEqual(4 + 3);
  });

  it('evaluation and the engine yield to the event loop on a plan of 400,000 fresh chunks', async () => {
    const clock = { now: () => Date.UTC(2026, 10, 1) };
    const ledger = await Ledger.open(tmp.path, { clock, durable: false });
    const jobChunks = 100_000;
    const task: PlanTask = {
      id: 1,
      chunkSize: 10,
      startFrame: 0,
      frameStep: 1,
      jobs: [1, 2, 3, 4].map((id) => ({
        id,
        taskId: 1,
        type: 'annotation',
        startFrame: 0,
        stopFrame: jobChunks * 10 - 1,
        frameCount: jobChunks * 10,
        chunkSize: 10,
        state: 'new',
      })),
    };
    for (const job of task.jobs)
      for (let i = 0; i < jobChunks; i++) ledger.record(`j${job.id}/compressed`, i, { confirmedAt: clock.now() - HOUR, outcome: 'warm' });
    const client = new CvatClient({
      ...defaultCvatBounds(),
      baseUrl: 'http://127.0.0.1:9',
      credentials: { kind: 'token', token: 'never-sent-0123456789' },
      logger: silentLogger(),
    });
    const metrics = createMetrics({ buildInfo: { version: 'test' } });
    const features = featuresFor(parseCvatVersion('2.73.0'));
    const engine = new WarmEngine({
      client,
      features,
      ledger,
      logger: silentLogger(),
      metrics,
      concurrency: 1,
      maxAgeMs: TTL,
      coldThresholdMs: 250,
      clock,
      chunkStateGauge: false,
    });
    const planOptions = { qualities: ['compressed'] as const, previews: false, contextImages: false, indexChunks: true, skipCompleted: false };
    const scheduler = new WarmScheduler({ engine, ledger, logger: silentLogger(), metrics, planOptions, maxAgeMs: TTL, clock, checkIntervalMs: 60_000 });
    const stop = new AbortController();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    try {
      const loop = scheduler.loop({ stop: stop.signal, hard: stop.signal }, (error) => {
        throw error;
      });
      scheduler.upsert(task, { urgent: false });
      await waitFor('task evaluated', () => scheduler.evaluationCount === 1 && scheduler.chunkCounts().warm === 4 * jobChunks, { timeoutMs: 60_000 });
      expect(ticks, 'timers ran while 400,000 chunks were evaluated').toBeGreaterThan(0);
      // The engine skipping every one of them (an explicit pass: nothing is due) yields too.
      const before = ticks;
      const result = await scheduler.nextPass();
      expect(result.fresh).toBe(0); // nothing was due: the pass planned no task
      const run = await engine.run(
        (function* () {
          for (const job of task.jobs)
            for (let i = 0; i < jobChunks; i++)
              yield {
                kind: 'chunk' as const,
                taskId: 1,
                jobId: job.id,
                quality: 'compressed' as const,
                path: `/api/jobs/${job.id}/data`,
                query: {},
                series: `j${job.id}/compressed`,
                slot: i,
                tier: 0,
              };
        })(),
        4 * jobChunks,
      );
      expect(run.fresh).toBe(4 * jobChunks);
      expect(ticks - before, 'timers ran while the engine skipped 400,000 fresh chunks').toBeGreaterThan(0);
      stop.abort();
      await loop;
    } finally {
      clearInterval(ticker);
      await ledger.close();
      await client.close();
    }
  }, 120_000);
});

describe('the scheduler between passes', () => {
  it('a wake-up per discovered task leaves no sleep behind: one abort listener on stop, however many tasks came', async () => {
    const clock = { now: () => Date.UTC(2026, 10, 1) };
    const ledger = await Ledger.open(tmp.path, { clock, durable: false });
    const client = new CvatClient({
      ...defaultCvatBounds(),
      baseUrl: 'http://127.0.0.1:9',
      credentials: { kind: 'token', token: 'never-sent-0123456789' },
      logger: silentLogger(),
    });
    const metrics = createMetrics({ buildInfo: { version: 'test' } });
    const engine = new WarmEngine({
      client,
      features: featuresFor(parseCvatVersion('2.73.0')),
      ledger,
      logger: silentLogger(),
      metrics,
      concurrency: 1,
      maxAgeMs: TTL,
      coldThresholdMs: 250,
      clock,
      chunkStateGauge: false,
    });
    const planOptions = { qualities: ['compressed'] as const, previews: false, contextImages: false, indexChunks: true, skipCompleted: false };
    const scheduler = new WarmScheduler({ engine, ledger, logger: silentLogger(), metrics, planOptions, maxAgeMs: TTL, clock, checkIntervalMs: 60_000 });
    const stop = new AbortController();
    const listenersBefore = getEventListeners(stop.signal, 'abort').length;
    const tasks = 200;
    try {
      const loop = scheduler.loop({ stop: stop.signal, hard: stop.signal }, (error) => {
        throw error;
      });
      // As a restart's discovery does: every task fresh in the ledger, handed over one at a
      // time, each evaluated (nothing due, so the loop goes back to sleep) before the next.
      for (let id = 1; id <= tasks; id++) {
        const job = { id, taskId: id, type: 'annotation' as const, startFrame: 0, stopFrame: 19, frameCount: 20, chunkSize: 10, state: 'new' as const };
        for (let i = 0; i < 2; i++) ledger.record(`j${id}/compressed`, i, { confirmedAt: clock.now() - HOUR, outcome: 'warm' });
        scheduler.upsert({ id, chunkSize: 10, startFrame: 0, frameStep: 1, jobs: [job] }, { urgent: false });
        await waitFor(`task ${id} evaluated`, () => scheduler.evaluationCount === id);
      }
      expect(scheduler.chunkCounts().warm).toBe(2 * tasks);
      // The loop's own drain listener and the current sleep's; before, every woken sleep kept its listener (and its 60 s timer).
      await waitFor('the loop asleep', () => getEventListeners(stop.signal, 'abort').length === listenersBefore + 2);
      expect(getEventListeners(stop.signal, 'abort').length).toBe(listenersBefore + 2);
      stop.abort();
      await loop;
      expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
    } finally {
      await ledger.close();
      await client.close();
    }
  });
});
