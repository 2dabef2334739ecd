/**
 * With a share guard, the first discovery is the share's first scan, and warming waits
 * for it (daemon/service.ts warmWhileCredentialsWork): the scan's stats and indexing must
 * not compete with chunk requests for the main thread (profiled: ~30 % of start-up CPU at
 * 300,000 files). Task 6's meta is made slow, so without the wait tasks 1–5 would be warmed
 * meanwhile; every sample taken while discovery is pending must see no data request.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const tmp = useTempDir('warden-guard-start-');
let emulator: Emulator | undefined;
let running: RunningService | undefined;

closeAfterEach(
  () => [running?.service, emulator],
  () => (running = emulator = undefined),
);

describe('run with a share guard', () => {
  it('requests no chunk before the first discovery (the share scan) has ended, then warms', async () => {
    const share = join(tmp.path, 'share');
    await prepareDemoShare(share);
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    emulator.faults.add({ match: /\/api\/tasks\/6\/data\/meta/, kind: 'slowBody', delayMs: 1500 });
    running = await startService(['--state-dir', join(tmp.path, 'state'), '--share-dir', share], {
      CVAT_URL: emulator.url,
      CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken,
    });
    const log = () => emulator!.state.requestLog;
    await waitFor('task 6 meta requested', () => log().some((r) => r.path === '/api/tasks/6/data/meta'));
    const samples: number[] = [];
    await waitFor('first discovery', async () => {
      const status = (await (await fetch(`${running!.url}/status`)).json()) as { discovery: { done: boolean } };
      if (status.discovery.done) return true;
      samples.push(emulator!.state.count('data'));
      return false;
    });
    expect(samples.length).toBeGreaterThan(0);
    expect(samples.every((n) => n === 0)).toBe(true);
    await waitFor('warming after discovery', () => emulator!.state.count('chunk') > 0);
  });
});
