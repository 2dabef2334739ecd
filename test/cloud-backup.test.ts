/**
 * Backups of cloud-storage tasks ask CVAT for the heavyweight backup explicitly: CVAT 2.73's
 * export reads `lightweight` with a False default (cvat/apps/engine/background.py
 * `BackupExporter.init_request_args`) while its OpenAPI schema says true (mixins.py), and a
 * lightweight cloud backup holds only the manifest (backup.py `_write_data`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { exportTaskBackup } from '../src/backup/cvat-export.js';
import { defaultCvatBounds } from '../src/config/index.js';
import { CvatClient } from '../src/cvat/client.js';
import { DEMO_CREDENTIALS, demoAuth, startEmulator, type Emulator } from '../src/emulator/index.js';
import { cloudTask, fillBucket, frameKeys } from './support/cloud.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('warden-cloud-backup-');
let emu: Emulator | undefined;
let client: CvatClient | undefined;
afterEach(async () => {
  await client?.close();
  await emu?.close();
});

it('requests lightweight=false, so the zip of a cloud task holds its objects', async () => {
  const bucket = path.join(tmp.path, 'bucket');
  fillBucket(bucket, frameKeys('imgs', 6));
  emu = await startEmulator({
    auth: demoAuth(),
    buildTimeMs: 1,
    backupExportTimeMs: 1,
    cloudStorages: [{ id: 3, resource: 'b', bucketDir: bucket }],
    tasks: [cloudTask(1, 3, frameKeys('imgs', 6))],
  });
  client = new CvatClient({ ...defaultCvatBounds(), baseUrl: emu.url, credentials: { kind: 'token', token: DEMO_CREDENTIALS.accessToken } });
  const features = await client.features();
  const dest = path.join(tmp.path, 'task1.zip');
  const exported = await exportTaskBackup(client, features, 1, dest, { timeoutMs: 10_000, maxBytes: 1 << 30, minFreeBytes: 0 });
  const exports = emu.state.requestLog.filter((r) => r.path === '/api/tasks/1/backup/export');
  expect(exports.map((r) => new URLSearchParams(r.query).get('lightweight'))).toEqual(['false']);
  const job = [...emu.backups.jobs.values()][0]!;
  expect(job.lightweight).toBe(false);
  // The zip names every object (the central directory is plain text).
  const zip = fs.readFileSync(dest);
  expect(zip.includes(Buffer.from('data/imgs/f_005.jpg'))).toBe(true);
  await exported.file.discard();
});
