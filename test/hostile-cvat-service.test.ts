/**
 * `cvat-warden run` (WardenService in-process, real HTTP on port 0) against a hostile
 * CVAT: a token revoked mid-run fails readiness, says why on /status, drops
 * cvat_warden_cvat_credentials_ok and pauses warming until the token works again; a
 * job claiming 10^9 frames is skipped while /healthz keeps answering within 1 s; a CVAT
 * echoing the Authorization header cannot put the token into /metrics or /status; a
 * dripping list makes discovery fail at its deadline instead of hanging.
 */
import { describe, expect, it } from 'vitest';
import { startHostileCvat, type HostileCvat } from './support/hostile-cvat.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const TOKEN = 'pat-hostile-service-77aa66bb55cc';
const tmp = useTempDir('hostile-service-');
let cvat: HostileCvat | undefined;
let running: RunningService | undefined;
closeAfterEach(
  () => [running?.service, cvat],
  () => (running = cvat = undefined),
);

async function start(extra: string[] = []): Promise<RunningService> {
  running = await startService(['--state-dir', tmp.path, '--poll-interval', '1s', ...extra], { CVAT_URL: cvat!.url, CVAT_ACCESS_TOKEN: TOKEN });
  return running;
}

async function readiness(url: string): Promise<{ status: number; body: { ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> } }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as never };
}

async function status(url: string): Promise<{ cvat: { credentials: { accepted: boolean | null; detail: string } }; warm: { passes: number } }> {
  return (await (await fetch(`${url}/status`)).json()) as never;
}

function expectNoToken(...texts: string[]): void {
  for (const text of texts) expect(text).not.toContain(TOKEN);
}

describe('run against a hostile CVAT', () => {
  it('fails readiness, says why and pauses warming while the token is refused; resumes when it works again', async () => {
    cvat = await startHostileCvat();
    const svc = await start();
    await waitFor('ready', async () => (await readiness(svc.url)).status === 200, { timeoutMs: 20_000 });
    await waitFor('first warm pass', () => cvat!.counts.chunk >= 4, { timeoutMs: 20_000 });
    expect(await svc.metric('cvat_warden_cvat_credentials_ok')).toBe(1);

    cvat.faults = { revoked: true };
    const refused = await waitFor(
      'readiness to fail on credentials',
      async () => {
        const r = await readiness(svc.url);
        return r.status === 503 && r.body.checks['credentials']?.ok === false ? r : undefined;
      },
      { timeoutMs: 20_000 },
    );
    expect(refused.body.checks['credentials']!.detail).toMatch(/CVAT answered 401 for \/api\/\S+: the personal access token was refused/);
    const during = await status(svc.url);
    expect(during.cvat.credentials.accepted).toBe(false);
    expect(during.cvat.credentials.detail).toMatch(/personal access token was refused/);
    expect(await svc.metric('cvat_warden_cvat_credentials_ok')).toBe(0);
    expect(await svc.metric('cvat_warden_cvat_auth_failures_total')).toBe(1);
    await waitFor('warming to pause', () => svc.logs().includes('warming paused'), { timeoutMs: 10_000 });

    // Paused: discovery keeps probing, no warm pass runs and no chunk is asked for.
    const passes = during.warm.passes;
    const chunks = cvat.counts.chunk;
    const lists = cvat.counts.list;
    await waitFor('two more discovery polls', () => cvat!.counts.list >= lists + 2, { timeoutMs: 15_000 });
    expect(cvat.counts.chunk).toBe(chunks);
    expect((await status(svc.url)).warm.passes).toBe(passes);

    cvat.faults = {};
    await waitFor('ready again', async () => (await readiness(svc.url)).status === 200, { timeoutMs: 20_000 });
    expect(await svc.metric('cvat_warden_cvat_credentials_ok')).toBe(1);
    await waitFor('warming to resume', async () => (await status(svc.url)).warm.passes > passes, { timeoutMs: 20_000 });
    expect(svc.logs()).toContain('warming resumes');
    expectNoToken(svc.logs(), await svc.metricsText(), JSON.stringify(await status(svc.url)));
  });

  it('says from the start that the credentials are refused, when they are', async () => {
    cvat = await startHostileCvat({ revoked: true });
    const svc = await start();
    const refused = await waitFor('readiness to fail on credentials', async () => {
      const r = await readiness(svc.url);
      return r.body.checks['credentials']?.ok === false ? r : undefined;
    });
    expect(refused.status).toBe(503);
    expect(refused.body.checks['credentials']!.detail).toMatch(/401 for \/api\/server\/about: the personal access token was refused/);
    expect(await svc.metric('cvat_warden_cvat_credentials_ok')).toBe(0);
    expect(svc.logs()).toContain('CVAT refuses the credentials; retrying');
    expectNoToken(svc.logs(), JSON.stringify(await status(svc.url)));
  });

  it('skips a job claiming 10^9 frames, and /healthz answers every probe meanwhile', async () => {
    cvat = await startHostileCvat({ absurdJob: true });
    const svc = await start();
    // Answered at all while the absurd job is in the inventory (the abort only keeps a hang from stalling the suite; speed is for benchmarks).
    const probe = async () => {
      const res = await fetch(`${svc.url}/healthz`, { signal: AbortSignal.timeout(30_000) });
      expect(res.status).toBe(200);
    };
    await waitFor(
      'the sane jobs warmed, probing /healthz',
      async () => {
        await probe();
        return cvat!.counts.chunk >= 4;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    for (let i = 0; i < 10; i++) await probe();
    expect(svc.logs()).toMatch(/job 11 of task 1 skipped: it contradicts its task/);
  });

  it('keeps the token out of /metrics labels, /status and logs when CVAT echoes the Authorization header', async () => {
    cvat = await startHostileCvat({ echoHeaders: true });
    const svc = await start();
    await waitFor('ready', async () => (await readiness(svc.url)).status === 200, { timeoutMs: 20_000 });
    const metrics = await svc.metricsText();
    const info = /^cvat_warden_cvat_info\{version="([^"]*)"\} 1$/m.exec(metrics);
    expect(info?.[1]).toMatch(/^2\.73\.0__Bearer__REDACTED_/);
    expect(info![1]!.length).toBeLessThanOrEqual(32);
    expectNoToken(metrics, JSON.stringify(await status(svc.url)), svc.logs(), JSON.stringify((await readiness(svc.url)).body));
  });

  it('ends a discovery pass whose task list drips at its deadline, and is not ready', async () => {
    cvat = await startHostileCvat({ drip: { kinds: ['list'], intervalMs: 200 } });
    const svc = await start(['--request-timeout', '500ms']);
    await waitFor('discovery to give up on the list', () => /did not finish answering GET \/api\/tasks \(list request\) within 500 ms/.test(svc.logs()), {
      timeoutMs: 15_000,
    });
    expect((await readiness(svc.url)).status).toBe(503);
  });
});
