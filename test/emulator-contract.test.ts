/**
 * Contract: the emulator's JSON validates against CVAT's own OpenAPI schema (v2.73.0 for the
 * default mode, v2.14.4 for old mode), tightened with `additionalProperties: false` so an
 * invented field fails too — and has exactly the field set of CVAT's real response dumps.
 * The tightened validator is first checked against those real dumps.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copySampleShare, demoDeployment, startEmulator, type Emulator } from '../src/emulator/index.js';
import { http } from './support/emulator-http.js';
import { cvatSchemas, expectValid, type CvatSchemas } from './support/openapi.js';
import { describeWithSharedCvat } from './support/shared-cvat.js';
import { useTempDir } from './support/tmp.js';

type Page = { results: Array<Record<string, unknown>> };
const sortedKeys = (o: Record<string, unknown>): string[] => Object.keys(o).sort();

describeWithSharedCvat('emulator contract against CVAT OpenAPI schemas', (cvatDir) => {
  const tmp = useTempDir('emu-contract-', { scope: 'suite' });
  const emus: Record<string, Emulator> = {};

  beforeAll(async () => {
    const shareDir = await copySampleShare(tmp.path);
    for (const version of ['2.73.0', '2.14.4']) {
      emus[version] = await startEmulator({ ...demoDeployment(shareDir), version, buildTimeMs: 1, chunkBytes: 1024, pathPrefix: '/cvat' });
    }
  });
  afterAll(async () => {
    for (const e of Object.values(emus)) await e.close();
  });

  for (const version of ['2.73.0', '2.14.4']) {
    const dir = path.join(cvatDir, `v${version}`);
    const assets = path.join(dir, 'tests/python/shared/assets');
    let cached: CvatSchemas | undefined;
    const schemas = (): CvatSchemas => (cached ??= cvatSchemas(path.join(dir, 'cvat/schema.yml'), `cvat-${version}`));
    const schema = (): CvatSchemas['schema'] => schemas().schema;
    const auth = { authorization: 'Bearer demo-token-not-secret' };
    const get = async <T>(e: Emulator, p: string): Promise<T> => {
      const r = await http(`${e.url}${p}`, {
        headers: version === '2.73.0' ? auth : { authorization: 'Basic ' + Buffer.from('admin:admin-password').toString('base64') },
      });
      expect(r.status, `${p}: ${r.text.slice(0, 200)}`).toBe(200);
      return r.json() as T;
    };

    it(`${version}: the tightened schema accepts CVAT's real task and job dumps`, () => {
      const v = schema();
      for (const [file, name] of [
        ['tasks.json', 'PaginatedTaskReadList'],
        ['jobs.json', 'PaginatedJobReadList'],
      ] as const) {
        expectValid(v(name), JSON.parse(fs.readFileSync(path.join(assets, file), 'utf8')), `real ${file}`);
      }
      // …and it does reject what it should
      const real = (JSON.parse(fs.readFileSync(path.join(assets, 'tasks.json'), 'utf8')) as Page).results[0] as Record<string, unknown>;
      expect(v('TaskRead')({ ...real, invented_field: 1 })).toBe(false);
      expect(v('TaskRead')({ ...real, name: null })).toBe(false);
      expect(v('TaskRead')({ ...real, project_id: null })).toBe(true);
      expect(v('DataMetaRead')({ chunk_size: 1 })).toBe(false);
    });

    it(`${version}: about, tasks, jobs, meta and share validate`, async () => {
      const e = emus[version] as Emulator;
      const v = schema();
      expectValid(v('About'), await get(e, '/api/server/about'), 'about');
      const tasks = await get<Page>(e, '/api/tasks?page_size=3');
      expectValid(v('PaginatedTaskReadList'), tasks, 'tasks page');
      const allTasks = await get<Page>(e, '/api/tasks?page_size=all');
      for (const t of allTasks.results) {
        expectValid(v('TaskRead'), await get(e, `/api/tasks/${String(t['id'])}`), `task ${String(t['id'])}`);
        if (t['data'] !== null && t['data'] !== undefined) {
          expectValid(v('DataMetaRead'), await get(e, `/api/tasks/${String(t['id'])}/data/meta`), `task ${String(t['id'])} meta`);
        }
      }
      const jobs = await get<Page>(e, '/api/jobs?page_size=all');
      expectValid(v('PaginatedJobReadList'), jobs, 'jobs');
      expect(new Set(jobs.results.map((j) => j['type']))).toEqual(
        new Set(version === '2.73.0' ? ['annotation', 'ground_truth', 'consensus_replica'] : ['annotation', 'ground_truth']),
      );
      for (const j of jobs.results) {
        expectValid(v('JobRead'), await get(e, `/api/jobs/${String(j['id'])}`), `job ${String(j['id'])}`);
        expectValid(v('DataMetaRead'), await get(e, `/api/jobs/${String(j['id'])}/data/meta`), `job ${String(j['id'])} meta`);
      }
      const share = { type: 'array', items: { $ref: `cvat-${version}#/components/schemas/FileInfo` } };
      const shareListing = schemas().compile(share);
      for (const directory of ['/', 'images', 'images/with_related/related_images']) {
        const listing = await get(e, `/api/server/share?directory=${encodeURIComponent(directory)}`);
        expectValid(shareListing, listing, `share ${directory}`);
      }
      if (version === '2.73.0') {
        expectValid(v('PaginatedOrganizationReadList'), await get(e, '/api/organizations'), 'organizations');
        expectValid(v('User'), await get(e, '/api/users/self'), 'users/self');
      }
    });

    it(`${version}: task and job objects have exactly the fields of the real dumps`, async () => {
      const e = emus[version] as Emulator;
      const realTasks = JSON.parse(fs.readFileSync(path.join(assets, 'tasks.json'), 'utf8')) as Page;
      const realJobs = JSON.parse(fs.readFileSync(path.join(assets, 'jobs.json'), 'utf8')) as Page;
      const withData = realTasks.results.find((t) => t['data'] !== null && t['data'] !== undefined && 'image_quality' in t) as Record<string, unknown>;
      const noData = realTasks.results.find((t) => t['name'] === 'task_without_data') as Record<string, unknown>;
      const ours = await get<Page>(e, '/api/tasks?page_size=all');
      for (const t of ours.results) {
        const expected = t['id'] === 7 ? noData : withData;
        expect(sortedKeys(t), `task ${String(t['id'])}`).toEqual(sortedKeys(expected));
      }
      const jobKeys = sortedKeys(realJobs.results[0] as Record<string, unknown>);
      for (const j of (await get<Page>(e, '/api/jobs?page_size=all')).results) expect(sortedKeys(j), `job ${String(j['id'])}`).toEqual(jobKeys);
    });
  }
});
