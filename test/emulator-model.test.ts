/**
 * The emulator's own CVAT model: segment arithmetic (`_generate_segment_params`), jobs
 * (GT on SPECIFIC_FRAMES, replicas sharing the parent's segment), job meta frames and the
 * UI chunk keys — checked against numbers from CVAT's fixture, not against warden code.
 */
import { describe, expect, it } from 'vitest';
import { Deployment } from '../src/emulator/model.js';
import { ManualClock } from '../src/emulator/clock.js';
import { countUiChunks, generateSegmentParams, syntheticDeployment } from '../src/emulator/index.js';
import { uiChunkKeys } from '../src/emulator/keys.js';
import { rangeFrameSet, taskChunkFrames } from '../src/emulator/segments.js';

function deployment(): Deployment {
  return new Deployment({
    clock: new ManualClock(),
    shareDir: undefined,
    supportsConsensus: true,
    organizations: [{ id: 2, slug: 'org2' }],
    checkUser: () => undefined,
    defaultOwner: 'admin',
  });
}

describe('segment arithmetic', () => {
  it('matches CVAT fixture task 34 (size 20, segment 10, interpolation → overlap 5)', () => {
    const plan = generateSegmentParams(20, 10, undefined, 'interpolation');
    expect(plan.overlap).toBe(5);
    expect(plan.segments).toEqual([
      { startFrame: 0, stopFrame: 9 },
      { startFrame: 5, stopFrame: 14 },
      { startFrame: 10, stopFrame: 19 },
    ]);
  });

  it('whole task when segment_size is 0, overlap capped at segment_size // 2', () => {
    expect(generateSegmentParams(25, 0, undefined, 'interpolation')).toEqual({ segments: [{ startFrame: 0, stopFrame: 24 }], overlap: 5 });
    expect(generateSegmentParams(6, 4, 10, 'annotation')).toEqual({
      segments: [
        { startFrame: 0, stopFrame: 3 },
        { startFrame: 2, stopFrame: 5 },
      ],
      overlap: 2,
    });
    expect(generateSegmentParams(1, 0, undefined, 'annotation').segments).toEqual([{ startFrame: 0, stopFrame: 0 }]);
    expect(generateSegmentParams(11, 5, undefined, 'annotation').segments.map((s) => s.startFrame)).toEqual([0, 5, 10]);
  });

  it('frame sets are absolute (start 2, step 5, like fixture data 33)', () => {
    const g = { start: 2, stop: 97, step: 5, size: 20 };
    expect(rangeFrameSet(g, { startFrame: 5, stopFrame: 14 })).toEqual([27, 32, 37, 42, 47, 52, 57, 62, 67, 72]);
    expect(taskChunkFrames(g, 1, 8)).toEqual([42, 47, 52, 57, 62, 67, 72, 77]);
    expect(taskChunkFrames(g, 2, 8)).toEqual([82, 87, 92, 97]);
  });
});

describe('deployment model', () => {
  it('creates jobs like CVAT: annotation + replicas per segment, then GT', () => {
    const d = deployment();
    const t = d.addTask({
      id: 34,
      size: 20,
      startFrame: 2,
      frameStep: 5,
      mode: 'interpolation',
      segmentSize: 10,
      chunkSize: 72,
      groundTruthFrames: [7, 10, 19],
      consensusReplicas: 2,
      organization: 'org2',
    });
    expect(t.jobs.map((j) => [j.id, j.type, j.parentJobId])).toEqual([
      [1, 'annotation', null],
      [2, 'consensus_replica', 1],
      [3, 'consensus_replica', 1],
      [4, 'annotation', null],
      [5, 'consensus_replica', 4],
      [6, 'consensus_replica', 4],
      [7, 'annotation', null],
      [8, 'consensus_replica', 7],
      [9, 'consensus_replica', 7],
      [10, 'ground_truth', null],
    ]);
    const gt = t.segments.at(-1);
    // fixture segment 54: frames "37,52,97", start 0, stop 19
    expect(gt).toMatchObject({ type: 'specific_frames', startFrame: 0, stopFrame: 19, frames: [37, 52, 97] });
    expect(t.jobs[1]?.segmentId).toBe(t.jobs[0]?.segmentId);
  });

  it('UI chunk keys: index chunks of annotation + GT jobs, replicas add nothing', () => {
    const d = deployment();
    d.addTask({ id: 1, mediaType: 'video', size: 100, chunkSize: 10, segmentSize: 30, groundTruthFrames: [3, 50], consensusReplicas: 3 });
    const keys = uiChunkKeys(d, false);
    // segments [0-29], [25-54], [50-79], [75-99]: 3 + 3 + 3 + 3 chunks; GT: 1 chunk
    expect(keys.size).toBe(13);
    expect(keys.has('segment_1_chunk_2_0')).toBe(true);
    expect(keys.has('segment_5_chunk_0_0')).toBe(true);
    expect([...keys].every((k) => k.endsWith('_0'))).toBe(true);
  });

  it('old-mode UI keys are task chunk numbers shared across job borders', () => {
    const d = deployment();
    d.addTask({ id: 1, size: 25, chunkSize: 10, segmentSize: 12, groundTruthFrames: [1, 24] });
    const keys = [...uiChunkKeys(d, true)].sort();
    // jobs [0-11] → chunks 0,1; [12-23] → 1,2; [24-24] → 2; GT frames 1, 24 → chunks 0, 2 of job 4
    expect(keys).toEqual([
      '1_0_Quality.COMPRESSED',
      '1_1_Quality.COMPRESSED',
      '1_2_Quality.COMPRESSED',
      'job_4_0_Quality.COMPRESSED',
      'job_4_2_Quality.COMPRESSED',
    ]);
  });

  it('rejects inconsistent specs with clear messages', () => {
    const d = deployment();
    expect(() => d.addTask({})).toThrow(/give size, frames or stopFrame/);
    expect(() => d.addTask({ size: 5, groundTruthFrames: [5] })).toThrow(/outside/);
    expect(() => d.addTask({ size: 5, organization: 'nope' })).toThrow(/unknown organization/);
    expect(() => d.addTask({ size: 5, storage: 'share' })).toThrow(/shareDir/);
    d.addTask({ id: 3, size: 1 });
    expect(() => d.addTask({ id: 3, size: 1 })).toThrow(/already exists/);
  });
});

describe('syntheticDeployment', () => {
  it('hits a target chunk count exactly when reachable', () => {
    for (const target of [37, 500, 2048]) {
      const specs = syntheticDeployment({ tasks: 5, targetChunks: target, groundTruthFrames: 3, consensusReplicas: 1 });
      expect(countUiChunks(specs)).toBe(target);
      const d = deployment();
      for (const s of specs) d.addTask(s);
      expect(uiChunkKeys(d, false).size).toBe(countUiChunks(specs));
    }
  });

  it('stays just above an unreachable target (every task has at least one chunk per job)', () => {
    const specs = syntheticDeployment({ tasks: 5, targetChunks: 1, groundTruthFrames: 1 });
    expect(countUiChunks(specs)).toBe(10);
  });

  it('defaults: video, overlap 5, segment sizes not multiples of the chunk size', () => {
    const specs = syntheticDeployment();
    expect(specs).toHaveLength(4);
    const d = deployment();
    const t = d.addTask(specs[0] as (typeof specs)[number]);
    expect(t.overlap).toBe(5);
    expect(t.segmentSize % t.chunkSize).not.toBe(0);
  });
});
