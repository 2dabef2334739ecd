/**
 * Jobs against their task (src/cvat/sanity.ts): every job of CVAT's own test databases
 * passes, and each kind of contradiction is named with the job's id.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobContradiction, keepSaneJobs } from '../src/cvat/sanity.js';
import { JobSchema, TaskSchema, type Job, type Task } from '../src/cvat/shapes.js';
import { describeWithSharedCvat } from './support/shared-cvat.js';

describeWithSharedCvat('job sanity on real CVAT data', (dir) => {
  for (const version of ['v2.5.0', 'v2.14.4', 'v2.73.0']) {
    it(`accepts every job of CVAT ${version}'s test database`, () => {
      const assets = join(dir, version, 'tests/python/shared/assets');
      const tasks = new Map<number, Task>();
      for (const raw of (JSON.parse(readFileSync(join(assets, 'tasks.json'), 'utf8')) as { results: unknown[] }).results) {
        const task = TaskSchema.parse(raw);
        tasks.set(task.id, task);
      }
      const jobs = (JSON.parse(readFileSync(join(assets, 'jobs.json'), 'utf8')) as { results: unknown[] }).results.map((raw) => JobSchema.parse(raw));
      let checked = 0;
      for (const job of jobs) {
        const task = tasks.get(job.task_id);
        if (!task || !task.size) continue;
        expect(jobContradiction(task, job), `job ${job.id}`).toBeUndefined();
        checked++;
      }
      expect(checked).toBeGreaterThan(10);
    });
  }
});

describe('job sanity', () => {
  const task = TaskSchema.parse({ id: 7, size: 100, data: 7, data_chunk_size: 10 });
  const job = (fields: Record<string, unknown>): Job =>
    JobSchema.parse({ id: 70, task_id: 7, start_frame: 0, stop_frame: 49, frame_count: 50, data_chunk_size: 10, ...fields });

  it('names each contradiction', () => {
    expect(jobContradiction(task, job({}))).toBeUndefined();
    expect(jobContradiction(task, job({ type: 'ground_truth', start_frame: 0, stop_frame: 99, frame_count: 7 }))).toBeUndefined();
    expect(jobContradiction(task, job({ frame_count: 1_000_000_000 }))).toMatch(/frame_count 1000000000 exceeds its frames 0–49 \(50\)/);
    expect(jobContradiction(task, job({ start_frame: 50, stop_frame: 100, frame_count: 51 }))).toMatch(/frames 50–100 reach beyond the task's 100 frames/);
    expect(jobContradiction(task, job({ data_chunk_size: 1 }))).toMatch(/chunk size 1 differs from its task's 10/);
  });

  it('keeps the sane jobs and reports the others with their ids', () => {
    const rejected: Array<{ jobId: number; message: string }> = [];
    const kept = keepSaneJobs(
      task,
      [job({ id: 1 }), job({ id: 2, stop_frame: 999_999_999, frame_count: 1_000_000_000 }), job({ id: 3, start_frame: 50, stop_frame: 99 })],
      (r) => rejected.push(r),
    );
    expect(kept.map((j) => j.id)).toEqual([1, 3]);
    expect(rejected).toEqual([{ taskId: 7, jobId: 2, message: expect.stringMatching(/^job 2 of task 7 skipped: it contradicts its task/) }]);
  });
});
