/**
 * The warm engine under faults injected by the emulator: every chunk ends warm or is
 * explicitly reported (failed/stuck with a reason); the per-status policy is visible in
 * what the emulator saw.
 */
import { defaultCvatBounds } from '../src/config/index.js';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CvatClient } from '../src/cvat/client.js';
import { startEmulator, syntheticDeployment, copySampleShare, type Emulator, type TaskSpec } from '../src/emulator/index.js';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { collectTaskRecords } from '../src/cvat/inventory.js';
import { toPlanTask } from '../src/plan/from-records.js';
import { planRequests, summarizePlan } from '../src/plan/planner.js';
import type { PlanOptions, PlanTask } from '../src/plan/types.js';
import { WarmEngine } from '../src/warm/engine.js';
import { Ledger } from '../src/warm/ledger.js';
import type { RetryPolicy } from '../src/warm/policy.js';
import { sharedCvatAvailable } from './support/shared-cvat.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('warden-faults-');
let emulator: Emulator | undefined;
let client: CvatClient | undefined;
let ledger: Ledger | undefined;
afterEach(async () => {
  await ledger?.close();
  await client?.close();
  await emulator?.close();
  ledger = client = emulator = undefined;
});

const FAST: Partial<RetryPolicy> = { backoffBaseMs: 5, backoffMaxMs: 40, serverErrorDelayMs: 20, defaultRetryAfterMs: 20, maxRetryAfter: 6 };
const PLAN: PlanOptions = { qualities: ['compressed'], previews: false, contextImages: false, indexChunks: true, skipCompleted: false };

async function warm(
  tasks: TaskSpec[],
  options: {
    emulator?: Parameters<typeof startEmulator>[0];
    concurrency?: number;
    before?: (e: Emulator) => void;
    beforeEngine?: (e: Emulator) => void;
    retry?: Partial<RetryPolicy>;
  } = {},
) {
  emulator = await startEmulator({ tasks, buildTimeMs: 2, retryAfterSeconds: 0.02, ...options.emulator });
  options.before?.(emulator);
  client = new CvatClient({ ...defaultCvatBounds(), baseUrl: emulator.url });
  const features = await client.features();
  const planned: PlanTask[] = [];
  for await (const record of collectTaskRecords(
    client,
    { all: true, taskIds: [], projectIds: [], jobIds: [] },
    { features, withMeta: true, onIssue: () => undefined },
  )) {
    const task = toPlanTask(record, { contextImages: false, onIssue: () => undefined });
    if (task) planned.push(task);
  }
  options.beforeEngine?.(emulator);
  ledger = await Ledger.open(tmp.path);
  const metrics = createMetrics({ buildInfo: { version: 'test' } });
  const engine = new WarmEngine({
    client,
    features,
    ledger,
    metrics,
    logger: silentLogger(),
    concurrency: options.concurrency ?? 2,
    maxAgeMs: 3_600_000,
    coldThresholdMs: 250,
    retry: { ...FAST, ...options.retry },
  });
  const plan = { ...PLAN, indexChunks: features.indexChunks };
  const result = await engine.run(planRequests(planned, plan), summarizePlan(planned, plan).requests);
  return { result, metrics, emulator };
}

describe('warm engine under injected faults', () => {
  it('rides out 429 bursts, 502/503/504, connection resets, truncated and slow bodies', async () => {
    const { result, emulator } = await warm(syntheticDeployment({ tasks: 2, framesPerTask: 200 }), {
      before: (e) => {
        e.faults.add({ match: 'chunk', status: 429, retryAfter: 0.01, times: 5 });
        e.faults.add({ match: 'chunk', status: 502, times: 3, skip: 2 });
        e.faults.add({ match: 'chunk', status: 503, times: 2, skip: 4 });
        e.faults.add({ match: 'chunk', status: 504, times: 2, skip: 6 });
        e.faults.add({ match: 'chunk', kind: 'reset', times: 3, skip: 1 });
        e.faults.add({ match: 'chunk', kind: 'truncate', times: 2, skip: 3 });
        e.faults.add({ match: 'chunk', kind: 'slowBody', delayMs: 30, times: 3 });
      },
    });
    expect(result.failed + result.stuck).toBe(0);
    expect(result.warm).toBe(emulator.state.uiChunkKeys().size);
    expect(emulator.state.coldUiChunkKeys().size).toBe(0);
  });

  it('waits through the 50 s server wait (429 + Retry-After) and never builds a chunk twice', async () => {
    const { result, emulator } = await warm(syntheticDeployment({ tasks: 1, framesPerTask: 150 }), {
      emulator: { buildTimeMs: 60, serverWaitMs: 15, retryAfterSeconds: 0.01 },
      retry: { maxRetryAfter: 50 },
    });
    expect(emulator.state.sent429).toBeGreaterThan(0);
    expect(result.warm).toBe(emulator.state.uiChunkKeys().size);
    expect(emulator.state.duplicateBuilds()).toEqual([]);
  });

  it('reports every chunk stuck, with a reason, when the chunk workers are down', async () => {
    const first = await warm(syntheticDeployment({ tasks: 1, framesPerTask: 72, segmentSize: 72 }), {
      emulator: { serverWaitMs: 5 },
      concurrency: 1,
      before: (e) => e.faults.stopWorkers(),
    });
    expect(first.result.warm).toBe(0);
    expect(first.result.stuck).toBe(first.result.total);
    expect(first.result.failures[0]).toMatchObject({ state: 'stuck', reason: expect.stringMatching(/never completes/) });
    expect(await first.metrics.registry.metrics()).toMatch(/cvat_warden_chunks\{state="stuck"\} 2/);
  });

  it('fails chunks whose share source file is gone after two spaced retries, with a reason, and warms the rest', async () => {
    if (!sharedCvatAvailable()) return;
    const shareDir = join(tmp.path, 'share');
    await copySampleShare(shareDir);
    const frames = ['images/image_0.jpg', 'images/image_1.jpg', 'images/image_2.jpg', 'images/image_3.jpg'];
    const { result, emulator } = await warm([{ id: 1, name: 'share', mediaType: 'image', storage: 'share', frames, chunkSize: 2, segmentSize: 2 }], {
      emulator: { shareDir },
      before: () => rmSync(join(shareDir, 'images/image_3.jpg')),
    });
    expect(result.warm).toBe(1);
    expect(result.failed).toBe(1);
    expect(result.failures[0]).toMatchObject({ state: 'failed', reason: expect.stringMatching(/HTTP 500 on 3 attempts/) });
    // One request and two retries: never a hot loop on a failing build.
    const failedKey = [...emulator.state.coldUiChunkKeys()][0]!;
    expect(emulator.state.failedBuildCount(failedKey)).toBe(3);
  });

  it('reports 404 for a task deleted after planning, once per chunk, without retrying', async () => {
    const { result, emulator } = await warm(syntheticDeployment({ tasks: 2, framesPerTask: 100 }), {
      beforeEngine: (e) => e.removeTask(2),
    });
    const gone = result.failures.filter((f) => f.taskId === 2);
    expect(gone.length).toBeGreaterThan(0);
    expect(gone.every((f) => f.state === 'failed' && /404/.test(f.reason))).toBe(true);
    expect(emulator.state.count(undefined, 404)).toBe(gone.length);
    expect(result.warm).toBe(result.total - gone.length);
  });
});
