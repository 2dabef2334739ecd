/**
 * The guard inside `run` names every job that reads an affected segment — consensus
 * replicas included, since annotators work in them — and maps a ground-truth job by its
 * included_frames exactly as `check` does (GT job meta is fetched on every version; without
 * it the GT job looked like a range over the whole task and got chunk indexes that do not
 * exist). Replicas share their parent's segment: cvat/apps/engine/task.py
 * `_create_segments_and_jobs`.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoAuth, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { runCli } from './support/cli.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const dir = useTempDir('warden-guard-jobs-');
let emulator: Emulator | undefined;
let running: RunningService | undefined;
closeAfterEach(
  () => [running?.service, emulator],
  () => (running = emulator = undefined),
);

interface Job {
  jobId: number;
  type: string;
  chunks: number[];
}

describe('guard: jobs of an affected segment', () => {
  it('names replicas and maps the GT job like check does', async () => {
    const share = join(dir.path, 'share');
    await prepareDemoShare(share);
    const images = Array.from({ length: 6 }, (_, i) => `images/image_${i}.jpg`);
    emulator = await startEmulator({
      auth: demoAuth(),
      buildTimeMs: 1,
      shareDir: share,
      // Job 1 (completed) + replicas 2, 3 on frames 0–3; job 4 + replicas 5, 6 on 4–5; GT job 7 on frames 1 and 4.
      tasks: [
        {
          id: 1,
          storage: 'share',
          frames: images,
          chunkSize: 2,
          segmentSize: 4,
          consensusReplicas: 2,
          groundTruthFrames: [1, 4],
          jobStates: ['completed', 'new'],
          replicaStates: [['in progress', 'new']],
        },
      ],
    });
    const env = { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken };
    running = await startService(['--state-dir', join(dir.path, 'state'), '--share-dir', share], env, { guard: { rootCheckIntervalMs: 200 } });
    await waitFor('guard indexed', async () => ((await running!.metric('cvat_warden_share_files_expected')) ?? 0) === 6);
    rmSync(join(share, 'images/image_1.jpg'));
    const problem = await waitFor('problem in /status', async () => {
      const body = (await (await fetch(`${running!.url}/status`)).json()) as {
        share: { openProblems: Array<{ path: string; tasks: Array<{ jobs: Job[] }> }> };
      };
      return body.share.openProblems.find((p) => p.path === 'images/image_1.jpg');
    });
    const runJobs = problem.tasks[0]!.jobs.map(({ jobId, type, chunks }) => ({ jobId, type, chunks }));
    expect(runJobs).toEqual([
      { jobId: 1, type: 'annotation', chunks: [0] },
      { jobId: 2, type: 'consensus_replica', chunks: [0] },
      { jobId: 3, type: 'consensus_replica', chunks: [0] },
      { jobId: 7, type: 'ground_truth', chunks: [0] },
    ]);
    rmSync(join(share, 'images/image_4.jpg'));
    const second = await waitFor('second problem', async () => {
      const body = (await (await fetch(`${running!.url}/status`)).json()) as {
        share: { openProblems: Array<{ path: string; tasks: Array<{ jobs: Job[] }> }> };
      };
      return body.share.openProblems.find((p) => p.path === 'images/image_4.jpg');
    });
    // Frame 4 is the GT job's second included frame: chunk 0 (a whole-task range would say 2).
    expect(second.tasks[0]!.jobs.map(({ jobId, chunks }) => ({ jobId, chunks }))).toEqual([
      { jobId: 4, chunks: [0] },
      { jobId: 5, chunks: [0] },
      { jobId: 6, chunks: [0] },
      { jobId: 7, chunks: [0] },
    ]);
    await running.service.close();
    running = undefined;
    const check = await runCli(['check', '--all', '--share-dir', share, '--state-dir', join(dir.path, 'check'), '--json'], env);
    expect(check.code, check.stderr).toBe(1);
    const report = JSON.parse(check.stdout) as { problems: Array<{ taskId: number; jobs: Job[] }> };
    const checkJobs = report.problems.find((p) => p.taskId === 1)!.jobs.map(({ jobId, type, chunks }) => ({ jobId, type, chunks }));
    expect(checkJobs).toEqual([
      { jobId: 1, type: 'annotation', chunks: [0] },
      { jobId: 2, type: 'consensus_replica', chunks: [0] },
      { jobId: 3, type: 'consensus_replica', chunks: [0] },
      { jobId: 4, type: 'annotation', chunks: [0] },
      { jobId: 5, type: 'consensus_replica', chunks: [0] },
      { jobId: 6, type: 'consensus_replica', chunks: [0] },
      { jobId: 7, type: 'ground_truth', chunks: [0] },
    ]);
  });
});
