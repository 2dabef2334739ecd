/**
 * The one-pass check and its report, and path safety: names that would leave the
 * share (`..`, absolute, a symlinked directory pointing outside) are rejected,
 * reported with their task id, and never stat-ed — neither by the check nor by the guard.
 */
import { appendFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { checkExitCode, formatCheckReport, runCheck, ShareGuard, type GuardFs, type GuardTask } from '../src/guard/index.js';
import { nodeFs } from '../src/guard/index.js';
import { guardOver, job, makeShare, meta, recordAlerts, sampleShareAvailable, sampleTasks, testMetrics, type ShareFixture } from './support/guard.js';

const available = sampleShareAvailable();

/** The real fs, recording every path it is asked to stat, list or watch. */
function recordingFs(): { fs: Partial<GuardFs>; touched: string[] } {
  const touched: string[] = [];
  return {
    touched,
    fs: {
      stat: (p) => (touched.push(p), nodeFs.stat(p)),
      statSync: (p) => (touched.push(p), nodeFs.statSync(p)),
      readdir: (p) => (touched.push(p), nodeFs.readdir(p)),
      watch: (p, l, o) => (touched.push(p), nodeFs.watch(p, l, o)),
    },
  };
}

describe.skipIf(!available)('check report and path safety', () => {
  let fx: ShareFixture;
  beforeEach(async () => {
    fx = await makeShare();
  });
  afterEach(async () => fx.cleanup());

  it('reports all present as OK (exit 0) with the backup risk of every share task', async () => {
    const report = await runCheck(sampleTasks(), { shareDir: fx.shareDir, fsTypeOverride: 'ext4' });
    expect(report.ok).toBe(true);
    expect(checkExitCode(report)).toBe(0);
    expect(report.totals).toMatchObject({ tasks: 4, shareTasks: 4, filesExpected: 24, filesPresent: 24, filesMissing: 0, problemTasks: 0, warnings: 0 });
    expect(report.backupRisk.atRisk).toBe(4);
    expect(report.backupRisk.tasks.map((t) => [t.taskId, t.files, t.broken])).toEqual([
      [1, 6, false],
      [2, 11, false],
      [3, 1, false],
      [4, 6, false],
    ]);
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    expect(formatCheckReport(report)).toContain('Result: OK');
  });

  it('reports missing and modified files per task with jobs, chunks and expiry (exit 1)', async () => {
    const guard = new ShareGuard({ shareDir: fx.shareDir, stateDir: fx.stateDir, metrics: testMetrics(), logger: silentLogger(), fsTypeOverride: 'ext4' });
    await guard.setTasks(sampleTasks());
    await guard.start();
    await guard.close(); // leaves a baseline behind
    await rm(path.join(fx.shareDir, 'images/image_5.jpg'));
    await rm(path.join(fx.shareDir, 'images/with_related/related_images/image_1_png/30.png'));
    await appendFile(path.join(fx.shareDir, 'pcd_with_related/pointcloud/000002.pcd'), '\n');
    const tasks = sampleTasks();
    tasks.push({ taskId: 9, taskName: 'local', storage: 'local', isVideo: false, meta: meta([{ name: 'x.jpg' }]), jobs: [] });

    const report = await runCheck(tasks, {
      shareDir: fx.shareDir,
      stateDir: fx.stateDir,
      fsTypeOverride: 'ext4',
      lastWarmedAt: (jobId) => (jobId === 12 ? 0 : undefined),
    });
    expect(report.ok).toBe(false);
    expect(checkExitCode(report)).toBe(1);
    // A context image deleted before indexing cannot be listed any more: it shows as a count mismatch.
    expect(report.totals).toMatchObject({ tasks: 5, shareTasks: 4, skippedTasks: 1, filesMissing: 1, filesModified: 1, problemTasks: 2 });
    expect(report.warnings).toEqual([
      expect.objectContaining({ taskId: 2, kind: 'related_count_mismatch', path: 'images/with_related/image_1.png', expected: 1, found: 0 }),
    ]);
    const byTask = new Map(report.problems.map((p) => [p.taskId, p]));
    expect(byTask.get(1)).toMatchObject({
      taskName: 'images',
      missing: ['images/image_5.jpg'],
      jobs: [{ jobId: 12, chunks: [1], expiresAt: 24 * 3600 * 1000 }], // frame 5 is not in GT job 13
      expiresAt: 24 * 3600 * 1000,
    });
    expect(byTask.get(4)).toMatchObject({ modified: ['pcd_with_related/pointcloud/000002.pcd'], jobs: [{ jobId: 41, chunks: [1] }] });
    expect(report.backupRisk.broken).toBe(1);
    expect(report.skipped).toEqual([{ taskId: 9, reason: 'storage is local' }]);
    const text = formatCheckReport(report);
    expect(text).toMatch(/TASK\s+NAME\s+MISSING/);
    expect(text).toContain('images/image_5.jpg');
    expect(text).toContain('Result: PROBLEMS FOUND');
  });

  it("warns when the context images found differ from CVAT's count", async () => {
    const tasks = sampleTasks();
    const frames = tasks[1]!.meta.frames!;
    frames[1] = { ...frames[1]!, related_files: 2 }; // the share has 1
    const report = await runCheck(tasks, { shareDir: fx.shareDir, fsTypeOverride: 'ext4' });
    expect(report.warnings).toEqual([
      expect.objectContaining({ taskId: 2, kind: 'related_count_mismatch', path: 'images/with_related/image_1.png', expected: 2, found: 1 }),
    ]);
    expect(report.ok).toBe(true);
  });

  it('rejects traversal, absolute and symlink-escaping names and never stats them', async () => {
    await mkdir(path.join(fx.outside, 'secret/sub'), { recursive: true });
    await writeFile(path.join(fx.outside, 'secret/x.jpg'), 'secret');
    await writeFile(path.join(fx.outside, 'secret/sub/x.jpg'), 'secret');
    await symlink(path.join(fx.outside, 'secret'), path.join(fx.shareDir, 'evil'));
    const hostile: GuardTask = {
      taskId: 66,
      storage: 'share',
      isVideo: false,
      meta: meta([
        { name: '../outside/secret/x.jpg' },
        { name: '/etc/passwd' },
        { name: 'evil/x.jpg' },
        // a real directory (no symlink itself) below the escaping one: judged through its parent
        { name: 'evil/sub/x.jpg' },
        { name: 'images/../../outside/secret/x.jpg' },
        { name: 'images/image_0.jpg' },
        { name: 'a\0b' },
      ]),
      jobs: [job(660, 0, 5)],
    };
    const { fs, touched } = recordingFs();
    const report = await runCheck([hostile], { shareDir: fx.shareDir, fsTypeOverride: 'ext4', fs });
    const problem = report.problems.find((p) => p.taskId === 66)!;
    expect(problem.rejected).toEqual([
      { name: '../outside/secret/x.jpg', reason: 'dot_dot' },
      { name: '/etc/passwd', reason: 'absolute' },
      { name: 'images/../../outside/secret/x.jpg', reason: 'dot_dot' },
      { name: 'a\0b', reason: 'nul' },
      { name: 'evil/x.jpg', reason: 'symlink_escape' },
      { name: 'evil/sub/x.jpg', reason: 'symlink_escape' },
    ]);
    expect(report.totals).toMatchObject({ filesExpected: 1, rejectedNames: 6 });
    expect(report.ok).toBe(false);
    const leaks = (paths: string[]) => paths.filter((p) => p.includes('secret') || p.includes('passwd') || p.includes('evil') || p.includes('\0'));
    expect(leaks(touched)).toEqual([]);

    // the guard: same verdicts, nothing outside stat-ed or watched, no alert
    const guardFs = recordingFs();
    const guard = guardOver(fx, {
      fs: guardFs.fs,
    });
    const alerts = recordAlerts(guard);
    await guard.setTasks([hostile]);
    await guard.start();
    await guard.scan();
    expect(guard.indexIssues().rejected.map((r) => [r.taskId, r.reason])).toEqual([
      [66, 'dot_dot'],
      [66, 'absolute'],
      [66, 'dot_dot'],
      [66, 'nul'],
      [66, 'symlink_escape'],
      [66, 'symlink_escape'],
    ]);
    expect(guard.status()).toMatchObject({ filesExpected: 1, rejectedNames: 6, watchedDirectories: 1 });
    expect(leaks(guardFs.touched)).toEqual([]);
    expect(alerts).toEqual([]);
    await guard.close();
  });

  it('guards storage "unknown" tasks only when asked and their frames live in the share', async () => {
    const tasks = sampleTasks().map((t) => ({ ...t, storage: 'unknown' as const }));
    tasks.push({ taskId: 8, storage: 'unknown', isVideo: false, meta: meta([{ name: 'not/in/share.jpg' }]), jobs: [] });
    const off = await runCheck(tasks, { shareDir: fx.shareDir, fsTypeOverride: 'ext4' });
    expect(off.totals.shareTasks).toBe(0);
    const on = await runCheck(tasks, { shareDir: fx.shareDir, fsTypeOverride: 'ext4', includeUnknownStorage: true });
    expect(on.totals.shareTasks).toBe(4);
    expect(on.warnings.filter((w) => w.kind === 'assumed_share')).toHaveLength(4);
    expect(on.skipped.map((s) => s.taskId)).toEqual([8]);
  });
});
