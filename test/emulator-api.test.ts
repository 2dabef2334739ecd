/** REST surface: path prefix, pagination with absolute `next`, filters/sort/JSON-logic, details, runtime changes, restart, control API. */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, startEmulator, type Emulator, type EmulatorOptions } from '../src/emulator/index.js';
import { http } from './support/emulator-http.js';

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

async function start(options: EmulatorOptions = {}): Promise<Emulator> {
  emu = await startEmulator({ buildTimeMs: 1, chunkBytes: 1024, ...options });
  return emu;
}

type Page = { count: number; next: string | null; previous: string | null; results: Array<Record<string, unknown>> };

describe('paths and pagination', () => {
  it('serves under the prefix only, with absolute next/previous links that keep it', async () => {
    const e = await start({ pathPrefix: '/cvat', tasks: Array.from({ length: 25 }, () => ({ size: 3 })) });
    expect(e.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/cvat$/);
    expect((await http(`${e.url.replace('/cvat', '')}/api/tasks`)).status).toBe(404);
    const empty = (await http(`${e.url}/api/tasks?project_id=&page_size=10`)).json() as Page;
    expect(empty.count).toBe(25); // django-filter ignores empty values
    const first = (await http(`${e.url}/api/tasks?page_size=10`)).json() as Page;
    expect(first.count).toBe(25);
    expect(first.results.map((t) => t['id'])).toEqual([25, 24, 23, 22, 21, 20, 19, 18, 17, 16]);
    expect(first.previous).toBeNull();
    expect(first.next).toBe(`${e.url}/api/tasks?page_size=10&page=2`);
    const third = (await http(first.next!.replace('page=2', 'page=3'))).json() as Page;
    expect(third.results).toHaveLength(5);
    expect(third.next).toBeNull();
    expect(third.previous).toBe(`${e.url}/api/tasks?page_size=10&page=2`);
    const second = (await http(third.previous!)).json() as Page;
    expect(second.previous).toBe(`${e.url}/api/tasks?page_size=10`);
    const all = (await http(`${e.url}/api/tasks?page_size=all`)).json() as Page;
    expect([all.count, all.results.length, all.next]).toEqual([25, 25, null]);
    const dflt = (await http(`${e.url}/api/jobs`)).json() as Page;
    expect(dflt.results).toHaveLength(10);
    expect((await http(`${e.url}/api/tasks?page=9`)).json()).toEqual({ detail: 'Invalid page.' });
    expect(all.results[0]?.['url']).toBe(`${e.url}/api/tasks/25`);
  });

  it('works behind a Host header like DRF build_absolute_uri', async () => {
    const e = await start({ tasks: Array.from({ length: 3 }, () => ({ size: 1 })) });
    const r = await http(`${e.url}/api/tasks?page_size=1`, { headers: { host: 'cvat.example.org' } });
    expect((r.json() as Page).next).toBe('http://cvat.example.org/api/tasks?page_size=1&page=2');
  });
});

describe('filters and sorting', () => {
  it('simple filters, sort and JSON-logic on id and updated_date', async () => {
    const clock = new ManualClock(Date.parse('2026-08-01T00:00:00Z'));
    const e = await start({
      clock,
      tasks: [
        { id: 1, size: 10, segmentSize: 5, projectId: 7 },
        { id: 2, size: 10, groundTruthFrames: [1] },
        { id: 3, size: 4, name: 'zeta' },
      ],
    });
    clock.advance(3600_000);
    const ids = async (q: string, what = 'tasks'): Promise<number[]> =>
      ((await http(`${e.url}/api/${what}?${q}`)).json() as Page).results.map((x) => x['id'] as number);
    // A job update touches its task only when the task's aggregated status changes
    // (cvat/apps/engine/signals.py __save_job_handler): job 2 is still in annotation.
    e.updateJob(1, { state: 'completed', stage: 'acceptance' });
    expect(await ids('sort=-updated_date')).toEqual([3, 2, 1]);
    e.updateJob(2, { state: 'completed', stage: 'acceptance' });
    expect(await ids('project_id=7')).toEqual([1]);
    expect(await ids('name=zeta')).toEqual([3]);
    expect(await ids('search=ZET')).toEqual([3]);
    expect(await ids('sort=id')).toEqual([1, 2, 3]);
    expect(await ids('sort=-updated_date')).toEqual([1, 3, 2]);
    const f = (rule: unknown): string => `filter=${encodeURIComponent(JSON.stringify(rule))}`;
    expect(await ids(f({ and: [{ '>': [{ var: 'updated_date' }, '2026-08-01T00:30:00Z'] }] }))).toEqual([1]);
    expect(await ids(f({ '>=': [{ var: 'id' }, 2] }))).toEqual([3, 2]);
    expect(await ids(f({ and: [{ '==': [{ var: 'id' }, 2] }, { '<': [{ var: 'updated_date' }, '2027-01-01T00:00:00Z'] }] }))).toEqual([2]);
    expect(await ids(f({ or: [{ '==': [{ var: 'id' }, 1] }, { in: [{ var: 'id' }, [3]] }] }))).toEqual([3, 1]);
    expect((await http(`${e.url}/api/tasks?${f({ '==': [{ var: 'nope' }, 1] })}`)).status).toBe(400);
    expect((await http(`${e.url}/api/tasks?filter=%7Bbad`)).status).toBe(400);
    expect(await ids('task_id=1&state=completed', 'jobs')).toEqual([2, 1]);
    expect(await ids('type=ground_truth', 'jobs')).toEqual([4]);
    expect(await ids(`task_id=1&${f({ '>': [{ var: 'updated_date' }, '2026-08-01T00:30:00Z'] })}`, 'jobs')).toEqual([2, 1]);
  });
});

