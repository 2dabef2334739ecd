/**
 * Against CVAT's own recorded 2.73 and 2.14 data (not our emulator; see
 * test/support/recorded-cvat.ts): `warm --all` leaves every chunk and context image the UI
 * reads warm, requests nothing else and gets no 4xx; `run` warms every read of a job that
 * is not completed — including job 42's segment (parent completed, replicas 43–45 live).
 */
import { describe, expect, it } from 'vitest';
import { startRecordedCvat, type RecordedCvat } from './support/recorded-cvat.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { describeWithSharedCvat } from './support/shared-cvat.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';
import { warmInProcess } from './support/warm.js';

const dir = useTempDir('warden-recorded-');
let cvat: RecordedCvat | undefined;
let running: RunningService | undefined;
closeAfterEach(
  () => [running?.service, cvat],
  () => (running = cvat = undefined),
);

const env = (): NodeJS.ProcessEnv => ({ CVAT_URL: cvat!.url, CVAT_USERNAME: 'admin1', CVAT_PASSWORD: 'not-checked-by-the-double' });
const rejected = (c: RecordedCvat) => c.requests.filter((r) => r.status >= 400).map((r) => `${r.status} ${r.path}${r.query}`);

describeWithSharedCvat("CVAT's recorded data", () => {
  describe.each(['v2.73.0', 'v2.14.4'] as const)('%s', (folder) => {
    it('warm --all: every chunk and context image the UI reads is warm, nothing else requested, no 4xx', async () => {
      cvat = await startRecordedCvat(folder);
      const reads = cvat.uiReads({ liveOnly: false });
      expect(reads.size).toBeGreaterThan(15);
      const run = await warmInProcess(['--all', '--state-dir', dir.path, '--json'], env());
      expect(rejected(cvat)).toEqual([]);
      expect([...reads].filter((k) => !cvat!.warm.has(k))).toEqual([]);
      expect([...cvat.warm].filter((k) => !reads.has(k))).toEqual([]);
      // Each read once: requests = reads.
      expect(cvat.requests.length).toBe(reads.size);
      expect(run.code, run.stdout).toBe(0);
      if (folder === 'v2.73.0') expect([...reads].some((k) => k.startsWith('context_images_'))).toBe(true);
    });
  });

  it('warm --all --previews (2.73): every preview asked with Prefer: handling=empty, 204 for 3D and audio, no 4xx', async () => {
    cvat = await startRecordedCvat('v2.73.0');
    const run = await warmInProcess(['--all', '--previews', '--state-dir', dir.path], env());
    expect(run.code, run.stdout).toBe(0);
    const previews = cvat.requests.filter((r) => r.path.endsWith('/preview'));
    expect(previews.length).toBeGreaterThan(20);
    expect(previews.filter((r) => r.prefer !== 'handling=empty')).toEqual([]);
    expect(previews.some((r) => r.status === 204)).toBe(true);
    expect(rejected(cvat)).toEqual([]);
  });

  it('run (2.73): every read of a live segment warm, job 42 (completed, replicas live) included, completed-only segments left alone', async () => {
    cvat = await startRecordedCvat('v2.73.0');
    running = await startService(['--state-dir', dir.path], env());
    const live = cvat.uiReads({ liveOnly: true });
    await waitFor('live reads warm', () => [...live].every((k) => cvat!.warm.has(k)), { timeoutMs: 30_000 });
    // Segment 42 is job 42's (engine.job 42 → segment 42 in the fixture).
    expect(live.has('segment_42_chunk_0')).toBe(true);
    const all = cvat.uiReads({ liveOnly: false });
    expect([...cvat.warm].filter((k) => !live.has(k))).toEqual([]);
    expect(all.size).toBeGreaterThan(live.size);
    expect(rejected(cvat)).toEqual([]);
  });
});
