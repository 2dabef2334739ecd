/**
 * The rules the guard applies, checked through the public check report where
 * possible: CVAT's context-image layouts (KITTI, Custom 1/2), frame → job/chunk
 * arithmetic with frame steps, start frames and overlapping segments, name checks
 * and mountinfo parsing.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkName, detectFsType, isNetworkFsType, parseMountinfo, runCheck, type GuardTask } from '../src/guard/index.js';
import { affectedTask, compileTask } from '../src/guard/index.js';
import { job, meta } from './support/guard.js';
import { useTempDir, withTempDir } from './support/tmp.js';

describe('guard rules', () => {
  const share = useTempDir('guard-rules-', { scope: 'suite' });
  const files = [
    'kitti/velodyne_points/data/0001.bin',
    'kitti/IMAGE_00/data/0001.png',
    'kitti/image_01/data/0001.jpg',
    'kitti/image_01/data/0002.jpg',
    'c1/scan.pcd',
    'c1/scan.png',
    'c1/other.png',
    'c2/scan/scan.pcd',
    'c2/scan/front.jpg',
    'c2/scan/back.jpeg',
    'c2/scan/notes.txt',
  ];

  beforeAll(async () => {
    for (const f of files) {
      await mkdir(path.dirname(path.join(share.path, f)), { recursive: true });
      await writeFile(path.join(share.path, f), '');
    }
  });

  it('derives context images for KITTI, Custom 1 and Custom 2 point-cloud layouts', async () => {
    const task: GuardTask = {
      taskId: 5,
      storage: 'share',
      isVideo: false,
      dimension: '3d',
      meta: meta([
        { name: 'kitti/velodyne_points/data/0001.bin', related_files: 2 },
        { name: 'c1/scan.pcd', related_files: 1 },
        { name: 'c2/scan/scan.pcd', related_files: 2 },
      ]),
      jobs: [job(50, 0, 2, 1)],
    };
    const report = await runCheck([task], { shareDir: share.path, fsTypeOverride: 'ext4' });
    expect(report.warnings).toEqual([]);
    expect(report.totals.filesExpected).toBe(3 + 2 + 1 + 2);
    await rm(path.join(share.path, 'kitti/IMAGE_00/data/0001.png'));
    const after = await runCheck([task], { shareDir: share.path, fsTypeOverride: 'ext4' });
    expect(after.warnings.map((w) => [w.path, w.expected, w.found])).toEqual([['kitti/velodyne_points/data/0001.bin', 2, 1]]);
  });

  it('maps frames to jobs and chunks with step, start frame, overlap and GT jobs', () => {
    const task: GuardTask = {
      taskId: 1,
      storage: 'share',
      isVideo: false,
      meta: meta(
        Array.from({ length: 20 }, (_, i) => ({ name: `f${i}.jpg` })),
        { start_frame: 10, frame_filter: 'step=3' },
      ),
      jobs: [
        job(1, 0, 9, 4),
        job(2, 5, 19, 4), // overlaps frames 5..9
        job(3, 0, 19, 2, { type: 'ground_truth', includedFrames: [40, 13, 25] }), // abs = 10 + rel*3
        job(4, 0, 9, 4, { type: 'consensus_replica' }),
      ],
    };
    const mapping = compileTask(task);
    // rel 5 → abs 25: job 1 chunk 1, job 2 chunk 0, GT job sorted [13,25,40] → index 1 → chunk 0,
    // replica 4 on job 1's segment: chunk 1 (listed: annotators work in replicas)
    expect(affectedTask(mapping, [5]).jobs.map((j) => [j.jobId, j.chunks])).toEqual([
      [1, [1]],
      [2, [0]],
      [3, [0]],
      [4, [1]],
    ]);
    // rel 10 → abs 40: job 2 chunk 1, GT index 2 → chunk 1
    expect(affectedTask(mapping, [10]).jobs.map((j) => [j.jobId, j.chunks])).toEqual([
      [2, [1]],
      [3, [1]],
    ]);
    const video = compileTask({ ...task, isVideo: true, jobs: [job(7, 0, 99, 10), job(8, 95, 199, 10)] });
    expect(affectedTask(video, []).jobs.map((j) => [j.jobId, j.chunks.length])).toEqual([
      [7, 10],
      [8, 11],
    ]);
  });

  it('checks names lexically', () => {
    expect(checkName('a/./b//c.jpg')).toEqual({ ok: true, rel: 'a/b/c.jpg' });
    expect(checkName('../x')).toEqual({ ok: false, reason: 'dot_dot' });
    expect(checkName('/x')).toEqual({ ok: false, reason: 'absolute' });
    expect(checkName('C:\\x')).toEqual({ ok: false, reason: 'absolute' });
    expect(checkName('a\\..\\..\\x')).toEqual({ ok: false, reason: 'backslash_escape' });
    expect(checkName('')).toEqual({ ok: false, reason: 'empty' });
  });

  it('reads the filesystem type from mountinfo (longest prefix, escapes)', async () => {
    const text = [
      '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
      '40 22 0:35 / /mnt/cvat\\040share rw,relatime shared:2 - nfs4 nas:/export/cvat rw,vers=4.2',
      '41 40 0:36 / /mnt/cvat\\040share/local rw shared:3 - xfs /dev/sdb1 rw',
      '42 22 0:37 / /mnt/s3 rw - fuse.s3fs s3fs rw',
    ].join('\n');
    expect(parseMountinfo(text)[1]).toEqual({ mountPoint: '/mnt/cvat share', fsType: 'nfs4', source: 'nas:/export/cvat' });
    await withTempDir('guard-mi-', async (dir) => {
      await writeFile(path.join(dir, 'mountinfo'), text);
      const at = (p: string) => detectFsType(p, { mountinfoPath: path.join(dir, 'mountinfo') });
      expect(await at('/mnt/cvat share/images')).toMatchObject({ fsType: 'nfs4', network: true, mountPoint: '/mnt/cvat share' });
      expect(await at('/mnt/cvat share/local/x')).toMatchObject({ fsType: 'xfs', network: false });
      expect(await at('/mnt/s3/bucket')).toMatchObject({ fsType: 'fuse.s3fs', network: true });
      expect(await at('/home/django/share')).toMatchObject({ fsType: 'ext4', network: false });
    });
    expect(['nfs', 'cifs', 'smb3', '9p', 'fuse.sshfs'].every(isNetworkFsType)).toBe(true);
    expect(['ext4', 'xfs', 'btrfs', 'fuseblk', 'overlay', 'tmpfs'].some(isNetworkFsType)).toBe(false);
  });
});
