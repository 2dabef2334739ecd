/**
 * The emulator's cloud storages against CVAT 2.73's source (cvat/apps/engine/views.py
 * CloudStorageViewSet.content_v2 / status, cloud_provider.py list_files_on_one_page and the
 * validate_* wrappers, models.py Data.get_cloud_storage_client, backup.py _write_data,
 * background.py BackupExporter lightweight; see src/emulator/cloud.ts for the lines read).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { DEMO_CREDENTIALS, demoAuth, startEmulator, type Emulator } from '../src/emulator/index.js';
import { cloudTask, fillBucket, frameKeys } from './support/cloud.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('warden-emu-cloud-');
let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

const auth = { authorization: `Bearer ${DEMO_CREDENTIALS.accessToken}`, accept: 'application/json' };
async function get(path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown; text: string }> {
  const response = await fetch(`${emulator!.url}${path}`, { ...init, headers: { ...auth } });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain text
  }
  return { status: response.status, body, text };
}

async function start(extraKeys: string[] = []): Promise<string> {
  const bucket = join(tmp.path, 'bucket');
  fillBucket(bucket, [...frameKeys('imgs', 12), ...extraKeys]);
  emulator = await startEmulator({
    auth: demoAuth(),
    buildTimeMs: 1,
    cloudStorages: [{ id: 7, resource: 'my-bucket', displayName: 'Mine', bucketDir: bucket }],
    tasks: [cloudTask(1, 7, frameKeys('imgs', 12), { relatedFiles: [['imgs/related_images/f_000_jpg/ctx.jpg']] })],
  });
  return bucket;
}

describe('emulated cloud storage (CVAT 2.73)', () => {
  it('lists one directory level per content-v2 call, pages of at most 500 with next_token, dirs first', async () => {
    await start(['imgs/related_images/f_000_jpg/ctx.jpg', 'top.zip']);
    const root = await get('/api/cloudstorages/7/content-v2');
    expect(root.body).toEqual({
      next: null,
      content: [
        { name: 'imgs', type: 'DIR', mime_type: 'DIR' },
        { name: 'top.zip', type: 'REG', mime_type: 'archive' },
      ],
    });
    // A leading "/" is stripped; names are cut after the prefix's last "/".
    const first = await get('/api/cloudstorages/7/content-v2?prefix=/imgs/&page_size=5');
    const page1 = first.body as { next: string | null; content: Array<{ name: string; type: string }> };
    expect(page1.content).toHaveLength(5);
    expect(page1.content[0]).toEqual({ name: 'f_000.jpg', type: 'REG', mime_type: 'image' });
    expect(page1.next).toEqual(expect.any(String));
    const names: string[] = page1.content.map((c) => c.name);
    let next = page1.next;
    while (next) {
      const page = (await get(`/api/cloudstorages/7/content-v2?prefix=imgs/&page_size=5&next_token=${encodeURIComponent(next)}`)).body as typeof page1;
      names.push(...page.content.map((c) => c.name));
      next = page.next;
    }
    expect(names.sort()).toEqual([...frameKeys('imgs', 12).map((k) => k.slice(5)), 'related_images'].sort());
    expect((await get('/api/cloudstorages/7/content-v2?page_size=600')).status).toBe(200);
    const bad = await get('/api/cloudstorages/7/content-v2?page_size=ten');
    expect([bad.status, bad.text]).toEqual([400, 'Wrong value for page_size was found']);
    expect(emulator!.cloud.listCalls).toBe(5); // root, 3 pages of imgs/, page_size=600 (the 400 never lists)
  });

  it('caps a page at 500 entries', async () => {
    await start(frameKeys('many', 620));
    const page = (await get('/api/cloudstorages/7/content-v2?prefix=many/&page_size=1000')).body as { content: unknown[]; next: string | null };
    expect(page.content).toHaveLength(500);
    expect(page.next).not.toBeNull();
  });

  it('answers status as a JSON string, and content-v2 on a forbidden or missing bucket with a 500', async () => {
    await start();
    expect((await get('/api/cloudstorages/7/status')).text).toBe('"AVAILABLE"');
    emulator!.cloud.setStatus(7, 'FORBIDDEN');
    expect((await get('/api/cloudstorages/7/status')).body).toBe('FORBIDDEN');
    expect(await get('/api/cloudstorages/7/content-v2')).toMatchObject({ status: 500, body: 'An internal error has occurred' });
    expect(await get('/api/cloudstorages/99/status')).toMatchObject({ status: 404, body: { detail: 'No CloudStorage matches the given query.' } });
  });

  it('answers chunk builds with the exact 403/404/409 bodies', async () => {
    const bucket = await start();
    const job = emulator!.deployment.tasks.get(1)!.jobs[0]!;
    const chunk = `/api/jobs/${job.id}/data?type=chunk&quality=compressed&index=0`;
    expect((await get(chunk)).status).toBe(200);
    rmSync(join(bucket, 'imgs/f_004.jpg'));
    expect(await get(`/api/jobs/${job.id}/data?type=chunk&quality=compressed&index=1`)).toMatchObject({
      status: 404,
      text: JSON.stringify("The file 'imgs/f_004.jpg' not found on the cloud storage 'my-bucket'"),
    });
    emulator!.cloud.setStatus(7, 'FORBIDDEN');
    expect(await get(`/api/jobs/${job.id}/data?type=chunk&quality=original&index=0`)).toMatchObject({
      status: 403,
      body: 'The resource my-bucket is no longer available. Access forbidden.',
    });
    emulator!.cloud.setStatus(7, 'NOT_FOUND');
    expect(await get(`/api/jobs/${job.id}/data?type=chunk&quality=original&index=0`)).toMatchObject({
      status: 404,
      body: 'The resource my-bucket not found. It may have been deleted.',
    });
    emulator!.removeCloudStorage(7);
    expect(await get(`/api/jobs/${job.id}/data?type=chunk&quality=original&index=0`)).toMatchObject({
      status: 409,
      body: 'Task is not connected to cloud storage',
    });
    expect((await get('/api/tasks/1/data/meta')).body).toMatchObject({ storage: 'cloud_storage', cloud_storage_id: null });
  });

  it('backs up heavyweight unless lightweight=true is asked: the zip holds the objects, or only the manifest', async () => {
    await start(['imgs/related_images/f_000_jpg/ctx.jpg']);
    const entries = async (query: string): Promise<{ names: string[]; taskJson: Record<string, unknown> }> => {
      const started = await fetch(`${emulator!.url}/api/tasks/1/backup/export${query}`, { method: 'POST', headers: auth });
      const { rq_id } = (await started.json()) as { rq_id: string };
      let request: { status: string; result_url: string | null; operation: { lightweight: boolean } };
      // Polled like a client of the requests API does.
      for (;;) {
        request = (await get(`/api/requests/${encodeURIComponent(rq_id)}`)).body as typeof request;
        if (request.status === 'finished' || request.status === 'failed') break;
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(request.operation.lightweight).toBe(query === '?lightweight=true');
      expect(request.status).toBe('finished');
      const zip = Buffer.from(await (await fetch(request.result_url!, { headers: auth })).arrayBuffer());
      return readZip(zip);
    };
    const heavy = await entries('?lightweight=false');
    expect(heavy.names).toEqual(expect.arrayContaining(['data/imgs/f_000.jpg', 'data/imgs/f_011.jpg', 'data/imgs/related_images/f_000_jpg/ctx.jpg']));
    expect((heavy.taskJson['data'] as { storage: string }).storage).toBe('local');
    const byDefault = await entries('');
    expect(byDefault.names).toContain('data/imgs/f_000.jpg'); // background.py: lightweight defaults to False
    const light = await entries('?lightweight=true');
    expect(light.names.filter((n) => n.startsWith('data/'))).toEqual(['data/manifest.jsonl']);
    expect((light.taskJson['data'] as { storage: string }).storage).toBe('cloud_storage');
  });
});

function readZip(zip: Buffer): Promise<{ names: string[]; taskJson: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (error, file) => {
      if (error) {
        reject(error);
        return;
      }
      const names: string[] = [];
      let taskJson: Record<string, unknown> = {};
      file.on('entry', (entry: yauzl.Entry) => {
        names.push(entry.fileName);
        if (entry.fileName !== 'task.json') {
          file.readEntry();
          return;
        }
        file.openReadStream(entry, (err, stream) => {
          if (err) {
            reject(err);
            return;
          }
          const parts: Buffer[] = [];
          stream.on('data', (p: Buffer) => parts.push(p));
          stream.on('end', () => {
            taskJson = JSON.parse(Buffer.concat(parts).toString('utf8'));
            file.readEntry();
          });
        });
      });
      file.on('end', () => resolve({ names, taskJson }));
      file.readEntry();
    });
  });
}
