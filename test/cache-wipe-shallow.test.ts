/**
 * Without deep mode (issue 20, "done when"): after the media cache is wiped, every active
 * UI read is warm again within 60 s at `--poll-interval 5s`. The evidence is counted, not
 * timed: the warden's discovery polls are the task listings the emulator saw, and polls
 * start `--poll-interval` apart. If every UI chunk is cached again before the third poll
 * after the wipe, it took less than three intervals (15 s ≤ 60 s) — on any machine, however
 * loaded. The shallow canary (src/daemon/canary.ts) is what notices: the wipe counter says so.
 */
import { expect, it, describe } from 'vitest';
import { DEMO_CREDENTIALS, startEmulator, syntheticDeployment, type Emulator } from '../src/emulator/index.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const POLL_INTERVAL_S = 5;
const DONE_WHEN_S = 60;

interface CanaryStatus {
  cache: { mode: string; wipesDetected: number; canary: { state: string; checks: number } | null };
}

describe('shallow mode after a cache wipe (emulator)', () => {
  const tmp = useTempDir('cache-wipe-');
  let emulator: Emulator | undefined;
  let running: RunningService | undefined;
  closeAfterEach(
    () => [running?.service, emulator],
    () => {
      running = undefined;
      emulator = undefined;
    },
  );

  /** Discovery polls so far: each pass lists the tasks (one page here: two tasks). */
  const polls = () => emulator!.state.requestLog.filter((r) => r.path === '/api/tasks').length;
  const cache = () => (running!.service.status() as CanaryStatus).cache;

  it(`re-warms every active UI read within ${DONE_WHEN_S} s at --poll-interval ${POLL_INTERVAL_S}s, counted in polls`, async () => {
    // A build takes 300 ms and the cold threshold is 150 ms: a cached answer is far below it, a rebuilt one above.
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 2, framesPerTask: 120, mediaType: 'image' }), buildTimeMs: 300 });
    running = await startService(['--state-dir', tmp.path, '--poll-interval', `${POLL_INTERVAL_S}s`, '--cold-threshold', '150ms', '--no-context-images'], {
      CVAT_URL: emulator.url,
      CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken,
    });
    const ui = emulator.state.uiChunkKeys();
    expect(ui.size).toBeGreaterThan(2);
    await waitFor('every UI chunk cached', () => emulator!.state.coldUiChunkKeys().size === 0, { timeoutMs: 60_000 });
    expect(cache().mode).toBe('shallow');
    // One poll after warming: the canary re-read a chunk the warden saw built, and it was cached.
    await waitFor('the canary finds the cache intact', () => cache().canary?.state === 'cached', { timeoutMs: 30_000 });
    expect(cache().wipesDetected).toBe(0);

    // The admin clears the cache volume.
    const pollsAtWipe = polls();
    emulator.clearCache();
    expect(emulator.state.coldUiChunkKeys().size).toBe(ui.size);

    await waitFor('every UI chunk cached again', () => emulator!.state.coldUiChunkKeys().size === 0, { timeoutMs: 90_000 });
    const pollsTaken = polls() - pollsAtWipe;
    // Warm again before the third poll after the wipe began: under 3 × 5 s.
    expect(pollsTaken).toBeGreaterThanOrEqual(1);
    expect(pollsTaken).toBeLessThanOrEqual(2);
    expect((pollsTaken + 1) * POLL_INTERVAL_S).toBeLessThanOrEqual(DONE_WHEN_S);
    // The canary noticed (not a TTL running out): said in /status, the metric and the log.
    expect(cache().wipesDetected).toBe(1);
    expect(await running.metric('cvat_warden_cache_wipes_total{detected_by="canary"}')).toBe(1);
    expect(await running.metric('cvat_warden_cache_entries_voided_total')).toBeGreaterThanOrEqual(ui.size);
    expect(running.logs()).toContain('the cache was wiped or invalidated');
  }, 120_000);
});
