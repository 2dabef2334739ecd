/**
 * The planner over CVAT's real job list (2.73 and 2.14 API dumps), cross-checked
 * against the DB fixture's segments: the number of chunks per job is computed here
 * independently from engine.segment / engine.data, not from the API fields the
 * planner reads.
 */
import { describe, expect, it } from 'vitest';
import { JobSchema, TaskSchema, type Job } from '../src/cvat/shapes.js';
import { planRequests, summarizePlan } from '../src/plan/planner.js';
import { toPlanTask } from '../src/plan/from-records.js';
import type { PlanOptions, PlanTask } from '../src/plan/types.js';
import { jobSeries, taskSeries } from '../src/series.js';
import { readSharedJson, sharedCvatAvailable } from './support/shared-cvat.js';

interface Page<T> {
  results: T[];
}
interface Fixture {
  model: string;
  pk: number;
  fields: Record<string, unknown>;
}

const OPTIONS: PlanOptions = { qualities: ['compressed'], previews: false, contextImages: false, indexChunks: true, skipCompleted: false };

function planTasks(version: string): { tasks: PlanTask[]; jobs: Job[] } {
  const tasks = (readSharedJson(`${version}/tests/python/shared/assets/tasks.json`) as Page<unknown>).results.map((t) => TaskSchema.parse(t));
  const jobs = (readSharedJson(`${version}/tests/python/shared/assets/jobs.json`) as Page<unknown>).results.map((j) => JobSchema.parse(j));
  const planned: PlanTask[] = [];
  for (const task of tasks) {
    const own = jobs.filter((j) => j.task_id === task.id);
    if (own.length === 0) continue;
    const p = toPlanTask({ task, jobs: own, jobMetas: new Map() }, { contextImages: false, onIssue: () => undefined });
    if (p) planned.push(p);
  }
  return { tasks: planned, jobs };
}

