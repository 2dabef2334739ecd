/**
 * The emulator's task backup flow against CVAT 2.73's own OpenAPI schema (RqId, Request;
 * cvat/apps/engine/mixins.py BackupMixin): 202 then 409 while running, the request
 * status until finished with a result_url, the zip download, 410 for the removed GET
 * flow, and a failed export naming the missing share file as FileNotFoundError does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { copySampleShare, DEMO_CREDENTIALS, demoDeployment, startEmulator, type Emulator } from '../src/emulator/index.js';
import { http } from './support/emulator-http.js';
import { cvatSchemas } from './support/openapi.js';
import { describeWithSharedCvat } from './support/shared-cvat.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const tmp = useTempDir('emu-backup-');
let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

describeWithSharedCvat('emulator task backups', (cvatDir) => {
  const schemas = cvatSchemas(path.join(cvatDir, 'v2.73.0/cvat/schema.yml'), 'cvat');
  const valid = (name: string, data: unknown) => {
    const v = schemas.schema(name);
    expect(v(data), JSON.stringify(v.errors?.slice(0, 3))).toBe(true);
  };
  const auth = { authorization: `Bearer ${DEMO_CREDENTIALS.accessToken}` };

  it('exports, reports and serves a backup the way CVAT 2.73 does', async () => {
    const share = await copySampleShare(path.join(tmp.path, 'share'));
    emu = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1, backupExportTimeMs: 200 });
    const started = await http(`${emu.url}/api/tasks/1/backup/export`, { method: 'POST', headers: auth });
    expect(started.status).toBe(202);
    valid('RqId', started.json());
    const rqId = (started.json() as { rq_id: string }).rq_id;
    const again = await http(`${emu.url}/api/tasks/1/backup/export`, { method: 'POST', headers: auth });
    expect([again.status, again.json()]).toEqual([409, { rq_id: rqId }]);
    const running = (await http(`${emu.url}/api/requests/${encodeURIComponent(rqId)}`, { headers: auth })).json() as {
      status: string;
      result_url: string | null;
    };
    valid('Request', running);
    expect(running.result_url).toBeNull();
    const done = await waitFor('finished', async () => {
      const r = (await http(`${emu!.url}/api/requests/${encodeURIComponent(rqId)}`, { headers: auth })).json() as { status: string; result_url: string };
      return r.status === 'finished' && r;
    });
    valid('Request', done);
    expect(done.result_url).toBe(`${emu.url}/api/tasks/1/backup/download?rq_id=${encodeURIComponent(rqId)}`);
    const zip = await http(done.result_url, { headers: auth });
    expect([zip.status, zip.headers['content-type']]).toEqual([200, 'application/zip']);
    expect(zip.text.startsWith('PK')).toBe(true);
    expect((await http(`${emu.url}/api/tasks/1/backup`, { headers: auth })).status).toBe(410);
    expect((await http(`${emu.url}/api/requests/nope`, { headers: auth })).status).toBe(404);
    expect((await http(`${emu.url}/api/tasks/1/backup/export`, { method: 'POST' })).status).toBe(401);
  });

  it('fails the export with FileNotFoundError when a share file is missing', async () => {
    const share = await copySampleShare(path.join(tmp.path, 'share'));
    fs.rmSync(path.join(share, 'images/image_3.jpg'));
    emu = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1, backupExportTimeMs: 1 });
    const rqId = ((await http(`${emu.url}/api/tasks/1/backup/export`, { method: 'POST', headers: auth })).json() as { rq_id: string }).rq_id;
    const failed = await waitFor('failed', async () => {
      const r = (await http(`${emu!.url}/api/requests/${encodeURIComponent(rqId)}`, { headers: auth })).json() as { status: string; message: string };
      return r.status === 'failed' && r;
    });
    valid('Request', failed);
    expect(failed.message).toBe("FileNotFoundError: [Errno 2] No such file or directory: '/home/django/share/images/image_3.jpg'");
  });
});
