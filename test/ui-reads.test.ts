/**
 * Issue 7 through the public CLI and the service against the emulator: what annotators
 * really read — consensus replicas of a completed parent, rejected jobs, context images
 * (on by default), ground-truth jobs with included_frames, deleted frames — ends warm,
 * nothing else is built and no request gets a 4xx. The oracle is the emulator's own
 * model (`state.uiReadKeys`), never warden code.
 *
 * CVAT sources: replicas share the parent's segment (cvat/apps/engine/task.py
 * `_create_segments_and_jobs`); a job update touches its task only when the aggregated
 * status moves (signals.py `__save_job_handler`); a context image outside the job's
 * segment is a 400 (media_io/frame_provider.py `validate_frame_number`).
 */
import { describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, ManualClock, demoAuth, startEmulator, type Emulator, type TaskSpec } from '../src/emulator/index.js';
import { signBody } from '../src/daemon/webhook.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';
import { warmInProcess } from './support/warm.js';

const dir = useTempDir('warden-ui-reads-');
let emulator: Emulator | undefined;
let running: RunningService | undefined;
closeAfterEach(
  () => [running?.service, emulator],
  () => (running = emulator = undefined),
);

// Basic auth works on every version (personal access tokens only from 2.48).
const env = (): NodeJS.ProcessEnv => ({ CVAT_URL: emulator!.url, CVAT_USERNAME: DEMO_CREDENTIALS.username, CVAT_PASSWORD: DEMO_CREDENTIALS.password });

/** Images with context images on some frames, GT frames, deleted frames, replicas with their own states. */
function tasks(consensus: boolean): TaskSpec[] {
  const related = Array.from({ length: 12 }, (_, f) => (f % 3 === 0 ? 2 : 0));
  return [
    {
      id: 1,
      size: 12,
      chunkSize: 2,
      segmentSize: 4,
      relatedFiles: related,
      groundTruthFrames: [1, 6, 9],
      deletedFrames: [4, 5],
      jobStates: ['completed', 'rejected', 'completed'],
      ...(consensus ? { consensusReplicas: 2, replicaStates: [['in progress', 'new'], undefined, ['completed', 'completed']] } : {}),
    },
    // 3D: every frame has context images (Supervisely/KITTI layout).
    { id: 2, mediaType: 'pointcloud', size: 5, chunkSize: 2, segmentSize: 3, relatedFiles: [1, 1, 1, 1, 1] },
    { id: 3, mediaType: 'video', size: 30, chunkSize: 10, segmentSize: 15, jobStates: ['in progress', 'completed'] },
    // Honeypots (gt_pool, 2.24+): the GT job is a RANGE over the pool, placeholders in every job.
    // Audio (2.73): chunk_size is a duration; no context images (CVAT answers 400).
    ...(consensus
      ? [
          { id: 5, mediaType: 'audio' as const, size: 6914 },
          { id: 6, mediaType: 'audio' as const, size: 9000, chunkSize: 2500 },
        ]
      : []),
    ...(consensus
      ? [
          {
            id: 4,
            size: 16,
            chunkSize: 3,
            segmentSize: 4,
            honeypots: { pool: 4, perJob: 1 },
            relatedFiles: Array.from({ length: 16 }, (_, f) => (f % 2 === 0 ? 1 : 0)),
          },
        ]
      : []),
  ];
}

function requestsWith4xx(e: Emulator): string[] {
  return e.state.requestLog.filter((r) => r.status >= 400 && r.status < 500).map((r) => `${r.status} ${r.path}${r.query}`);
}

