/**
 * `cvat-warden run` in-process against the emulator: warms every task, keeps it warm
 * across a simulated 48 h, catches a deletion on /metrics, survives CVAT
 * restarting, ignores forged webhooks, and never shows the token.
 */
import { createHmac } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, ManualClock, demoDeployment, prepareDemoShare, startEmulator, syntheticDeployment, type Emulator } from '../src/emulator/index.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const TOKEN = DEMO_CREDENTIALS.accessToken;
const HOUR = 3_600_000;
const tmp = useTempDir('warden-service-');
let emulator: Emulator | undefined;
let running: RunningService | undefined;

closeAfterEach(
  () => [running?.service, emulator],
  () => (running = emulator = undefined),
);

function env(): NodeJS.ProcessEnv {
  return { CVAT_URL: emulator!.url, CVAT_ACCESS_TOKEN: TOKEN };
}

describe('cvat-warden run', () => {
  it('warms every task and keeps it warm across a simulated 48 h, rebuilding each chunk as its cached copy expires', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 1));
    emulator = await startEmulator({
      tasks: syntheticDeployment({ tasks: 3, framesPerTask: 200, groundTruthFrames: 10, consensusReplicas: 1 }),
      auth: demoAuthWithToken(),
      clock,
      buildTimeMs: 30,
    });
    running = await startService(['--state-dir', tmp.path, '--concurrency', '2', '--warm-completed'], env(), { clock, coldThresholdMs: 15 });
    await waitFor('first warm pass', () => emulator!.state.coldUiChunkKeys().size === 0);
    const ui = [...emulator.state.uiChunkKeys()];
    expect(await running.metric('cvat_warden_chunks_expiring_soon')).toBe(0);
    for (let elapsed = 3 * HOUR; elapsed <= 48 * HOUR; elapsed += 3 * HOUR) {
      clock.advance(3 * HOUR);
      // CVAT drops every copy 24 h after building it, whatever was read: the only cold
      // moments are the checks that land on an expiry, and the pass rebuilds them all.
      const coldBefore = emulator.state.coldUiChunkKeys().size;
      expect(coldBefore, `cold at ${elapsed / HOUR} h before the pass`).toBe(elapsed % (24 * HOUR) === 0 ? ui.length : 0);
      const result = await running.service.warmNow();
      expect(emulator.state.coldUiChunkKeys().size, `cold at ${elapsed / HOUR} h after the pass`).toBe(0);
      expect(result.failed + result.stuck).toBe(0);
      // Nothing is requested while its cached copy is still good.
      expect(result.warm, `requests at ${elapsed / HOUR} h`).toBe(coldBefore);
      if (elapsed === 21 * HOUR) expect(await running.metric('cvat_warden_chunks_expiring_soon')).toBe(ui.length);
    }
    // Built at 0 h, 24 h and 48 h: never twice for one expiry, never skipped.
    for (const key of ui) expect(emulator.state.buildCount(key), key).toBe(3);
    expect(await running.metric('cvat_warden_chunks{state="warm"}')).toBe(ui.length);
    expect(await running.metric('cvat_warden_chunks{state="pending"}')).toBe(0);
    expect(await running.metric('cvat_warden_cvat_up')).toBe(1);
  });

  it('catches a share file deletion on /metrics, naming the task in /status', async () => {
    const share = join(tmp.path, 'share');
    await prepareDemoShare(share);
    const demo = demoDeployment(share);
    emulator = await startEmulator({ ...demo, buildTimeMs: 1 });
    running = await startService(['--state-dir', join(tmp.path, 'state'), '--share-dir', share], env(), { guard: { rootCheckIntervalMs: 200 } });
    await waitFor('guard indexed', async () => ((await running!.metric('cvat_warden_share_files_expected')) ?? 0) > 0);
    expect(await running.metric('cvat_warden_share_files_missing')).toBe(0);
    rmSync(join(share, 'images/image_1.jpg'));
    // Seen through the watch, no scan needed (how fast is measured by bench/guard.mjs, not asserted here).
    await waitFor('missing metric', async () => ((await running!.metric('cvat_warden_share_files_missing')) ?? 0) === 1, { timeoutMs: 20_000 });
    expect(await running.metric('cvat_warden_task_share_files_missing{task_id="1"}')).toBe(1);
    const status = await waitFor('status problem', async () => {
      const body = (await (await fetch(`${running!.url}/status`)).json()) as { share: { openProblems: Array<{ path: string; taskIds: number[] }> } };
      return body.share.openProblems.find((p) => p.path === 'images/image_1.jpg');
    });
    expect(status.taskIds).toEqual([1]);
  });

  it('re-warms a chunk that failed while its share file was missing, as soon as the file is back', async () => {
    const share = join(tmp.path, 'share');
    await prepareDemoShare(share);
    const file = join(share, 'images/image_2.jpg');
    const bytes = readFileSync(file);
    rmSync(file);
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    running = await startService(['--state-dir', join(tmp.path, 'state'), '--share-dir', share, '--warm-completed'], env(), {
      guard: { rootCheckIntervalMs: 200 },
      retry: { serverErrorDelayMs: 10 },
    });
    await waitFor('first pass over', async () => ((await running!.metric('cvat_warden_chunks{state="failed"}')) ?? 0) > 0);
    const cold = emulator.state.coldUiChunkKeys().size;
    expect(cold).toBeGreaterThan(0);
    expect(await running.metric('cvat_warden_share_files_missing')).toBe(1);
    writeFileSync(file, bytes);
    await waitFor('re-warmed after restore', () => emulator!.state.coldUiChunkKeys().size === 0, { timeoutMs: 10_000 });
    await waitFor('alert resolved', async () => (await running!.metric('cvat_warden_share_files_missing')) === 0);
    expect(running.logs()).toMatch(/share files back: re-warming their chunks/);
  });

  it('re-warms a job on the next poll when CVAT rebuilt its segment (chunks_updated_date moved)', async () => {
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 2, framesPerTask: 200 }), auth: demoAuthWithToken(), buildTimeMs: 1 });
    running = await startService(['--state-dir', tmp.path, '--poll-interval', '100ms', '--cold-threshold', '0ms'], env());
    await waitFor('warm', () => emulator!.state.coldUiChunkKeys().size === 0);
    const job = [...emulator.deployment.jobs.values()].find((j) => j.type === 'annotation' && j.taskId === 2)!;
    emulator.touchSegment(job.id);
    expect(emulator.state.coldUiChunkKeys().size).toBeGreaterThan(0);
    await waitFor('job re-warmed', () => emulator!.state.coldUiChunkKeys().size === 0, { timeoutMs: 10_000 });
    expect(running.logs()).toMatch(/chunks rebuilt by CVAT since the last pass/);
    // --cold-threshold 0 counts every answer as a build: the shallow canary cannot tell a
    // cached chunk then, so it stays blind instead of calling every poll a wipe.
    const status = (await (await fetch(`${running.url}/status`)).json()) as { cache: { wipesDetected: number; canary: { state: string } | null } };
    expect(status.cache.wipesDetected).toBe(0);
    expect(status.cache.canary?.state ?? 'blind').toBe('blind');
    expect(running.logs()).not.toMatch(/the cache was wiped or invalidated/);
  });

  it('keeps running while CVAT restarts: reports cvat_up 0, then resumes and finishes', async () => {
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 2, framesPerTask: 300 }), auth: demoAuthWithToken(), buildTimeMs: 15 });
    running = await startService(['--state-dir', tmp.path, '--poll-interval', '200ms'], env(), { retry: { backoffBaseMs: 20, backoffMaxMs: 100 } });
    await waitFor('some chunks warm', () => emulator!.state.uiChunkKeys().size - emulator!.state.coldUiChunkKeys().size >= 5);
    await emulator.stop();
    await waitFor('cvat_up 0', async () => (await running!.metric('cvat_warden_cvat_up')) === 0);
    const ready = await fetch(`${running.url}/healthz`);
    expect(ready.status).toBe(200);
    await emulator.start();
    await waitFor('all warm after restart', () => emulator!.state.coldUiChunkKeys().size === 0, { timeoutMs: 30_000 });
    await waitFor('cvat_up 1', async () => (await running!.metric('cvat_warden_cvat_up')) === 1);
  });

  it('rejects a forged webhook without any effect, and acts on a signed one', async () => {
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 1, framesPerTask: 50 }), auth: demoAuthWithToken(), buildTimeMs: 1 });
    const secret = 'webhook-secret-123456';
    running = await startService(['--state-dir', tmp.path, '--poll-interval', '1h'], { ...env(), CVAT_WEBHOOK_SECRET: secret });
    await waitFor('first pass', () => emulator!.state.coldUiChunkKeys().size === 0);
    const added = emulator.addTask({ id: 99, name: 'new task', size: 40, chunkSize: 10 });
    const body = JSON.stringify({
      event: 'completed:request[create:task]',
      request: { id: 'r1', status: 'finished', operation: { type: 'create:task', target: 'task', task_id: added.id } },
      webhook_id: 1,
    });
    const send = (signature: string | undefined) =>
      fetch(`${running!.url}/webhooks/cvat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(signature ? { 'x-signature-256': signature } : {}) },
        body,
      });
    const forged = await send(`sha256=${createHmac('sha256', 'not-the-secret').update(body).digest('hex')}`);
    expect(forged.status).toBe(401);
    expect((await send(undefined)).status).toBe(401);
    expect(emulator.state.coldUiChunkKeys().size).toBeGreaterThan(0);
    const signed = await send(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
    expect(signed.status).toBe(200);
    await waitFor('new task warmed through the webhook', () => emulator!.state.coldUiChunkKeys().size === 0, { timeoutMs: 5_000 });
    // Events reach the service in arrival order, so a forged one handed on would have been logged before the signed one.
    const handedOn = running
      .logs()
      .split('\n')
      .filter((line) => line.includes('"msg":"webhook"'));
    expect(handedOn).toHaveLength(1);
    expect(handedOn[0]).toContain('"taskId":99');
    expect(await running.metric('cvat_warden_webhook_deliveries_total{outcome="rejected_signature"}')).toBe(2);
  });

  it('never shows the token or the webhook secret in logs, metrics or /status', async () => {
    const secret = 'webhook-secret-abcdef';
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 1, framesPerTask: 60 }), auth: demoAuthWithToken(), buildTimeMs: 1 });
    running = await startService(['--state-dir', tmp.path], { ...env(), CVAT_WEBHOOK_SECRET: secret });
    // The emulator caches the last chunk before its answer reaches the pass: wait for the pass to end.
    await waitFor('warm pass done', () => emulator!.state.coldUiChunkKeys().size === 0 && running!.logs().includes('warm pass done'));
    const outputs = [
      running.logs(),
      await running.metricsText(),
      await (await fetch(`${running.url}/status`)).text(),
      await (await fetch(`${running.url}/readyz`)).text(),
    ];
    expect(outputs[0]).toContain('warm pass done');
    for (const text of outputs) {
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(secret);
    }
  });
});

function demoAuthWithToken() {
  return { users: [{ username: 'admin', isAdmin: true, accessTokens: [TOKEN] }] };
}
