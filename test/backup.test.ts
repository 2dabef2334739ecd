/**
 * CVAT-native backups of share tasks, through the real CLI against the emulator's
 * backup flow (POST backup/export → GET /api/requests/{rq_id} → result_url; CVAT:
 * cvat/apps/engine/mixins.py BackupMixin, backup.py `_write_data`): a verified zip with
 * task.json and every frame; a missing share file fails the export naming it and keeps
 * the earlier backup; retention; a damaged download is rejected; the verifier against a
 * real CVAT backup from CVAT's own test assets.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { copySampleShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { expectedMediaEntries, verifyBackup } from '../src/backup/verify.js';
import { runCli } from './support/cli.js';
import { describeWithSharedCvat } from './support/shared-cvat.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('backup-test-');
const images = Array.from({ length: 6 }, (_, i) => `images/image_${i}.jpg`);
let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

function zipEntries(file: string): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err) {
        reject(err);
        return;
      }
      const out = new Map<string, Buffer>();
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (e, stream) => {
          if (e) {
            reject(e);
            return;
          }
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            out.set(entry.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        });
      });
      zip.on('end', () => resolve(out));
      zip.readEntry();
    });
  });
}

describeWithSharedCvat('backup', (shared) => {
  async function setup(version = '2.73.0') {
    const shareDir = await copySampleShare(path.join(tmp.path, 'share'));
    emu = await startEmulator({
      shareDir,
      version,
      buildTimeMs: 1,
      backupExportTimeMs: 20,
      tasks: [
        { id: 1, storage: 'share', frames: images, chunkSize: 2, segmentSize: 4 },
        { id: 2, frames: ['a.jpg', 'b.jpg'] },
      ],
    });
    const backupDir = path.join(tmp.path, 'backups');
    const env = { CVAT_URL: emu.url, CVAT_ACCESS_TOKEN: 'backup-test-token-secret', LOG_LEVEL: 'info' };
    const backup = (...args: string[]) => runCli(['backup', '--backup-dir', backupDir, ...args], env, { timeoutMs: 60_000 });
    const zips = () =>
      fs
        .readdirSync(path.join(backupDir, 'task-1'))
        .filter((n) => n.endsWith('.zip'))
        .sort();
    return { shareDir, backupDir, backup, zips, env };
  }

  it('leaves a verified zip holding task.json and every frame, byte-identical to the share', { timeout: 180_000 }, async () => {
    const { shareDir, backupDir, backup, zips } = await setup();
    const r = await backup('--task', '1', '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { results: Array<{ outcome: string; backup: { file: string; mediaFiles: number } }> };
    expect(report.results).toHaveLength(1);
    expect(report.results[0]).toMatchObject({ outcome: 'done', backup: { mediaFiles: 6 } });
    expect(zips()).toHaveLength(1);
    const entries = await zipEntries(path.join(backupDir, 'task-1', zips()[0]!));
    expect(JSON.parse(entries.get('task.json')!.toString()).data.storage).toBe('local');
    for (const name of images) expect(entries.get(`data/${name}`)?.equals(fs.readFileSync(path.join(shareDir, name)))).toBe(true);
    expect(fs.readdirSync(path.join(backupDir, '.tmp'))).toEqual([]);
    expect(`${r.stdout}${r.stderr}`).not.toContain('backup-test-token-secret');
    // --all backs up share tasks only (task 2 is local).
    const all = await backup('--all', '--json');
    expect((JSON.parse(all.stdout) as { results: Array<{ taskId: number }> }).results.map((x) => x.taskId)).toEqual([1]);
  });

  it('with a share file gone exits 1 naming it, and keeps the earlier backup', { timeout: 180_000 }, async () => {
    const { shareDir, backup, zips } = await setup();
    expect((await backup('--task', '1')).code).toBe(0);
    const before = zips();
    fs.rmSync(path.join(shareDir, 'images/image_3.jpg'));
    const r = await backup('--task', '1');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/share file images\/image_3\.jpg is missing/);
    expect(r.stdout).toMatch(/newest good backup kept/);
    expect(zips()).toEqual(before);
  });

  it('keeps --backup-keep backups per task and rejects a damaged download, keeping the older one', { timeout: 180_000 }, async () => {
    const { backup, zips } = await setup();
    for (let i = 0; i < 3; i++) expect((await backup('--task', '1', '--backup-keep', '2')).code).toBe(0);
    expect(zips()).toHaveLength(2);
    const before = zips();
    emu!.backups.corruptDownloads = 1;
    const r = await backup('--task', '1', '--backup-keep', '2');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/rejected: (not a readable zip|the zip is damaged)/);
    expect(zips()).toEqual(before);
  });

  it('says clearly that CVAT before 2.16 is not supported for backups', { timeout: 180_000 }, async () => {
    const { backup } = await setup('2.14.4');
    const r = await backup('--task', '1', '--share-tasks', '1');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/CVAT 2\.14\.4 is too old for task backups.*2\.16\.0 or later/);
  });

  it("verifies a real CVAT backup from CVAT's test assets, and refuses damaged or incomplete ones", { timeout: 180_000 }, async () => {
    const sample = path.join(shared, 'v2.73.0/tests/python/shared/assets/backups/task_30_backup_pre_consensus_replica_removal.zip');
    const frames = ['30.png', '31.png', '32.png', '33.png', '34.png', '35.png'];
    const good = await verifyBackup(sample, expectedMediaEntries(frames, false));
    expect(good).toMatchObject({ ok: true, mediaFiles: 6 });
    const missing = await verifyBackup(sample, expectedMediaEntries([...frames, '36.png'], false));
    expect(missing).toMatchObject({ ok: false, missing: ['data/36.png'] });
    const bytes = fs.readFileSync(sample);
    const truncated = path.join(tmp.path, 'truncated.zip');
    fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 200));
    expect((await verifyBackup(truncated, expectedMediaEntries(frames, false))).ok).toBe(false);
    // One flipped byte inside a frame's data: the CRC catches it.
    const flipped = Buffer.from(bytes);
    const at = flipped.indexOf(Buffer.from('data/31.png')) + 'data/31.png'.length + 40;
    flipped[at] = flipped[at]! ^ 0xff;
    const damaged = path.join(tmp.path, 'damaged.zip');
    fs.writeFileSync(damaged, flipped);
    expect((await verifyBackup(damaged, expectedMediaEntries(frames, false))).ok).toBe(false);
  });
});
