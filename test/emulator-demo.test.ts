/**
 * The demo deployment and `runEmulateCommand`: an annotator-style walk over every job
 * (meta, then each chunk `index`) warms exactly `state.uiChunkKeys()`; the synthetic share
 * stand-in has every file the demo reads.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoDeployment, runEmulateCommand, startEmulator, writeSyntheticShare, type Emulator } from '../src/emulator/index.js';
import { http } from './support/emulator-http.js';
import { useTempDir } from './support/tmp.js';
import { loadConfig } from '../src/config/index.js';

const tmp = useTempDir('emu-demo-');
let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

const AUTH = { authorization: `Bearer ${DEMO_CREDENTIALS.accessToken}` };

/** Opens every job like the 2.73 UI: meta, then compressed chunks 0 … ceil(frame_count / chunk) - 1, plus context images. */
async function openEveryJob(e: Emulator): Promise<void> {
  const jobs = (await http(`${e.url}/api/jobs?page_size=all`, { headers: AUTH })).json() as {
    results: Array<{ id: number; frame_count: number; data_chunk_size: number }>;
  };
  for (const job of jobs.results) {
    const meta = (await http(`${e.url}/api/jobs/${job.id}/data/meta`, { headers: AUTH })).json() as {
      start_frame: number;
      frame_filter: string;
      frames: Array<{ related_files: number; name: string }>;
      included_frames: number[] | null;
    };
    for (let i = 0; i < Math.ceil(job.frame_count / job.data_chunk_size); i++) {
      const r = await http(`${e.url}/api/jobs/${job.id}/data?org=&quality=compressed&type=chunk&index=${i}`, { headers: AUTH });
      expect(r.status, `job ${job.id} chunk ${i}`).toBe(200);
    }
    const step = Number(/step=(\d+)/.exec(meta.frame_filter)?.[1] ?? 1);
    for (const [k, f] of meta.frames.entries()) {
      if (f.related_files > 0) {
        const task = e.deployment.taskOf(e.deployment.jobs.get(job.id)!);
        const rel = (meta.start_frame + k * step - task.geometry.start) / task.geometry.step;
        const r = await http(`${e.url}/api/jobs/${job.id}/data?quality=original&type=context_image&number=${rel}`, { headers: AUTH });
        expect(r.status).toBe(200);
      }
    }
  }
}

describe('demo deployment', () => {
  it('runEmulateCommand starts it, prints the URL and credentials', async () => {
    const logs: unknown[] = [];
    const writes: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = (chunk: string | Uint8Array) => (writes.push(String(chunk)), true);
    try {
      emu = await runEmulateCommand(
        { ...loadConfig('emulate', [], {}).emulator, port: 0, shareDir: tmp.path, buildTimeMs: 2 },
        { info: (...args: unknown[]) => void logs.push(args) },
      );
    } finally {
      process.stdout.write = write;
    }
    const out = writes.join('');
    expect(out).toContain(emu.url);
    expect(out).toContain('admin / admin-password');
    expect(out).toContain('Bearer demo-token-not-secret');
    expect(logs).toHaveLength(1);
    const login = await http(`${emu.url}/api/auth/login`, { method: 'POST', body: { username: 'admin', password: 'admin-password' } });
    expect(login.status).toBe(200);
    expect(((await http(`${emu.url}/api/tasks`, { headers: AUTH })).json() as { count: number }).count).toBe(7);
  });

  it('an annotator-style walk warms exactly the UI chunk keys', async () => {
    const shareDir = tmp.path;
    await writeSyntheticShare(shareDir);
    emu = await startEmulator({ ...demoDeployment(shareDir), buildTimeMs: 1, chunkBytes: 1024 });
    const ui = emu.state.uiChunkKeys();
    expect(emu.state.coldUiChunkKeys()).toEqual(ui);
    await openEveryJob(emu);
    expect(emu.state.coldUiChunkKeys().size).toBe(0);
    const chunkKeys = emu.state.cachedKeys().filter((k) => k.startsWith('segment_'));
    expect(new Set(chunkKeys)).toEqual(ui);
    expect(emu.state.duplicateBuilds()).toEqual([]);
    expect(emu.state.failedBuilds).toBe(0);
  });

  it('the annotator may read its own job only', async () => {
    emu = await startEmulator({ ...demoDeployment(await writeSyntheticShare(tmp.path)), buildTimeMs: 1 });
    const annotator = { authorization: 'Basic ' + Buffer.from('annotator:annotator-password').toString('base64') };
    const jobs = (await http(`${emu.url}/api/jobs?org=demo`, { headers: annotator })).json() as { results: Array<{ id: number; task_id: number }> };
    expect(jobs.results).toHaveLength(1);
    const own = jobs.results[0]!.id;
    expect((await http(`${emu.url}/api/jobs/${own}/data?type=chunk&index=0&quality=compressed`, { headers: annotator })).status).toBe(200);
    expect((await http(`${emu.url}/api/jobs/1/data?type=chunk&index=0&quality=compressed`, { headers: annotator })).status).toBe(403);
  });
});