describe.each([
  ['2.73.0', true],
  ['2.14.4', false],
])('warm --all against the emulator (CVAT %s)', (version, consensus) => {
  it('warms every chunk and context image the UI reads, builds nothing else, no 4xx', async () => {
    emulator = await startEmulator({ version, tasks: tasks(consensus), auth: demoAuth(), buildTimeMs: 1 });
    const reads = emulator.state.uiReadKeys();
    const contextKeys = [...reads].filter((k) => k.startsWith('context_image'));
    expect(contextKeys.length).toBeGreaterThanOrEqual(9);
    const run = await warmInProcess(['--all', '--state-dir', dir.path, '--json'], env());
    expect(run.code, run.logs).toBe(0);
    expect([...emulator.state.coldUiReadKeys()]).toEqual([]);
    expect(Object.keys(emulator.state.buildsByKey()).filter((k) => !reads.has(k))).toEqual([]);
    expect(requestsWith4xx(emulator)).toEqual([]);
    // One request per data id and frame: as many context requests as context keys.
    expect(emulator.state.count('job_context_image')).toBe(contextKeys.length);
  });

  it('--no-context-images leaves them out', async () => {
    emulator = await startEmulator({ version, tasks: tasks(consensus), auth: demoAuth(), buildTimeMs: 1 });
    const run = await warmInProcess(['--all', '--state-dir', dir.path, '--no-context-images'], env());
    expect(run.code, run.logs).toBe(0);
    expect(emulator.state.count('job_context_image')).toBe(0);
    expect([...emulator.state.coldUiReadKeys()].every((k) => k.startsWith('context_image'))).toBe(true);
  });
});

describe('warm: the first chunk requested is the one the UI opens', () => {
  it('is the chunk holding the job’s first non-deleted frame', async () => {
    emulator = await startEmulator({ tasks: [{ id: 1, size: 8, chunkSize: 2, deletedFrames: [0, 1, 2] }], auth: demoAuth(), buildTimeMs: 1 });
    const run = await warmInProcess(['--all', '--state-dir', dir.path, '--concurrency', '1'], env());
    expect(run.code, run.logs).toBe(0);
    const chunks = emulator.state.requestLog.filter((r) => r.kind === 'job_chunk').map((r) => new URLSearchParams(r.query).get('index'));
    expect(chunks).toEqual(['1', '0', '2', '3']);
  });
});

