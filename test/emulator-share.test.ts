/**
 * Share-backed tasks over a temp copy of CVAT's CI sample share: listing like
 * /api/server/share, frame sizes read from the files, context images by CVAT's layout
 * rules, builds that read the files — and a deleted file turning every cold chunk that
 * contains it into a bare 500, never cached, while already-cached chunks are served until TTL.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { copySampleShare, ManualClock, startEmulator, type Emulator, type EmulatorOptions } from '../src/emulator/index.js';
import { http } from './support/emulator-http.js';
import { describeWithSharedCvat } from './support/shared-cvat.js';
import { useTempDir } from './support/tmp.js';

describeWithSharedCvat('emulator share (sample share copy)', () => {
  const tmp = useTempDir('emu-share-');
  let shareDir: string;
  let emu: Emulator | undefined;

  beforeEach(async () => {
    shareDir = await copySampleShare(tmp.path);
  });
  afterEach(async () => {
    await emu?.close();
    emu = undefined;
  });

  const images = Array.from({ length: 6 }, (_, i) => `images/image_${i}.jpg`);
  async function start(options: EmulatorOptions = {}): Promise<Emulator> {
    emu = await startEmulator({
      shareDir,
      buildTimeMs: 5,
      chunkBytes: 2048,
      tasks: [
        { id: 1, storage: 'share', frames: images, chunkSize: 2, segmentSize: 4 },
        { id: 2, storage: 'share', frames: Array.from({ length: 4 }, (_, i) => `images/with_related/image_${i}.png`), relatedFiles: 'detect', chunkSize: 2 },
        { id: 3, storage: 'share', mediaType: 'video', video: 'videos/video_1.mp4', size: 3, chunkSize: 2 },
        { id: 4, storage: 'share', mediaType: 'pointcloud', frames: [1, 2, 3].map((i) => `pcd_with_related/pointcloud/00000${i}.pcd`), relatedFiles: 'detect' },
      ],
      ...options,
    });
    return emu;
  }

  it('lists one level, directories first, with CVAT mime types and search', async () => {
    const e = await start();
    const root = (await http(`${e.url}/api/server/share`)).json() as Array<{ name: string; type: string; mime_type: string }>;
    const dirs = root.filter((x) => x.type === 'DIR').map((x) => x.name);
    expect(root.slice(0, dirs.length).every((x) => x.type === 'DIR')).toBe(true);
    expect(dirs).toEqual([...dirs].sort());
    expect(root).toContainEqual({ name: 'images', type: 'DIR', mime_type: 'DIR' });
    expect(root).toContainEqual({ name: 'archive.zip', type: 'REG', mime_type: 'archive' });
    const videos = (await http(`${e.url}/api/server/share?directory=/videos`)).json() as Array<{ name: string; mime_type: string }>;
    expect(videos.find((v) => v.name === 'video_1.mp4')?.mime_type).toBe('video');
    expect(videos.find((v) => v.name === 'manifest.jsonl')?.mime_type).toBe('unknown');
    const found = (await http(`${e.url}/api/server/share?directory=images&search=image_1`)).json() as unknown[];
    expect(found).toEqual([{ name: 'image_1.jpg', type: 'REG', mime_type: 'image' }]);
    for (const bad of ['../..', 'images/../../etc', 'nope', 'images/image_0.jpg']) {
      const r = await http(`${e.url}/api/server/share?directory=${encodeURIComponent(bad)}`);
      expect([r.status, r.json()]).toEqual([400, `${bad} is an invalid directory`]);
    }
  });

  it('meta carries storage=share, real frame sizes and detected context images', async () => {
    const e = await start();
    const meta = (await http(`${e.url}/api/tasks/2/data/meta`)).json() as {
      storage: string;
      frames: Array<{ name: string; width: number; height: number; related_files: number }>;
    };
    expect(meta.storage).toBe('share');
    expect(meta.frames[0]).toMatchObject({ name: 'images/with_related/image_0.png', width: 540, height: 167, related_files: 3 });
    expect(meta.frames.map((f) => f.related_files)).toEqual([3, 1, 3, 0]);
    const clouds = (await http(`${e.url}/api/tasks/4/data/meta`)).json() as { frames: Array<{ related_files: number }> };
    expect(clouds.frames.map((f) => f.related_files)).toEqual([1, 1, 1]);
    const ctx = await http(`${e.url}/api/jobs/${e.deployment.tasks.get(2)?.jobs[0]?.id}/data?type=context_image&quality=original&number=2`);
    expect(ctx.status).toBe(200);
    expect(ctx.body.includes(Buffer.from('34.png'))).toBe(true);
  });

  it('a deleted file: cold chunks → generic 500, nothing cached; cached chunks live until TTL', async () => {
    const clock = new ManualClock();
    const e = await start({ clock });
    const url = (index: number): string => `${e.url}/api/jobs/1/data?type=chunk&quality=compressed&index=${index}`;
    expect((await http(url(0))).status).toBe(200); // frames 0, 1
    const del = await http(`${e.url}/__emulator/share/delete`, { method: 'POST', body: { path: 'images/image_1.jpg' } });
    expect(del.status).toBe(200);
    expect(fs.existsSync(path.join(shareDir, 'images/image_1.jpg'))).toBe(false);
    expect((await http(url(0))).status).toBe(200); // still cached: latent failure
    fs.rmSync(path.join(shareDir, 'images/image_2.jpg'));
    const broken = await http(url(1)); // frames 2, 3
    expect(broken.status).toBe(500);
    expect(broken.headers['content-type']).toContain('text/html');
    expect(broken.text).toContain('Server Error (500)');
    expect(broken.text).not.toContain('image_2');
    expect(e.state.isCached('segment_1_chunk_1_0')).toBe(false);
    expect(e.state.failedBuildCount('segment_1_chunk_1_0')).toBe(1);
    expect((await http(url(1))).status).toBe(500);
    expect(e.state.failedBuildCount('segment_1_chunk_1_0')).toBe(2);
    clock.advance(24 * 3600_000);
    expect((await http(url(0))).status).toBe(500);
    // other jobs' chunks without the missing files still build
    expect((await http(`${e.url}/api/jobs/2/data?type=chunk&quality=compressed&index=0`)).status).toBe(200);
  });

  it('video and context-image builds read their files too', async () => {
    const e = await start();
    const videoJob = e.deployment.tasks.get(3)?.jobs[0]?.id;
    fs.rmSync(path.join(shareDir, 'videos/video_1.mp4'));
    expect((await http(`${e.url}/api/jobs/${videoJob}/data?type=chunk&quality=compressed&index=0`)).status).toBe(500);
    const job = e.deployment.tasks.get(2)?.jobs[0]?.id;
    fs.rmSync(path.join(shareDir, 'images/with_related/related_images/image_0_png/31.png'));
    expect((await http(`${e.url}/api/jobs/${job}/data?type=context_image&quality=original&number=0`)).status).toBe(500);
    expect((await http(`${e.url}/api/jobs/${job}/data?type=chunk&quality=compressed&index=0`)).status).toBe(200);
  });

  it('the control API refuses paths outside the share', async () => {
    const e = await start();
    for (const bad of ['../outside.txt', '/../../etc/passwd', 'images']) {
      const r = await http(`${e.url}/__emulator/share/delete`, { method: 'POST', body: { path: bad } });
      expect(r.status).toBe(400);
    }
    expect((await http(`${e.url}/__emulator/share/delete`, { method: 'POST', body: { path: 'images/nope.jpg' } })).status).toBe(404);
  });
});