describe('details, runtime changes and restarts', () => {
  it('404s, a task without data, about and users/self', async () => {
    const e = await start({ tasks: [{ id: 12, noData: true, name: 'task_without_data' }] });
    expect((await http(`${e.url}/api/tasks/99`)).json()).toEqual({ detail: 'Not found.' });
    expect((await http(`${e.url}/api/nope`)).status).toBe(404);
    const t = (await http(`${e.url}/api/tasks/12`)).json() as Record<string, unknown>;
    expect(t).toMatchObject({ data: null, mode: '', media_type: '', dimension: '', overlap: null, jobs: { count: 0 } });
    expect(t).not.toHaveProperty('size');
    expect((await http(`${e.url}/api/tasks/12/data/meta`)).status).toBe(500);
    expect((await http(`${e.url}/api/tasks/12/data?type=chunk&number=0`)).status).toBe(500);
    const preview = await http(`${e.url}/api/tasks/12/preview`);
    expect([preview.status, preview.text]).toEqual([404, 'Task image preview not found']);
    expect(((await http(`${e.url}/api/jobs?task_id=12`)).json() as Page).count).toBe(0);
    const about = (await http(`${e.url}/api/server/about`)).json() as Record<string, unknown>;
    expect(about).toMatchObject({ name: 'Computer Vision Annotation Tool', version: '2.73.0' });
    expect((await http(`${e.url}/api/server/about`)).headers['content-type']).toBe('application/vnd.cvat+json');
    expect((await http(`${e.url}/api/server/about`, { headers: { accept: 'application/json' } })).headers['content-type']).toBe('application/json');
    expect((await http(`${e.url}/api/users/self`)).json()).toMatchObject({ username: 'admin', is_superuser: true });
    expect((await http(`${e.url}/api/tasks`, { method: 'DELETE' })).status).toBe(405);
  });

  it('adds and removes tasks at runtime', async () => {
    const e = await start();
    const task = e.addTask({ size: 8, chunkSize: 4 });
    expect(task.id).toBe(1);
    expect(((await http(`${e.url}/api/jobs?task_id=1`)).json() as Page).count).toBe(1);
    expect((await http(`${e.url}/api/jobs/1/data?type=chunk&index=1&quality=compressed`)).status).toBe(200);
    e.removeTask(1);
    expect((await http(`${e.url}/api/tasks/1`)).status).toBe(404);
    expect((await http(`${e.url}/api/jobs/1/data?type=chunk&index=1&quality=compressed`)).status).toBe(404);
    expect(e.addTask({ size: 1 }).id).toBe(2);
  });

  it('stop() refuses connections, start() listens again on the same port with the cache intact', async () => {
    const e = await start({ tasks: [{ size: 4, chunkSize: 2 }] });
    const url = `${e.url}/api/jobs/1/data?type=chunk&index=0&quality=compressed`;
    expect((await http(url)).status).toBe(200);
    const port = e.port;
    await e.stop();
    await expect(http(url)).rejects.toThrow(/ECONNREFUSED|connect/);
    await e.start();
    expect(e.port).toBe(port);
    expect((await http(url)).status).toBe(200);
    expect(e.state.totalBuilds).toBe(1);
    await e.close();
    await e.close();
  });

  it('control API: state, keys, clock and touch', async () => {
    const clock = new ManualClock();
    const e = await start({ clock, tasks: [{ size: 4, chunkSize: 2 }] });
    await http(`${e.url}/api/jobs/1/data?type=chunk&index=0&quality=compressed`);
    const state = (await http(`${e.url}/__emulator/state`)).json() as Record<string, unknown>;
    expect(state).toMatchObject({ version: '2.73.0', tasks: 1, jobs: 1, builds: { total: 1 }, ui: { chunkKeys: 2, cold: 1 } });
    const keys = (await http(`${e.url}/__emulator/keys`)).json() as { ui: string[]; cold: string[]; cached: string[] };
    expect(keys.cold).toEqual(['segment_1_chunk_1_0']);
    const adv = await http(`${e.url}/__emulator/clock/advance`, { method: 'POST', body: { ms: 86_400_000 } });
    expect(adv.status).toBe(200);
    expect(e.state.cachedKeys()).toEqual([]);
    expect((await http(`${e.url}/__emulator/touch`, { method: 'POST', body: { jobId: 1 } })).status).toBe(200);
    expect((await http(`${e.url}/__emulator/touch`, { method: 'POST', body: { jobId: 9 } })).status).toBe(404);
    const sys = await start();
    expect((await http(`${sys.url}/__emulator/clock/advance`, { method: 'POST', body: { ms: 1 } })).status).toBe(409);
  });
});
