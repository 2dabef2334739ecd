/**
 * `cvat-warden check` and `doctor` as an admin runs them: the built CLI against the
 * emulator serving share-backed tasks over a real copy of CVAT's sample share.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { runCli } from './support/cli.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('warden-check-');
let emulator: Emulator | undefined;
let share: string;
beforeEach(async () => {
  share = join(tmp.path, 'share');
  await prepareDemoShare(share);
  emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
});
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

const env = () => ({ CVAT_URL: emulator!.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken, CVAT_WARDEN_STATE_DIR: join(tmp.path, 'state') });

describe('cvat-warden check', () => {
  it('exits 0 with every share file present, then 1 naming task, jobs, chunks and path after a deletion', async () => {
    const ok = await runCli(['check', '--all', '--share-dir', share, '--json'], env());
    expect(ok.code, ok.stderr).toBe(0);
    const clean = JSON.parse(ok.stdout);
    expect(clean.ok).toBe(true);
    expect(clean.totals.shareTasks).toBe(4);
    expect(clean.totals.filesExpected).toBeGreaterThan(10);
    expect(clean.backupRisk.atRisk).toBe(4);

    rmSync(join(share, 'images/image_2.jpg'));
    const broken = await runCli(['check', '--all', '--share-dir', share, '--json'], env());
    expect(broken.code).toBe(1);
    const report = JSON.parse(broken.stdout);
    const problem = report.problems.find((p: { taskId: number }) => p.taskId === 1);
    expect(problem.missing).toEqual(['images/image_2.jpg']);
    expect(problem.jobs).toEqual(expect.arrayContaining([expect.objectContaining({ jobId: 1, chunks: [1] })]));
    expect(report.backupRisk.broken).toBe(1);

    const table = await runCli(['check', '--all', '--share-dir', share], env());
    expect(table.code).toBe(1);
    expect(table.stdout).toContain('images/image_2.jpg');
    expect(table.stdout).toMatch(/^1 +share: images with GT +1 .*job 1 \[1\]/m);
    expect(table.stdout + table.stderr).not.toContain(DEMO_CREDENTIALS.accessToken);
  });

  it('exits 2 with a clear message when the share directory is missing, and 3 when CVAT is unreachable', async () => {
    const missing = await runCli(['check', '--all', '--share-dir', join(tmp.path, 'nope')], env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/share directory .*nope does not exist/);
    const down = await runCli(['check', '--all', '--share-dir', share], { ...env(), CVAT_URL: 'http://127.0.0.1:1' });
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/cannot reach CVAT/);
  });
});

describe('cvat-warden doctor', () => {
  it('passes on a good setup and explains a wrong share path with the right one', async () => {
    const good = await runCli(['doctor', '--share-dir', share], env());
    expect(good.code, good.stdout).toBe(0);
    expect(good.stdout).toMatch(/\[ok {2}\] CVAT reachable/);
    expect(good.stdout).toMatch(/\[ok {2}\] share directory: .*sampled frame names of task 1 found/);
    expect(good.stdout).toMatch(/inotify watches/);

    // The classic mistake: one directory too high.
    const wrong = await runCli(['doctor', '--share-dir', tmp.path, '--json'], env());
    expect(wrong.code).toBe(1);
    const shareCheck = JSON.parse(wrong.stdout).checks.find((c: { name: string }) => c.name === 'share directory');
    expect(shareCheck.level).toBe('fail');
    expect(shareCheck.fix).toContain(`CVAT_SHARE_DIR=${share}`);
  });

  it('ends with passed, passed with warnings or failed, and says which checks could not run and why', async () => {
    // No share configured: a warning, so "passed with warnings", never "All checks passed" under a [warn].
    const warned = await runCli(['doctor'], env());
    expect(warned.code, warned.stdout).toBe(0);
    expect(warned.stdout).toMatch(/^\[warn\] share directory: not configured/m);
    expect(warned.stdout.trimEnd().split('\n').at(-1)).toMatch(/^Result: passed with warnings \(\d+ warnings?\)\.$/);
    const json = JSON.parse((await runCli(['doctor', '--json'], env())).stdout) as { result: string; ok: boolean };
    expect(json).toMatchObject({ result: 'passed with warnings', ok: true });

    // CVAT down: what depends on it is "not checked", and the share is only said to be mounted.
    const down = await runCli(['doctor', '--share-dir', share, '--json'], { ...env(), CVAT_URL: 'http://127.0.0.1:1' });
    expect(down.code).toBe(1);
    const report = JSON.parse(down.stdout) as { result: string; checks: Array<{ name: string; level: string; detail: string }> };
    expect(report.result).toBe('failed');
    const level = (name: string) => report.checks.find((c) => c.name === name);
    for (const name of ['credentials', 'job data permission', 'chunk workers'])
      expect(level(name), name).toEqual({ name, ok: true, level: 'skip', detail: 'not checked: CVAT is not reachable' });
    expect(level('share directory')).toMatchObject({ level: 'ok', detail: `${share} is mounted and readable` });
    expect(level('share frame names')).toMatchObject({ level: 'skip', detail: expect.stringMatching(/^not checked: CVAT is not reachable/) });
    for (const check of report.checks.filter((c) => c.level === 'skip')) expect(check.detail).toMatch(/^not checked: /);
    const text = await runCli(['doctor', '--share-dir', share], { ...env(), CVAT_URL: 'http://127.0.0.1:1' });
    expect(text.stdout).toMatch(/^\[skip\] chunk workers: not checked: CVAT is not reachable$/m);
    expect(text.stdout.trimEnd().split('\n').at(-1)).toMatch(/^Result: failed \(1 check failed, .*4 not checked\)\.$/);
  });

  it('words an unknown task id the same in warm, check and backup, and exits 1 for it in each', async () => {
    const runs = {
      warm: await runCli(['warm', '--task', '99'], env()),
      check: await runCli(['check', '--task', '99', '--share-dir', share], env()),
      backup: await runCli(['backup', '--task', '99', '--backup-dir', join(tmp.path, 'backups')], env()),
    };
    for (const [command, run] of Object.entries(runs)) {
      expect(run.code, `${command}: ${run.stdout}${run.stderr}`).toBe(1);
      expect(run.stdout, command).toMatch(/^Problems reading CVAT:\n {2}task 99 not found$/m);
      expect(run.stdout, command).not.toMatch(/no share tasks in scope/);
    }
  });

  it('says what is wrong with refused credentials', async () => {
    const bad = await runCli(['doctor'], { ...env(), CVAT_ACCESS_TOKEN: 'not-a-token-123' });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/\[FAIL\] credentials: CVAT answered 401 .*personal access token was refused/);
    expect(bad.stdout).not.toContain('not-a-token-123');
  });
});