describe.runIf(sharedCvatAvailable())('planner over real CVAT 2.73 jobs', () => {
  it('plans ceil(segment frames / chunk size) index chunks per segment: annotation and GT jobs, replicas through their parent', () => {
    const { tasks, jobs } = planTasks('v2.73.0');
    const db = readSharedJson('v2.73.0/tests/python/shared/assets/cvat_db/data.json') as Fixture[];
    const segments = new Map(db.filter((r) => r.model === 'engine.segment').map((r) => [r.pk, r.fields]));
    const dbJobs = new Map(db.filter((r) => r.model === 'engine.job').map((r) => [r.pk, r.fields]));
    const dbTasks = new Map(db.filter((r) => r.model === 'engine.task').map((r) => [r.pk, r.fields]));
    const dbData = new Map(db.filter((r) => r.model === 'engine.data').map((r) => [r.pk, r.fields]));

    const planned = new Map<number, number[]>();
    for (const request of planRequests(tasks, OPTIONS)) {
      expect(request.path).toBe(`/api/jobs/${request.jobId}/data`);
      expect(request.query).toMatchObject({ type: 'chunk', quality: 'compressed' });
      planned.set(request.jobId, [...(planned.get(request.jobId) ?? []), request.slot]);
    }

    let checked = 0;
    for (const job of jobs) {
      const fields = dbJobs.get(job.id);
      if (!fields) continue;
      const segment = segments.get(fields['segment'] as number)!;
      const task = dbTasks.get(segment['task'] as number)!;
      const data = dbData.get(task['data'] as number)!;
      // Django stores SPECIFIC_FRAMES as "0,1,2" (or "[]" when empty).
      const rawFrames = segment['frames'];
      const specific = (typeof rawFrames === 'string' ? rawFrames : '').replace(/[[\]]/g, '').split(',').filter(Boolean);
      const frames = segment['type'] === 'specific_frames' ? specific.length : (segment['stop_frame'] as number) - (segment['start_frame'] as number) + 1;
      const expected = fields['type'] === 'consensus_replica' ? 0 : Math.ceil(frames / (data['chunk_size'] as number));
      const slots = (planned.get(job.id) ?? []).sort((a, b) => a - b);
      expect(slots, `job ${job.id} (${String(fields['type'])})`).toEqual([...Array(expected).keys()]);
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
    expect(jobs.some((j) => j.type === 'consensus_replica')).toBe(true);
    expect(jobs.some((j) => j.type === 'ground_truth')).toBe(true);
  });

  it('orders jobs new/in progress first, and chunk 0 of every job before any later chunk', () => {
    const { tasks } = planTasks('v2.73.0');
    const requests = [...planRequests(tasks, OPTIONS)];
    const tiers = requests.map((r) => r.tier);
    expect(tiers).toEqual([...tiers].sort((a, b) => a - b));
    expect(tiers).toContain(0);
    expect(tiers).toContain(1);
    for (const tier of [0, 1]) {
      const inTier = requests.filter((r) => r.tier === tier);
      const lastZero = inTier.map((r) => r.slot).lastIndexOf(0);
      const firstLater = inTier.findIndex((r) => r.slot > 0);
      if (firstLater >= 0) expect(lastZero).toBeLessThan(firstLater);
    }
    // A segment is live (tier 0) when any job on it — the parent or a replica — is new, in
    // progress or rejected: job 42 is completed, its replicas 43–45 are not.
    const all = tasks.flatMap((t) => t.jobs);
    const live = (id: number) => all.filter((j) => j.id === id || j.parentJobId === id).some((j) => ['new', 'in progress', 'rejected'].includes(j.state));
    for (const r of requests) expect(live(r.jobId)).toBe(r.tier === 0);
    expect(all.find((j) => j.id === 42)?.state).toBe('completed');
    expect(requests.find((r) => r.jobId === 42)?.tier).toBe(0);
  });

  it('leaves completed jobs out when asked, and counts without materialising', () => {
    const { tasks } = planTasks('v2.73.0');
    const all = summarizePlan(tasks, OPTIONS);
    const active = summarizePlan(tasks, { ...OPTIONS, skipCompleted: true });
    expect(active.requests).toBeLessThan(all.requests);
    expect(all.requests).toBe([...planRequests(tasks, OPTIONS)].length);
    const both = summarizePlan(tasks, { ...OPTIONS, qualities: ['compressed', 'original'] });
    expect(both.requests).toBe(2 * all.requests);
  });
});

describe.runIf(sharedCvatAvailable())('planner over real CVAT 2.14 jobs (task chunk numbers)', () => {
  it('requests each task chunk number once, shared border chunks de-duplicated', () => {
    const { tasks } = planTasks('v2.14.4');
    const legacy: PlanOptions = { ...OPTIONS, indexChunks: false };
    const requests = [...planRequests(tasks, legacy)];
    expect(requests.length).toBeGreaterThan(0);
    const keys = requests.filter((r) => r.series.startsWith('t')).map((r) => `${r.series}:${r.slot}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const r of requests) {
      expect(r.query).toHaveProperty('number');
      expect(r.query).not.toHaveProperty('index');
    }
    // Every annotation job's chunk range is covered by some request of its task.
    for (const task of tasks) {
      const covered = new Set(requests.filter((r) => r.taskId === task.id && r.series.startsWith('t')).map((r) => r.slot));
      for (const job of task.jobs.filter((j) => j.type === 'annotation')) {
        for (let n = Math.floor(job.startFrame / task.chunkSize); n <= Math.floor(job.stopFrame / task.chunkSize); n++) expect(covered.has(n)).toBe(true);
      }
    }
  });
});

describe.runIf(sharedCvatAvailable())('previews over real CVAT 2.73 jobs', () => {
  it('ask with Prefer: handling=empty on 2.67+ (204 for 3D and audio, no rendered placeholder), and without it before', () => {
    const { tasks } = planTasks('v2.73.0');
    const withPrefer = [...planRequests(tasks, { ...OPTIONS, previews: true, emptyPreviews: true })].filter((r) => r.kind.endsWith('preview'));
    expect(withPrefer.length).toBeGreaterThan(0);
    for (const r of withPrefer) expect(r.headers).toEqual({ prefer: 'handling=empty' });
    const without = [...planRequests(tasks, { ...OPTIONS, previews: true, emptyPreviews: false })].filter((r) => r.kind.endsWith('preview'));
    for (const r of without) expect(r.headers).toBeUndefined();
    // Chunks never carry it.
    for (const r of planRequests(tasks, { ...OPTIONS, previews: true, emptyPreviews: true })) if (r.kind === 'chunk') expect(r.headers).toBeUndefined();
  });
});

describe.runIf(sharedCvatAvailable())('series names over real CVAT 2.73 and 2.14 jobs', () => {
  it('every series the planner names is one its task or one of its jobs owns (forgotten with them: src/series.ts)', () => {
    for (const [version, indexChunks] of [
      ['v2.73.0', true],
      ['v2.14.4', false],
    ] as const) {
      const { tasks } = planTasks(version);
      const options: PlanOptions = { ...OPTIONS, qualities: ['compressed', 'original'], previews: true, contextImages: true, indexChunks };
      let checked = 0;
      for (const r of planRequests(tasks, options)) {
        const task = tasks.find((t) => t.id === r.taskId)!;
        const owned = new Set([...taskSeries(task.id), ...task.jobs.flatMap((j) => jobSeries(j.id))]);
        expect(owned.has(r.series)).toBe(true);
        checked++;
      }
      expect(checked).toBeGreaterThan(50);
    }
  });
});
