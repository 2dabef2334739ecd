/**
 * The emulator cannot hide what issue 7 is about (each checked over HTTP):
 * - a job update touches its task only when the aggregated status moves
 *   (cvat/apps/engine/signals.py `__save_job_handler`);
 * - replicas keep their own states; GT jobs can be added and deleted later (the task's date stays);
 * - `deleted_frames` in task meta, the segment's share in job meta (views.py job data_meta);
 * - honeypot (gt_pool) tasks: GT job on a RANGE over the pool, placeholders showing pool frames;
 * - audio: chunk_size a duration, no frames or context images (400);
 * - context images through the cache: 400 outside the job's segment, 404 for a frame without any
 *   (views.py `_DataGetter`: `HttpResponseNotFound` when the archive is empty).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, startEmulator, type Emulator } from '../src/emulator/index.js';

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

const get = async (path: string) => {
  const r = await fetch(`${emulator!.url}${path}`);
  const text = await r.text();
  return { status: r.status, json: () => JSON.parse(text) as Record<string, unknown> };
};

describe('emulator: job-level behaviour', () => {
  it('moves the task date only when its aggregated status changes', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    emulator = await startEmulator({
      clock,
      tasks: [{ id: 1, size: 10, segmentSize: 5, consensusReplicas: 1, replicaStates: [['in progress'], ['completed']] }],
    });
    const taskDate = async () => (await get('/api/tasks/1')).json()['updated_date'];
    const before = await taskDate();
    expect((await get('/api/jobs/2')).json()['state']).toBe('in progress');
    expect((await get('/api/jobs/4')).json()['state']).toBe('completed');
    clock.advance(1000);
    emulator.updateJob(1, { state: 'completed', stage: 'acceptance' });
    expect(await taskDate()).toBe(before);
    expect((await get('/api/jobs/1')).json()['updated_date']).not.toBe(before);
    for (const id of [2, 3, 4]) emulator.updateJob(id, { state: 'completed', stage: 'acceptance' });
    expect((await get('/api/tasks/1')).json()['status']).toBe('completed');
    expect(await taskDate()).not.toBe(before);
  });

  it('adds and deletes a GT job later without touching the task; job meta carries included_frames and deleted frames', async () => {
    emulator = await startEmulator({ tasks: [{ id: 1, size: 10, segmentSize: 5, deletedFrames: [2, 7] }] });
    const before = (await get('/api/tasks/1')).json()['updated_date'];
    expect((await get('/api/tasks/1/data/meta')).json()['deleted_frames']).toEqual([2, 7]);
    expect((await get('/api/jobs/2/data/meta')).json()['deleted_frames']).toEqual([7]);
    const gt = emulator.addGroundTruthJob(1, [1, 8]);
    expect((await get(`/api/jobs/${gt.id}/data/meta`)).json()['included_frames']).toEqual([1, 8]);
    expect((await get('/api/tasks/1')).json()).toMatchObject({ updated_date: before, validation_mode: 'gt', jobs: { count: 3 } });
    emulator.removeJob(gt.id);
    expect((await get('/api/tasks/1')).json()).toMatchObject({ updated_date: before, validation_mode: null, jobs: { count: 2 } });
    expect(() => emulator!.removeJob(1)).toThrow(/Only ground truth jobs/);
  });

  it('serves context images through the cache: 400 outside the segment, 404 without related files', async () => {
    emulator = await startEmulator({
      buildTimeMs: 1,
      tasks: [{ id: 1, size: 6, segmentSize: 3, relatedFiles: [2, 0, 0, 1, 0, 0], groundTruthFrames: [0, 4] }],
    });
    expect((await get('/api/tasks/1/data/meta')).json()['frames']).toMatchObject([
      { related_files: 2 },
      { related_files: 0 },
      {},
      { related_files: 1 },
      {},
      {},
    ]);
    expect((await get('/api/jobs/1/data?type=context_image&quality=original&number=0')).status).toBe(200);
    expect(emulator.state.isCached('context_images_1_0')).toBe(true);
    expect((await get('/api/jobs/1/data?type=context_image&quality=original&number=3')).status).toBe(400);
    expect((await get('/api/jobs/2/data?type=context_image&quality=original&number=3')).status).toBe(200);
    expect((await get('/api/jobs/1/data?type=context_image&quality=original&number=1')).status).toBe(404);
    // The GT job holds frames 0 and 4 only.
    expect((await get('/api/jobs/3/data?type=context_image&quality=original&number=3')).status).toBe(400);
    expect(emulator.state.uiReadKeys()).toEqual(
      new Set(['segment_1_chunk_0_0', 'segment_2_chunk_0_0', 'segment_3_chunk_0_0', 'context_images_1_0', 'context_images_1_3']),
    );
  });

  it('honeypot tasks: GT job on the pool range, placeholders showing pool frames, validation_mode gt_pool', async () => {
    emulator = await startEmulator({ tasks: [{ id: 1, size: 12, chunkSize: 2, segmentSize: 4, honeypots: { pool: 4, perJob: 1 } }] });
    const jobs = (await get('/api/jobs?task_id=1&sort=id')).json()['results'] as Array<Record<string, unknown>>;
    expect(jobs.map((j) => [j['type'], j['start_frame'], j['stop_frame']])).toEqual([
      ['annotation', 0, 3],
      ['annotation', 4, 7],
      ['ground_truth', 8, 11],
    ]);
    expect((await get('/api/jobs/3/data/meta')).json()['included_frames']).toBeNull();
    expect((await get('/api/tasks/1')).json()['validation_mode']).toBe('gt_pool');
    const frames = (await get('/api/tasks/1/data/meta')).json()['frames'] as Array<{ name: string }>;
    expect(frames[3]!.name).toBe(frames[8]!.name);
    expect(frames[7]!.name).toBe(frames[9]!.name);
  });

  it('audio: chunk_size is a duration, frames and context images are refused', async () => {
    emulator = await startEmulator({ buildTimeMs: 1, tasks: [{ id: 1, mediaType: 'audio', size: 6914 }] });
    expect((await get('/api/tasks/1')).json()).toMatchObject({
      media_type: 'audio',
      dimension: '1d',
      data_chunk_size: 6914,
      data_compressed_chunk_type: 'audio_mp3',
    });
    expect((await get('/api/jobs/1/data?type=chunk&quality=compressed&index=0')).status).toBe(200);
    expect((await get('/api/jobs/1/data?type=chunk&quality=compressed&index=1')).status).toBe(400);
    expect((await get('/api/jobs/1/data?type=context_image&quality=original&number=0')).status).toBe(400);
  });
});
