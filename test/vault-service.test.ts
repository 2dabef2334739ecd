/**
 * `run --vault` end to end with the real watcher and the emulator: a deleted frame is
 * restored byte-identical by `restore --all` (exit 0), the guard's alert clears, and
 * once the cache has expired CVAT (the emulator) builds that chunk again instead of
 * answering 500; --auto-restore puts a file back by itself; a task deleted in CVAT has
 * its links pruned; `run --backup-dir` backs up every share task and reports a backup
 * that failed on a missing share file, naming it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, ManualClock, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { runCli } from './support/cli.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const TOKEN = DEMO_CREDENTIALS.accessToken;
const tmp = useTempDir('warden-vault-');
let emulator: Emulator | undefined;
let running: RunningService | undefined;

closeAfterEach(
  () => [running?.service, emulator],
  () => (running = emulator = undefined),
);

const env = (): NodeJS.ProcessEnv => ({ CVAT_URL: emulator!.url, CVAT_ACCESS_TOKEN: TOKEN });

/** Status of every job chunk of a task, fetched the way the UI reads them. */
async function chunkStatuses(taskId: number): Promise<number[]> {
  const task = emulator!.deployment.tasks.get(taskId)!;
  const statuses: number[] = [];
  for (const job of task.jobs) {
    if (job.type !== 'annotation') continue;
    const seg = emulator!.deployment.segments.get(job.segmentId)!;
    const chunks = Math.ceil((seg.stopFrame - seg.startFrame + 1) / task.chunkSize);
    for (let i = 0; i < chunks; i++) {
      const r = await fetch(`${emulator!.url}/api/jobs/${job.id}/data?type=chunk&index=${i}&quality=compressed`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      await r.arrayBuffer();
      statuses.push(r.status);
    }
  }
  return statuses;
}

describe('run --vault', () => {
  it(
    'a deleted frame is restored byte-identical by restore --all, the alert clears, and CVAT builds the chunk again after the cache expired',
    { timeout: 120_000 },
    async () => {
      const share = join(tmp.path, 'share');
      const vault = join(share, '.cvat-warden-vault');
      await prepareDemoShare(share);
      const clock = new ManualClock();
      emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1, clock });
      running = await startService(['--state-dir', join(tmp.path, 'state'), '--share-dir', share, '--vault', vault, '--warm-completed'], env(), {
        guard: { rootCheckIntervalMs: 200 },
      });
      const frame = join(share, 'images/image_1.jpg');
      const bytes = readFileSync(frame);
      await waitFor('vault built', () => existsSync(join(vault, 'images/image_1.jpg')) && statSync(frame).nlink === 2);
      await waitFor('everything warm', () => emulator!.state.coldUiChunkKeys().size === 0, { timeoutMs: 60_000 });
      // The vault is inside the share and never guarded itself.
      expect(running.logs()).not.toMatch(/"path":"\.cvat-warden-vault/);

      rmSync(frame);
      await waitFor('missing alert', async () => (await running!.metric('cvat_warden_share_files_missing')) === 1, { timeoutMs: 15_000 });
      await waitFor(
        'recoverable said',
        () =>
          /images\/image_1\.jpg.*recoverable from the vault|recoverable from the vault.*images\/image_1\.jpg/.test(running!.logs()) ||
          /"recoverable":true/.test(running!.logs()),
      );
      clock.advance(25 * 3_600_000);
      expect(await chunkStatuses(1)).toContain(500);

      const restore = await runCli(['restore', '--all', '--share-dir', share, '--vault', vault, '--json']);
      expect(restore.code, restore.stderr).toBe(0);
      expect((JSON.parse(restore.stdout) as { restored: Array<{ path: string }> }).restored).toEqual([{ path: 'images/image_1.jpg' }]);
      expect(readFileSync(frame).equals(bytes)).toBe(true);
      await waitFor('alert cleared', async () => (await running!.metric('cvat_warden_share_files_missing')) === 0, { timeoutMs: 15_000 });
      // Counted by the service, which saw the vault's entry come back (the command's own process has exited).
      await waitFor('restore counted', async () => (await running!.metric('cvat_warden_restored_files_total{outcome="restored",trigger="command"}')) === 1);
      expect(await running.metric('cvat_warden_restored_files_total{outcome="restored",trigger="auto"}')).toBe(0);
      clock.advance(25 * 3_600_000);
      expect((await chunkStatuses(1)).every((s) => s === 200)).toBe(true);
    },
  );

  it('--auto-restore puts a deleted file back by itself and logs it; a task deleted in CVAT has its links pruned', { timeout: 120_000 }, async () => {
    const share = join(tmp.path, 'share');
    const vault = join(share, '.cvat-warden-vault');
    await prepareDemoShare(share);
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    running = await startService(
      ['--state-dir', join(tmp.path, 'state'), '--share-dir', share, '--vault', vault, '--auto-restore', '--poll-interval', '200ms'],
      env(),
      { guard: { rootCheckIntervalMs: 200 } },
    );
    await waitFor('vault built', () => existsSync(join(vault, 'videos/video_1.mp4')) && existsSync(join(vault, 'images/image_2.jpg')));
    await waitFor('guard ready', async () => ((await running!.metric('cvat_warden_share_files_expected')) ?? 0) > 0);
    const file = join(share, 'images/image_2.jpg');
    const bytes = readFileSync(file);
    rmSync(file);
    await waitFor('auto-restored', () => existsSync(file) && /auto-restore: share file put back/.test(running!.logs()), { timeoutMs: 15_000 });
    expect(readFileSync(file).equals(bytes)).toBe(true);
    await waitFor('alert cleared', async () => (await running!.metric('cvat_warden_share_files_missing')) === 0, { timeoutMs: 15_000 });
    expect(await running.metric('cvat_warden_restored_files_total{outcome="restored",trigger="auto"}')).toBe(1);
    // It never fights a user: removed again after each of 3 restores within the hour, the file is left to the admin, said once.
    for (let n = 2; n <= 4; n++) {
      rmSync(file);
      if (n <= 3) {
        await waitFor(
          `auto-restored ${n}`,
          async () => existsSync(file) && (await running!.metric('cvat_warden_restored_files_total{outcome="restored",trigger="auto"}')) === n,
          {
            timeoutMs: 15_000,
          },
        );
        await waitFor('alert cleared', async () => (await running!.metric('cvat_warden_share_files_missing')) === 0, { timeoutMs: 15_000 });
      }
    }
    await waitFor('gave up on the path', () => /not restoring it again for now/.test(running!.logs()), { timeoutMs: 15_000 });
    expect(existsSync(file)).toBe(false);
    expect(await running.metric('cvat_warden_restored_files_total{outcome="restored",trigger="auto"}')).toBe(3);
    // Its own restores are not counted a second time when the guard sees the files back.
    expect(await running.metric('cvat_warden_restored_files_total{outcome="restored",trigger="command"}')).toBe(0);

    emulator.removeTask(3);
    await waitFor('video link pruned', () => !existsSync(join(vault, 'videos/video_1.mp4')) && !existsSync(join(vault, '.vault-meta/tasks/3.jsonl')), {
      timeoutMs: 10_000,
    });
    expect(statSync(join(share, 'videos/video_1.mp4')).nlink).toBe(1);
    expect(existsSync(join(vault, 'images/image_2.jpg'))).toBe(true);
  });

  it('refuses to start with a vault on another filesystem (exit 2, saying what to do)', { timeout: 120_000 }, async () => {
    const share = join(tmp.path, 'share');
    await prepareDemoShare(share);
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    const mnt = join(tmp.path, 'other-fs');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      console.warn('SKIP: cannot mount a tmpfs here (vault.test.ts covers this with EXDEV injected)');
      return;
    }
    try {
      const r = await runCli(
        ['run', '--share-dir', share, '--vault', join(mnt, 'v'), '--state-dir', join(tmp.path, 'state'), '--listen', '127.0.0.1:0'],
        env(),
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/another filesystem than the share.*--vault .*\.cvat-warden-vault/);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('stops with exit 2 when a task turns out to read its media from inside the vault, linking none of it', { timeout: 120_000 }, async () => {
    const share = join(tmp.path, 'share');
    await prepareDemoShare(share);
    // The admin moved the videos away and gave their old folder to the vault: task 3 still reads videos/video_1.mp4.
    rmSync(join(share, 'videos'), { recursive: true });
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    const r = await runCli(
      ['run', '--share-dir', share, '--vault', join(share, 'videos'), '--state-dir', join(tmp.path, 'state'), '--listen', '127.0.0.1:0'],
      env(),
    );
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/task 3 reads videos\/video_1\.mp4, which lies inside the vault/);
    expect(existsSync(join(share, 'videos', 'videos'))).toBe(false);
  });

  it('run --backup-dir backs up each share task once, and names the missing file when an export fails on it', { timeout: 120_000 }, async () => {
    const share = join(tmp.path, 'share');
    await prepareDemoShare(share);
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1, backupExportTimeMs: 5 });
    running = await startService(
      ['--state-dir', join(tmp.path, 'state'), '--share-dir', share, '--backup-dir', join(tmp.path, 'backups'), '--poll-interval', '200ms'],
      env(),
      { guard: { rootCheckIntervalMs: 200 } },
    );
    await waitFor('4 share tasks backed up', async () => (await running!.metric('cvat_warden_backups_total{outcome="done"}')) === 4, { timeoutMs: 60_000 });
    expect(await running.metric('cvat_warden_share_tasks_without_backup')).toBe(0);
    expect(await running.metric('cvat_warden_share_tasks_backed_up')).toBe(4);
    expect(emulator.backups.exportsRun).toBe(4);
    expect((await running.metricsText()).match(/^cvat_warden_task_backup_age_seconds\{/gm)).toHaveLength(4);

    rmSync(join(share, 'images/image_0.jpg'));
    emulator.updateJob(emulator.deployment.tasks.get(1)!.jobs[0]!.id, { state: 'in progress' });
    await waitFor('failed backup named the file', async () => (await running!.metric('cvat_warden_backups_total{outcome="missing_file"}')) === 1, {
      timeoutMs: 20_000,
    });
    expect(running.logs()).toMatch(/share file images\/image_0\.jpg is missing/);
    const status = (await (await fetch(`${running.url}/status`)).json()) as {
      protection: { backups: { failures: Array<{ taskId: number; missingFile: string }> } };
    };
    expect(status.protection.backups.failures).toEqual([expect.objectContaining({ taskId: 1, missingFile: 'images/image_0.jpg' })]);
    expect(await running.metric('cvat_warden_share_tasks_backed_up')).toBe(3);
    for (const text of [running.logs(), await running.metricsText(), JSON.stringify(status)]) expect(text).not.toContain(TOKEN);
  });
});