describe('run against the emulator (CVAT 2.73)', () => {
  it('keeps replicas of a completed parent and rejected jobs warm, and warms a reopened job within 4 polls without webhooks', async () => {
    emulator = await startEmulator({ tasks: tasks(true), auth: demoAuth(), buildTimeMs: 1 });
    running = await startService(['--state-dir', dir.path, '--poll-interval', '200ms'], env(), { discoveryFullEvery: 1000 });
    await waitFor('every live read warm', () => emulator!.state.coldUiReadKeys({ liveOnly: true }).size === 0, { timeoutMs: 20_000 });
    // Replicas 2 and 3 of job 1 (completed) are live: job 1's segment is warm.
    expect(emulator.deployment.jobs.get(1)?.state).toBe('completed');
    expect(emulator.state.isCached(`segment_1_chunk_0_0`)).toBe(true);
    // Completed-only segments are not warmed by the service.
    const coldAll = emulator.state.coldUiReadKeys();
    expect(coldAll.size).toBeGreaterThan(0);
    expect(requestsWith4xx(emulator)).toEqual([]);

    // Reopen task 3's completed job 2 (video, segment 2): its date moves, the task's does not.
    const job = emulator.deployment.tasks.get(3)!.jobs.find((j) => j.state === 'completed')!;
    const reopenedKey = `segment_${job.segmentId}_chunk_0_0`;
    expect(emulator.state.isCached(reopenedKey)).toBe(false);
    const taskDate = emulator.deployment.tasks.get(3)!.updatedMs;
    // The job's new date must differ from the task's: wait for the millisecond clock to move, not a fixed time.
    await waitFor('the clock to move past the task date', () => Date.now() > taskDate, { intervalMs: 1 });
    emulator.updateJob(job.id, { state: 'in progress' });
    expect(emulator.deployment.tasks.get(3)!.updatedMs).toBe(taskDate);
    await waitFor('reopened job warm', () => emulator!.state.coldUiReadKeys({ liveOnly: true }).size === 0, { timeoutMs: 20_000, intervalMs: 20 });
    expect(emulator.state.isCached(reopenedKey)).toBe(true);
    expect(running.logs()).toContain('jobs reopened in CVAT');

    // A ground-truth job added later (the task's date stays) is planned.
    const gt = emulator.addGroundTruthJob(3, [2, 17, 29]);
    expect(emulator.deployment.tasks.get(3)!.updatedMs).toBe(taskDate);
    await waitFor('new GT job warm', () => emulator!.state.isCached(`segment_${gt.segmentId}_chunk_0_0`), { timeoutMs: 20_000 });
    expect(requestsWith4xx(emulator)).toEqual([]);
  });

  it('drops a job completed in CVAT, and forgets a deleted GT job at the full listing (jobs.count moved)', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 1));
    emulator = await startEmulator({
      clock,
      tasks: [{ id: 1, size: 20, chunkSize: 5, segmentSize: 10, groundTruthFrames: [3, 13] }],
      auth: demoAuth(),
      buildTimeMs: 1,
    });
    running = await startService(['--state-dir', dir.path, '--poll-interval', '100ms'], env(), { clock, discoveryFullEvery: 3, coldThresholdMs: 0 });
    await waitFor('every live read warm', () => emulator!.state.coldUiReadKeys({ liveOnly: true }).size === 0, { timeoutMs: 20_000 });
    const status = async () => (await fetch(`${running!.url}/status`)).json() as Promise<{ discovery: { jobs: number } }>;
    await waitFor('3 jobs known', async () => (await status()).discovery.jobs === 3, { timeoutMs: 10_000 });
    clock.advance(1000);
    emulator.updateJob(1, { state: 'completed' });
    const gt = emulator.deployment.tasks.get(1)!.jobs.find((j) => j.type === 'ground_truth')!;
    emulator.removeJob(gt.id);
    expect(emulator.deployment.tasks.get(1)!.updatedMs).toBe(Date.UTC(2026, 10, 1));
    await waitFor('GT job forgotten', async () => (await status()).discovery.jobs === 2, { timeoutMs: 10_000 });
    // A day later every copy has expired: the pass rebuilds job 2's segment, not job 1's (completed).
    clock.advance(25 * 3_600_000);
    await running.service.warmNow();
    expect(emulator.state.coldUiReadKeys({ liveOnly: true }).size).toBe(0);
    expect(emulator.state.isCached('segment_1_chunk_0_0')).toBe(false);
    expect(emulator.state.isCached('segment_2_chunk_0_0')).toBe(true);
    expect(requestsWith4xx(emulator)).toEqual([]);
  });
  it('warms a job reopened in CVAT at once on a signed update:job webhook (polling far off)', async () => {
    emulator = await startEmulator({
      tasks: [{ id: 1, size: 20, chunkSize: 5, segmentSize: 10, jobStates: ['new', 'completed'] }],
      auth: demoAuth(),
      buildTimeMs: 1,
    });
    const secret = 'webhook-secret-for-jobs';
    running = await startService(['--state-dir', dir.path, '--poll-interval', '1h'], { ...env(), CVAT_WEBHOOK_SECRET: secret });
    await waitFor('first pass', () => emulator!.state.coldUiReadKeys({ liveOnly: true }).size === 0, { timeoutMs: 20_000 });
    expect(emulator.state.isCached('segment_2_chunk_0_0')).toBe(false);
    const job = emulator.updateJob(2, { state: 'rejected' });
    const body = JSON.stringify({
      event: 'update:job',
      job: { id: job.id, task_id: 1, state: 'rejected', updated_date: new Date(job.updatedMs).toISOString() },
      before_update: { state: 'completed' },
      webhook_id: 3,
    });
    const answer = await fetch(`${running.url}/webhooks/cvat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-signature-256': signBody(body, secret) },
      body,
    });
    expect(answer.status).toBe(200);
    await waitFor('rejected job warm', () => emulator!.state.isCached('segment_2_chunk_0_0'), { timeoutMs: 10_000 });
    expect(running.logs()).not.toContain(secret);
  });
});
