/**
 * A chunk worker without the share mount (cvat-ai/cvat #9146, #9453): the files are on the
 * host, CVAT's answer is the same bare 500 it gives for a deleted file. The emulator's mode
 * (src/emulator/worker-mount.ts) follows CVAT 2.73's source:
 *   cvat/apps/engine/cache.py  wait_for_rq_job → _build_chunk_job_failure_exception re-raises
 *                              the worker's FileNotFoundError in the web process;
 *   cvat/apps/engine/views.py  _DataGetter.__call__ does not catch it;
 *   cvat/apps/events/handlers.py handle_viewset_exception returns DRF's None for it, so
 *                              Django sends "Server Error (500)" (text/html).
 * doctor and the service's warm failure reason name the worker's mount; a file really
 * missing is still named as missing.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { WORKER_MOUNT_MESSAGE } from '../src/guard/index.js';
import { runCli } from './support/cli.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const TOKEN = DEMO_CREDENTIALS.accessToken;
const tmp = useTempDir('warden-worker-mount-');
let emulator: Emulator | undefined;
let running: RunningService | undefined;
closeAfterEach(
  () => [running?.service, emulator],
  () => (running = emulator = undefined),
);
const env = () => ({ CVAT_URL: emulator!.url, CVAT_ACCESS_TOKEN: TOKEN, CVAT_WARDEN_STATE_DIR: join(tmp.path, 'state') });

async function shareAndEmulator(workerWithoutShare: boolean): Promise<string> {
  const share = join(tmp.path, 'share');
  await prepareDemoShare(share);
  emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1, chunkWorkerWithoutShare: workerWithoutShare });
  return share;
}

interface DoctorJson {
  ok: boolean;
  checks: Array<{ name: string; level: string; detail: string; fix?: string }>;
}
const mountCheck = (out: DoctorJson) => out.checks.find((c) => c.name === 'chunk worker share mount');

describe('chunk worker without the share mount', () => {
  it("the emulator answers a share task's chunk with Django's bare 500 page while the file is on the host; local tasks still build", async () => {
    await shareAndEmulator(true);
    const headers = { Authorization: `Bearer ${TOKEN}`, 'X-Organization': 'demo' };
    const share = await fetch(`${emulator!.url}/api/jobs/1/data?type=chunk&quality=compressed&index=0`, { headers });
    expect(share.status).toBe(500);
    expect(share.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await share.text()).toContain('<h1>Server Error (500)</h1>');
    const localJob = [...emulator!.deployment.jobs.values()].find((j) => j.taskId === 6 && j.type === 'annotation')!;
    const local = await fetch(`${emulator!.url}/api/jobs/${localJob.id}/data?type=chunk&quality=compressed&index=0`, { headers });
    expect(local.status).toBe(200);
    await local.arrayBuffer();
  });

  it('doctor names the worker mount, with the compose and Helm keys; passes with the mount; names a really missing file as missing', async () => {
    let share = await shareAndEmulator(true);
    const broken = await runCli(['doctor', '--share-dir', share, '--json'], env(), { timeoutMs: 90_000 });
    expect(broken.code, broken.stderr).toBe(1);
    const check = mountCheck(JSON.parse(broken.stdout) as DoctorJson)!;
    expect(check.level).toBe('fail');
    expect(check.detail).toContain(WORKER_MOUNT_MESSAGE);
    expect(check.detail).toMatch(/present and readable here, e\.g\. images\/image_0\.jpg/);
    expect(check.fix).toContain('cvat_worker_chunks');
    expect(check.fix).toContain('cvat.backend.worker.chunks.additionalVolumes');
    const table = await runCli(['doctor', '--share-dir', share], env(), { timeoutMs: 90_000 });
    expect(table.stdout).toContain(WORKER_MOUNT_MESSAGE);
    await emulator!.close();

    share = await shareAndEmulator(false);
    const good = JSON.parse((await runCli(['doctor', '--share-dir', share, '--json'], env(), { timeoutMs: 90_000 })).stdout) as DoctorJson;
    expect(mountCheck(good)).toMatchObject({ level: 'ok', detail: expect.stringMatching(/the chunk worker reads the share/) });

    rmSync(join(share, 'images/image_0.jpg'));
    emulator!.clearCache(); // the chunk the run above built would be served from the cache until its TTL
    const missing = JSON.parse((await runCli(['doctor', '--share-dir', share, '--json'], env(), { timeoutMs: 90_000 })).stdout) as DoctorJson;
    const missingCheck = mountCheck(missing)!;
    expect(missingCheck.level).toBe('fail');
    expect(missingCheck.detail).toContain('source file missing from the share: images/image_0.jpg');
    expect(missingCheck.detail).not.toContain(WORKER_MOUNT_MESSAGE);
  }, 180_000);

  it("the service's warm failure reason and its log name the worker mount", async () => {
    const share = await shareAndEmulator(true);
    running = await startService(['--state-dir', join(tmp.path, 'state'), '--share-dir', share, '--warm-completed'], env(), {
      retry: { serverErrorDelayMs: 10 },
    });
    await waitFor('a failed chunk', async () => ((await running!.metric('cvat_warden_chunks{state="failed"}')) ?? 0) > 0);
    const failed = running
      .logs()
      .split('\n')
      .filter((line) => line.includes('"chunk failed"') || line.includes('chunk failed'));
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.some((line) => line.includes(WORKER_MOUNT_MESSAGE))).toBe(true);
    // Local tasks are not share tasks: their chunks warm and are never blamed on the mount.
    expect(failed.every((line) => !/"taskId":[567]\b/.test(line))).toBe(true);
    // Nothing is missing on the host: the guard raises no alert.
    expect(await running.metric('cvat_warden_share_files_missing')).toBe(0);
  }, 60_000);
});
