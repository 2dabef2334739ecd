/**
 * `warm` with the default options keeps both of CVAT's chunk workers busy when nobody
 * else queues (issue 21), counted where the builds happen: the emulator's `chunks` queue,
 * served by K = 2 workers like CVAT's `cvat_worker_chunks` (compose: NUMPROCS 2,
 * ../shared/cvat/v2.73.0/docker-compose.yml; Helm: backend.worker.chunks.replicas 2 ×
 * numProcs 1, helm-chart/values.yaml). No timing bounds: only how many builds overlapped.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoAuth, startEmulator, syntheticDeployment, type Emulator } from '../src/emulator/index.js';
import type { BuildEvent } from '../src/emulator/cache.js';
import { clearSecretsForTests } from '../src/secrets.js';
import { useTempDir } from './support/tmp.js';
import { warmInProcess } from './support/warm.js';

const tmp = useTempDir('warden-capacity-');
let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
  clearSecretsForTests();
});

/** Most builds running at one instant (queued builds are not running). */
function peakRunning(builds: readonly BuildEvent[]): number {
  const edges = builds
    .filter((b) => !b.inline)
    .flatMap((b) => [
      { t: b.startedAt, d: 1 },
      { t: b.finishedAt, d: -1 },
    ]);
  edges.sort((a, b) => a.t - b.t || a.d - b.d); // an end before a start at the same instant
  let running = 0;
  let peak = 0;
  for (const e of edges) peak = Math.max(peak, (running += e.d));
  return peak;
}

async function warmedPeak(args: string[]): Promise<{ peak: number; builds: number }> {
  emulator = await startEmulator({
    tasks: syntheticDeployment({ tasks: 2, mediaType: 'video', framesPerTask: 360, chunkSize: 36, segmentSize: 180 }),
    auth: demoAuth(),
    chunkWorkers: 2,
    buildTimeMs: 40,
  });
  const run = await warmInProcess(['--all', '--state-dir', tmp.path, ...args], { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken });
  expect(run.code, run.logs).toBe(0);
  const builds = emulator.state.buildLog.filter((b) => b.ok);
  return { peak: peakRunning(builds), builds: builds.length };
}

describe('warm uses every chunk worker when idle', () => {
  it('with the defaults: two builds at once, one on each of CVAT’s two chunk workers', async () => {
    const { peak, builds } = await warmedPeak([]);
    expect(builds).toBeGreaterThanOrEqual(20);
    expect(peak).toBe(2);
  });

  it('--concurrency 1 (an admin lowering the ceiling): one build at a time', async () => {
    const { peak, builds } = await warmedPeak(['--concurrency', '1']);
    expect(builds).toBeGreaterThanOrEqual(20);
    expect(peak).toBe(1);
  });
});
