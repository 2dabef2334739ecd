/**
 * Unreadable is a problem (issue 8, item 8): a share file the guard cannot stat
 * (EACCES, EIO…) is named with its task and jobs and makes `check` exit 1 — CVAT,
 * running as another user, may not be able to read it either. Injected through the
 * guard's fs seam (always runs), and for real: the built CLI run as an unprivileged
 * user (setpriv) against the emulator, with a directory of the share at mode 000.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { checkExitCode, formatCheckReport, nodeFs, runCheck, type GuardFs } from '../src/guard/index.js';
import { CLI } from './support/cli.js';
import { guardOver, makeShare, metricValue, sampleShareAvailable, sampleTasks, testMetrics, type ShareFixture } from './support/guard.js';
import { useTempDir } from './support/tmp.js';

const available = sampleShareAvailable();

describe.skipIf(!available)('check: unreadable files (fs seam)', () => {
  let fx: ShareFixture;
  beforeEach(async () => {
    fx = await makeShare();
  });
  afterEach(async () => fx.cleanup());

  it('names an EACCES file with its task and jobs, and exits 1', async () => {
    const denied = (p: string) => p.endsWith('/images/image_4.jpg');
    const eacces = () => Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const fs: Partial<GuardFs> = {
      statSync: (p) => {
        if (denied(p)) throw eacces();
        return nodeFs.statSync(p);
      },
      stat: async (p) => {
        if (denied(p)) throw eacces();
        return nodeFs.stat(p);
      },
    };
    const report = await runCheck(sampleTasks(), { shareDir: fx.shareDir, fsTypeOverride: 'ext4', fs });
    expect(report.ok).toBe(false);
    expect(checkExitCode(report)).toBe(1);
    expect(report.totals).toMatchObject({ filesExpected: 24, filesPresent: 23, filesMissing: 0, statErrors: 1, problemTasks: 1 });
    const problem = report.problems.find((p) => p.taskId === 1)!;
    expect(problem.unreadable).toEqual([{ path: 'images/image_4.jpg', code: 'EACCES' }]);
    expect(problem.missing).toEqual([]);
    // frame 4: job 12 (frames 3-5, chunk 0) and the GT job 13 (included frames 1 and 4 → its chunk 1)
    expect(problem.jobs.map((j) => [j.jobId, j.chunks])).toEqual([
      [12, [0]],
      [13, [1]],
    ]);
    const text = formatCheckReport(report);
    expect(text).toMatch(/UNREADABLE/);
    expect(text).toContain('images/image_4.jpg (EACCES)');
    expect(text).toContain('1 unreadable');
    expect(text).toContain('Result: PROBLEMS FOUND');
  });
});

describe.skipIf(!available)('guard: unreadable files (fs seam)', () => {
  let fx: ShareFixture;
  beforeEach(async () => {
    fx = await makeShare();
  });
  afterEach(async () => fx.cleanup());

  it('lists a file it cannot stat in /status with its tasks and counts it, until it is readable again', async () => {
    let denied = true;
    const isDenied = (p: string) => denied && p.endsWith('/videos/video_1.mp4');
    const eacces = () => Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const metrics = testMetrics();
    const guard = guardOver(fx, {
      metrics,
      fs: {
        statSync: (p) => {
          if (isDenied(p)) throw eacces();
          return nodeFs.statSync(p);
        },
        stat: async (p) => {
          if (isDenied(p)) throw eacces();
          return nodeFs.stat(p);
        },
      },
    });
    try {
      await guard.start();
      for (const task of sampleTasks()) await guard.upsertTasks([task]);
      expect(guard.status().unreadable).toEqual({ count: 1, files: [{ path: 'videos/video_1.mp4', code: 'EACCES', taskIds: [3] }] });
      expect(await metricValue(metrics, 'cvat_warden_share_files_unreadable')).toBe(1);
      await guard.scan('manual'); // still unreadable: still listed, once
      expect(guard.status().unreadable.count).toBe(1);
      denied = false;
      await guard.scan('manual');
      expect(guard.status().unreadable).toEqual({ count: 0, files: [] });
      expect(await metricValue(metrics, 'cvat_warden_share_files_unreadable')).toBe(0);
    } finally {
      await guard.close();
    }
  });
});

/** setpriv can drop to nobody when we are root (the usual CI container). */
function canDropPrivileges(): boolean {
  const ok = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv') && existsSync(CLI);
  if (!ok) console.warn('SKIP unreadable CLI test: needs root, /usr/bin/setpriv and a built dist/cli.js to run the CLI as an unprivileged user');
  return ok;
}

describe.skipIf(!canDropPrivileges())('cvat-warden check as an unprivileged user: a mode-000 directory', () => {
  const tmp = useTempDir('warden-unreadable-');
  let emulator: Emulator | undefined;
  let share: string;
  beforeEach(async () => {
    chmodSync(tmp.path, 0o755); // the unprivileged user must reach the share inside
    share = join(tmp.path, 'share');
    await prepareDemoShare(share);
    emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
  });
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
    chmodSync(join(share, 'images'), 0o755);
  });

  function runAsNobody(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const env = {
        PATH: process.env['PATH'],
        CVAT_URL: emulator!.url,
        CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken,
        CVAT_WARDEN_STATE_DIR: join(tmp.path, 'state'),
      };
      const child = spawn('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args], {
        env,
        cwd: tmp.path,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (d: string) => (stdout += d));
      child.stderr.on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('error', reject);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  it('exits 1 naming the unreadable files with task and jobs', async () => {
    const before = await runAsNobody(['check', '--all', '--share-dir', share, '--json']);
    expect(before.code, before.stderr).toBe(0);
    chmodSync(join(share, 'images'), 0o000);
    const after = await runAsNobody(['check', '--all', '--share-dir', share, '--json']);
    expect(after.code, after.stderr).toBe(1);
    const report = JSON.parse(after.stdout);
    expect(report.ok).toBe(false);
    const problem = report.problems.find((p: { taskId: number }) => p.taskId === 1);
    expect(problem.unreadable).toEqual(expect.arrayContaining([{ path: 'images/image_2.jpg', code: 'EACCES' }]));
    expect(problem.missing).toEqual([]);
    expect(problem.jobs.length).toBeGreaterThan(0);
    expect(report.totals.statErrors).toBeGreaterThan(0);
    expect(after.stdout + after.stderr).not.toContain(DEMO_CREDENTIALS.accessToken);
  });
});
