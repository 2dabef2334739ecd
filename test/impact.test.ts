/**
 * `cvat-warden impact` as an admin runs it before a clean-up: the built CLI against the
 * emulator's demo deployment over a real copy of CVAT's sample share. The answer comes
 * from CVAT's task data (no share scan): a path already deleted still names its readers.
 * Typed paths are resolved inside the share and never through a symlink (lesson 2).
 */
import { mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { Ledger } from '../src/warm/ledger.js';
import { runCli } from './support/cli.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('warden-impact-');
let emulator: Emulator | undefined;
let share: string;
beforeEach(async () => {
  share = join(tmp.path, 'share');
  await prepareDemoShare(share);
});
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

const env = () => ({ CVAT_URL: emulator!.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken, CVAT_WARDEN_STATE_DIR: join(tmp.path, 'state') });

interface ImpactJson {
  files: number;
  tasks: Array<{
    taskId: number;
    status: string;
    completed: boolean;
    files: number;
    frames: number;
    sampleFiles: string[];
    jobs: Array<{ jobId: number; type: string; state: string; stage: string; assignee: string | null; chunks: number[]; expiresAt: string }>;
    backup: { good: boolean; file: string | null } | null;
  }>;
  blockingTasks: number[];
  ledgerNote: string | null;
}

describe('cvat-warden impact', () => {
  it('names every task and job that reads a directory, with chunks, job state and stage, and exits 1 (tasks not completed)', async () => {
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    const run = await runCli(['impact', 'images', '--share-dir', share, '--json'], env());
    expect(run.code, run.stderr).toBe(1);
    const out = JSON.parse(run.stdout) as ImpactJson;
    // images/ holds task 1's six frames and task 2's four frames with their context images.
    expect(out.tasks.map((t) => t.taskId)).toEqual([1, 2]);
    expect(out.blockingTasks).toEqual([1, 2]);
    const [one, two] = out.tasks;
    expect(one!.files).toBe(6);
    expect(one!.status).toBe('annotation');
    // Task 1: segments of 4 frames, chunks of 2: job of frames 0-3 reads chunks 0 and 1, the next chunk 0; the GT job too.
    expect(one!.jobs.filter((j) => j.type === 'annotation').map((j) => [j.chunks, j.state, j.stage])).toEqual([
      [[0, 1], 'new', 'annotation'],
      [[0], 'new', 'annotation'],
    ]);
    expect(one!.jobs.some((j) => j.type === 'ground_truth')).toBe(true);
    expect(two!.files).toBeGreaterThan(4); // frames + context images
    expect(two!.sampleFiles.some((f) => f.includes('related_images/'))).toBe(true);
    // No warm yet: no ledger to date the cached copies, and the output says so.
    expect(one!.jobs.every((j) => j.expiresAt === 'unknown')).toBe(true);
    expect(run.stdout).not.toContain(DEMO_CREDENTIALS.accessToken);

    // One context image only: the frame it belongs to, nothing else.
    const ctxImage = await runCli(['impact', 'images/with_related/related_images/image_0_png', '--share-dir', share, '--json'], env());
    const ctxOut = JSON.parse(ctxImage.stdout) as ImpactJson;
    expect(ctxOut.tasks.map((t) => [t.taskId, t.frames])).toEqual([[2, 1]]);

    // A file already deleted is still answered (from CVAT's data, not the share).
    rmSync(join(share, 'videos/video_1.mp4'));
    const video = await runCli(['impact', join(share, 'videos/video_1.mp4'), '--share-dir', share], env());
    expect(video.code, video.stderr).toBe(1);
    expect(video.stdout).toMatch(/task 3 "share: video": status annotation \(not completed\)/);
    expect(video.stdout).toMatch(/job \d+ \(annotation\): state new, stage annotation, assignee -; chunks \[0,1\]/);
    expect(video.stdout).toContain('chunk expiry unknown');

    // A directory no task reads: exit 0.
    mkdirSync(join(share, 'unused'));
    const none = await runCli(['impact', 'unused', '--share-dir', share], env());
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toContain('No task in scope reads them');
  }, 60_000);

  it('--task lists what one task reads; with --backup-dir it says whether a good backup covers it', async () => {
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    const backups = join(tmp.path, 'backups');
    mkdirSync(join(backups, 'task-4'), { recursive: true });
    // A kept backup as BackupStore records it (src/backup/store.ts): the zip and its sidecar.
    writeFileSync(join(backups, 'task-4', '20261201T000000000Z.zip'), 'zip');
    const sidecar = { taskId: 4, at: Date.UTC(2026, 11, 1), bytes: 3, mediaFiles: 3, taskUpdatedDate: null, restorable: true };
    writeFileSync(join(backups, 'task-4', '20261201T000000000Z.json'), JSON.stringify(sidecar));
    const run = await runCli(['impact', '--task', '4', '--task', '1', '--share-dir', share, '--backup-dir', backups, '--json'], env());
    expect(run.code, run.stderr).toBe(1);
    const out = JSON.parse(run.stdout) as ImpactJson;
    const four = out.tasks.find((t) => t.taskId === 4)!;
    expect(four.files).toBeGreaterThan(3); // point clouds and their context images
    expect(four.backup).toMatchObject({ good: true, file: join(backups, 'task-4', '20261201T000000000Z.zip') });
    expect(out.tasks.find((t) => t.taskId === 1)!.backup).toMatchObject({ good: false, file: null });
  }, 60_000);

  it('dates the cached chunks from the warm ledger, also while a running service holds it (read without its lock, nothing written)', async () => {
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    const first = JSON.parse((await runCli(['impact', 'images/image_0.jpg', '--share-dir', share, '--json'], env())).stdout) as ImpactJson;
    const jobId = first.tasks[0]!.jobs.find((j) => j.type === 'annotation')!.jobId;
    // Another holder of the state directory (what `run` is): this process keeps the lock.
    const ledger = await Ledger.open(join(tmp.path, 'state'), { durable: false });
    try {
      const builtAt = Date.now() - 3_600_000;
      ledger.record(`j${jobId}/compressed`, 0, { confirmedAt: builtAt, outcome: 'warm' });
      await ledger.flush();
      const files = () => readdirSync(join(tmp.path, 'state')).map((n) => `${n}:${statSync(join(tmp.path, 'state', n)).size}`);
      const before = files();
      const run = await runCli(['impact', 'images/image_0.jpg', '--share-dir', share, '--json'], env());
      expect(run.code, run.stderr).toBe(1);
      const out = JSON.parse(run.stdout) as ImpactJson;
      // CVAT keeps a built chunk 24 h (cache.py, CVAT_CHUNK_CACHE_TTL): expiry = build + 24 h.
      expect(out.tasks[0]!.jobs.find((j) => j.jobId === jobId)!.expiresAt).toBe(new Date(builtAt + 24 * 3_600_000).toISOString());
      expect(out.ledgerNote).toMatch(/read beside the service that holds it/);
      expect(files()).toEqual(before);
    } finally {
      await ledger.close();
    }
  }, 60_000);

  it('exits 0 when every task that reads the path is completed', async () => {
    emulator = await startEmulator({
      ...demoDeployment(share),
      buildTimeMs: 1,
      tasks: [
        {
          id: 1,
          name: 'done',
          storage: 'share',
          frames: ['images/image_0.jpg', 'images/image_1.jpg'],
          chunkSize: 2,
          jobStates: ['completed'],
          organization: 'demo',
        },
      ],
    });
    const run = await runCli(['impact', 'images/image_0.jpg', '--share-dir', share, '--json'], env());
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as ImpactJson;
    expect(out.tasks).toMatchObject([{ taskId: 1, status: 'completed', completed: true, files: 1 }]);
    expect(out.tasks[0]!.jobs[0]).toMatchObject({ state: 'completed', stage: 'acceptance', chunks: [0] });
    expect(out.blockingTasks).toEqual([]);
  }, 60_000);

  it('refuses paths that leave the share, go through a symlink or are outside it: clear error, exit 2, CVAT not asked', async () => {
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    const outside = join(tmp.path, 'outside');
    mkdirSync(outside);
    symlinkSync(join(share, 'images'), join(share, 'images-link')); // inside → inside: still not followed
    symlinkSync(outside, join(share, 'escape'));
    const cases: Array<[string, RegExp]> = [
      ['../outside', /"\.\." segments are not accepted/],
      ['images/../../outside', /"\.\." segments are not accepted/],
      [join(share, '..', 'outside'), /is outside the share directory|"\.\." segments/],
      [outside, /is outside the share directory/],
      ['images-link/image_0.jpg', /goes through the symlink "images-link": not followed/],
      ['escape', /goes through the symlink "escape": not followed/],
      [join(share, 'escape', 'x.jpg'), /goes through the symlink "escape"/],
    ];
    const before = emulator.state.count();
    for (const [input, message] of cases) {
      const run = await runCli(['impact', input, '--share-dir', share], env());
      expect(run.code, `${input}: ${run.stderr}`).toBe(2);
      expect(run.stderr, input).toMatch(message);
      expect(run.stdout, input).toBe('');
    }
    expect(emulator.state.count()).toBe(before);
    const nothing = await runCli(['impact', '--share-dir', share], env());
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/impact needs share paths or --task ID/);
  }, 60_000);
});
