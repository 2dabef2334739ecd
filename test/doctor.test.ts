/**
 * `cvat-warden doctor` as an admin runs it (the built CLI against the emulator over a real
 * copy of CVAT's sample share): a deleted share file is reported as a deleted file, not
 * as a wrong CVAT_SHARE_DIR; CVAT's chunk workers are checked by a cold chunk that gets
 * built, or by the 429 pattern of a `chunks` queue that nobody serves (CVAT 2.23+: the
 * server waits CVAT_CHUNK_CREATE_TIMEOUT, then 429 + Retry-After, cvat/apps/engine/cache.py
 * and views.py); and the running service's webhook deliveries are read from its /status.
 */
import { createHmac } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator, type EmulatorOptions } from '../src/emulator/index.js';
import { runCli } from './support/cli.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('warden-doctor-');
let emulator: Emulator | undefined;
let running: RunningService | undefined;

closeAfterEach(
  () => [running?.service, emulator],
  () => (running = emulator = undefined),
);

interface Check {
  name: string;
  level: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

async function start(options: Partial<EmulatorOptions> = {}): Promise<string> {
  const share = join(tmp.path, 'share');
  await prepareDemoShare(share);
  emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1, ...options });
  return share;
}

const env = (extra: NodeJS.ProcessEnv = {}) => ({
  CVAT_URL: emulator!.url,
  CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken,
  CVAT_WARDEN_STATE_DIR: join(tmp.path, 'state'),
  // No service listens here unless a test starts one.
  CVAT_WARDEN_LISTEN: '127.0.0.1:1',
  ...extra,
});

async function doctor(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; checks: Check[]; text: string }> {
  const result = await runCli(['doctor', '--json', ...args], env(extra), { timeoutMs: 60_000 });
  return { code: result.code, checks: (JSON.parse(result.stdout) as { checks: Check[] }).checks, text: result.stdout + result.stderr };
}
const find = (checks: Check[], name: string) => checks.find((c) => c.name === name);

describe('cvat-warden doctor', () => {
  it('reports a deleted share file as a deleted file, and keeps the share root as right', async () => {
    const share = await start();
    rmSync(join(share, 'images/image_2.jpg'));
    const { code, checks } = await doctor(['--share-dir', share]);
    expect(code).toBe(1);
    expect(find(checks, 'share directory')).toMatchObject({ level: 'ok', detail: expect.stringContaining('right root') });
    const files = find(checks, 'share files')!;
    expect(files.level).toBe('fail');
    expect(files.detail).toMatch(/1 sampled file\(s\) of task 1 are missing .*deleted or moved.*images\/image_2\.jpg/);
    expect(files.fix).not.toContain('CVAT_SHARE_DIR');
    expect(files.fix).toContain('cvat-warden check --all');
  });

  it('sees the chunk workers build a cold chunk, then says when the chunks were only served from the cache', async () => {
    // 16 workers and a warm at concurrency 16: the 52 chunks of 400 ms builds warm in ~1.5 s instead of ~5 s (the warm is only the set-up)
    await start({ buildTimeMs: 400, serverWaitMs: 5_000, chunkWorkers: 16 });
    const first = await doctor([]);
    expect(find(first.checks, 'chunk workers')).toMatchObject({
      level: 'ok',
      detail: expect.stringMatching(/job \d+ chunk \d+ was not cached and was built in \d+\.\d s: the chunk workers answer/),
    });
    // Everything warm (as the warden keeps it): the check says the workers were not exercised.
    // --chunk-workers 16 as the emulator has: the warming controller fills what it is told CVAT has.
    const warm = await runCli(['warm', '--all', '--concurrency', '16', '--chunk-workers', '16'], env(), { timeoutMs: 60_000 });
    expect(warm.code, warm.stderr).toBe(0);
    const again = await doctor([]);
    expect(find(again.checks, 'chunk workers')).toMatchObject({ level: 'ok', detail: expect.stringContaining('already cached') });
    expect(again.code).toBe(0);
  }, 120_000);

  it('recognises the 429 pattern of a chunks queue without workers', async () => {
    await start({ serverWaitMs: 300, retryAfterSeconds: 1 });
    emulator!.faults.stopWorkers();
    const { code, checks, text } = await doctor([]);
    expect(code).toBe(1);
    const workers = find(checks, 'chunk workers')!;
    expect(workers.level).toBe('fail');
    expect(workers.detail).toMatch(
      /CVAT answered 429 \(Retry-After: 1\) 2 times, after waiting 0\.\d s each: nothing takes chunk builds off the "chunks" queue/,
    );
    expect(workers.fix).toMatch(/cvat_worker_chunks.*backend-worker-chunks/);
    expect(text).not.toContain(DEMO_CREDENTIALS.accessToken);
  }, 60_000);

  it('says when webhooks are configured on the running service but none has arrived, and when one has', async () => {
    await start();
    const secret = 'doctor-webhook-secret-42';
    running = await startService(['--state-dir', join(tmp.path, 'service-state'), '--poll-interval', '1h'], {
      CVAT_URL: emulator!.url,
      CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken,
      CVAT_WEBHOOK_SECRET: secret,
    });
    const listen = new URL(running.url).host;

    const none = await doctor([], { CVAT_WARDEN_LISTEN: listen });
    expect(find(none.checks, 'webhooks')).toMatchObject({
      level: 'warn',
      detail: expect.stringContaining('no delivery has arrived'),
      fix: expect.stringContaining('SMOKESCREEN_OPTS'),
    });

    const body = JSON.stringify({ event: 'ping', webhook_id: 3 });
    const send = (key: string) =>
      fetch(`${running!.url}/webhooks/cvat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-signature-256': `sha256=${createHmac('sha256', key).update(body).digest('hex')}` },
        body,
      });
    expect((await send('not-the-secret')).status).toBe(401);
    const refused = await doctor([], { CVAT_WARDEN_LISTEN: listen });
    expect(find(refused.checks, 'webhooks')).toMatchObject({
      level: 'fail',
      detail: expect.stringContaining('1 webhook deliveries arrived with a wrong signature'),
    });

    expect((await send(secret)).status).toBe(200);
    const arrived = await doctor([], { CVAT_WARDEN_LISTEN: listen });
    expect(find(arrived.checks, 'webhooks')).toMatchObject({ level: 'ok', detail: expect.stringMatching(/^last delivery accepted at \d{4}-.*; 1 refused/) });
    for (const run of [none, refused, arrived]) expect(run.text).not.toContain(secret);
  }, 90_000);

  it('says webhooks are off on a service without a secret, and what to do when no service answers', async () => {
    await start();
    running = await startService(['--state-dir', join(tmp.path, 'service-state'), '--poll-interval', '1h'], {
      CVAT_URL: emulator!.url,
      CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken,
    });
    const off = await doctor([], { CVAT_WARDEN_LISTEN: new URL(running.url).host });
    expect(find(off.checks, 'webhooks')).toMatchObject({ level: 'ok', detail: expect.stringContaining('not configured') });
    const nobody = await doctor([]);
    expect(find(nobody.checks, 'webhooks')).toMatchObject({
      level: 'warn',
      detail: expect.stringContaining('no cvat-warden service answered at http://127.0.0.1:1/status'),
    });
  }, 60_000);
});
