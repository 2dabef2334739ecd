/**
 * Health that tells the truth (issue 22): with CVAT stopped /readyz fails once the grace
 * has passed and passes again when CVAT is back; /status says whether CVAT answers now,
 * when it last did and what the last error was, in the shape schemas/status.schema.json
 * describes (validated with ajv against real output: clean, with a file gone, with CVAT
 * down). The grace itself is checked on a fake clock in CvatReachability.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { CvatReachability } from '../src/daemon/reachability.js';
import { STATUS_SCHEMA_VERSION } from '../src/daemon/status.js';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { addFormats } from './support/openapi.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const schema = JSON.parse(readFileSync('schemas/status.schema.json', 'utf8')) as object;
const validate = addFormats(new Ajv({ strict: true, allErrors: true })).compile(schema);
const tmp = useTempDir('warden-health-');
let emulator: Emulator | undefined;
let running: RunningService | undefined;

closeAfterEach(
  () => [running?.service, emulator],
  () => (running = emulator = undefined),
);

interface Readiness {
  status: number;
  body: { ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> };
}

async function readiness(): Promise<Readiness> {
  const res = await fetch(`${running!.url}/readyz`);
  return { status: res.status, body: (await res.json()) as Readiness['body'] };
}

async function status(): Promise<{ cvat: Record<string, unknown>; share: { openProblems: unknown[] } } & Record<string, unknown>> {
  const value = (await (await fetch(`${running!.url}/status`)).json()) as Awaited<ReturnType<typeof status>>;
  expect(validate(value) ? [] : validate.errors, 'GET /status against schemas/status.schema.json').toEqual([]);
  expect(value['schemaVersion']).toBe(STATUS_SCHEMA_VERSION);
  expect(JSON.stringify(value)).not.toContain(DEMO_CREDENTIALS.accessToken);
  return value;
}

describe('CvatReachability', () => {
  it('stays ready within the grace, fails past it, and recovers on the first answer', () => {
    let now = 1_000_000;
    const reach = new CvatReachability({ graceMs: 5_000, now: () => now });
    expect(reach.verdict().ok).toBe(true);
    expect(reach.snapshot()).toMatchObject({ reachable: null, lastSuccessAt: null, lastErrorAt: null });
    reach.record(true);
    reach.record(false, 'ECONNREFUSED');
    now += 4_999;
    reach.record(false, 'ECONNRESET');
    expect(reach.verdict()).toMatchObject({ ok: true });
    now += 1;
    expect(reach.verdict()).toEqual({ ok: false, detail: 'unreachable for 5 s: ECONNRESET' });
    // The outage started with the first failure, not the last one.
    expect(reach.snapshot()).toMatchObject({ reachable: false, downSince: new Date(1_000_000).toISOString(), lastError: 'ECONNRESET' });
    reach.record(true);
    expect(reach.verdict().ok).toBe(true);
    expect(reach.snapshot()).toMatchObject({
      reachable: true,
      downSince: null,
      lastSuccessAt: new Date(now).toISOString(),
      lastErrorAt: new Date(now - 1).toISOString(),
    });
  });
});

describe('cvat-warden run: /readyz and /status', () => {
  it('fails readiness while CVAT is stopped and recovers when it returns; /status matches its schema throughout', async () => {
    const share = join(tmp.path, 'share');
    await prepareDemoShare(share);
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    running = await startService(
      [
        '--state-dir',
        join(tmp.path, 'state'),
        '--share-dir',
        share,
        '--vault',
        join(share, '.cvat-warden-vault'),
        '--backup-dir',
        join(tmp.path, 'backups'),
        '--poll-interval',
        '200ms',
      ],
      { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken },
    );
    await waitFor('ready', async () => (await readiness()).status === 200, { timeoutMs: 30_000 });
    const up = await status();
    expect(up.cvat).toMatchObject({ reachable: true, downSince: null, lastSuccessAt: expect.any(String) });

    rmSync(join(share, 'images/image_1.jpg'));
    await waitFor('problem on /status', async () => (await status()).share.openProblems.length > 0);

    await emulator.stop();
    const down = await waitFor('readiness to fail on CVAT', async () => {
      const r = await readiness();
      return r.status === 503 && !r.body.checks['cvat']!.ok ? r : undefined;
    });
    expect(down.body.checks['cvat']!.detail).toMatch(/^CVAT 2\.73\.0, unreachable for \d+ s: cannot reach CVAT/);
    expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
    const unreachable = await status();
    expect(unreachable.cvat).toMatchObject({ reachable: false, downSince: expect.any(String), lastError: expect.stringMatching(/cannot reach CVAT/) });

    await emulator.start();
    await waitFor('ready again', async () => (await readiness()).status === 200, { timeoutMs: 30_000 });
    const back = await status();
    expect(back.cvat).toMatchObject({ reachable: true, downSince: null, lastError: expect.stringMatching(/cannot reach CVAT/) });
    expect(Date.parse(back.cvat['lastSuccessAt'] as string)).toBeGreaterThan(Date.parse(back.cvat['lastErrorAt'] as string));
  });
});
