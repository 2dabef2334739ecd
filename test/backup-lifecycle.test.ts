/**
 * Backups CVAT can really restore (issue 18), through the real CLI against the emulator.
 * CVAT's source (github:Christanding/cvat-yolo26-annotation-tool, upstream to 2.73.0):
 * - cvat/apps/engine/backup.py `TaskExporter._write_manifest`: before 2.52.0 a share task's
 *   task.json keeps `storage: "share"`; commit 30e252aca (cvat#9972, 2.52.0) writes "local".
 * - backup.py `TaskImporter._import_task` (2.49.0+, commit cace87718): `storage` other than
 *   local/cloud_storage → ValidationError("Unexpected storage type in the backup files").
 * - backup.py `_write_data`, SHARE branch: `self._db_data.images` only — no context images (cvat#9978);
 *   task.py `_find_and_filter_related_images` reads `dir/related_images/<name>_<ext>/*` back for a local task.
 * - views.py TaskViewSet.import_backup + mixins.py UploadMixin.upload_data + background.py BackupImporter:
 *   POST /api/tasks/backup (multipart task_file) → 202 {rq_id} → GET /api/requests/{rq_id} → result_id.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { restorabilityOf, type BackupFacts } from '../src/backup/restorability.js';
import { rewriteBackup, RewriteRefused } from '../src/backup/rewrite.js';
import { startEmulator, writeSyntheticShare, type Emulator } from '../src/emulator/index.js';
import { runCli } from './support/cli.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('backup-life-');
const emus: Emulator[] = [];
afterEach(async () => {
  for (const e of emus.splice(0)) await e.close();
});

const withRelated = Array.from({ length: 4 }, (_, i) => `images/with_related/image_${i}.png`);
const plain = Array.from({ length: 6 }, (_, i) => `images/image_${i}.jpg`);

function names(file: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err) {
        reject(err);
        return;
      }
      const out: string[] = [];
      zip.on('entry', (e: yauzl.Entry) => {
        out.push(e.fileName);
        zip.readEntry();
      });
      zip.on('end', () => resolve(out));
      zip.readEntry();
    });
  });
}

async function setup(version: string, shareDir?: string) {
  const share = shareDir ?? (await writeSyntheticShare(path.join(tmp.path, `share-${version}`)));
  const emu = await startEmulator({
    shareDir: share,
    version,
    buildTimeMs: 1,
    backupExportTimeMs: 5,
    tasks: [
      { id: 1, storage: 'share', frames: plain, chunkSize: 2 },
      { id: 2, storage: 'share', frames: withRelated, relatedFiles: 'detect', chunkSize: 2 },
    ],
  });
  emus.push(emu);
  const backupDir = path.join(tmp.path, `backups-${version}`);
  const env = { CVAT_URL: emu.url, CVAT_ACCESS_TOKEN: 'lifecycle-token-secret', LOG_LEVEL: 'error' };
  const cli = (...args: string[]) => runCli(['backup', ...args, '--backup-dir', backupDir], env, { timeoutMs: 60_000 });
  const kept = (task: number) =>
    fs
      .readdirSync(path.join(backupDir, `task-${task}`))
      .filter((n) => n.endsWith('.zip'))
      .map((n) => path.join(backupDir, `task-${task}`, n));
  return { emu, share, backupDir, cli, kept, env };
}

describe('restorability per CVAT version (backup.py, see header)', () => {
  const facts = (f: Partial<BackupFacts>): BackupFacts => ({
    storage: 'share',
    startFrame: 0,
    frameFilter: '',
    manifestEntries: 6,
    mediaEntries: 6,
    isVideo: false,
    ...f,
  });
  const v = (raw: string) => ({ major: 2, minor: Number(raw.split('.')[1]), raw });

  it('a share-storage zip is refused on 2.16, 2.3x, 2.4x and 2.51, and only repairable from 2.52 on', () => {
    for (const raw of ['2.16.0', '2.30.0', '2.44.0', '2.49.0', '2.51.0']) {
      const r = restorabilityOf(facts({}), v(raw));
      expect(r, raw).toMatchObject({ restorable: false, repairable: false });
      expect(r.reason).toMatch(/storage "share"/);
    }
    for (const raw of ['2.52.0', '2.73.0']) expect(restorabilityOf(facts({}), v(raw)), raw).toMatchObject({ restorable: false, repairable: true });
  });

  it('a local-storage zip (what 2.52+ writes) is restorable on 2.52+ only, proven there by CVAT test_can_export_and_import_backup_task_with_mounted_share', () => {
    expect(restorabilityOf(facts({ storage: 'local' }), v('2.73.0'))).toEqual({ restorable: true, repairable: false });
    expect(restorabilityOf(facts({ storage: 'local' }), v('2.51.0')).restorable).toBe(false);
  });

  it('is never repaired when the task has a frame range: 2.52 filters the manifest then (cvat#10004)', () => {
    expect(restorabilityOf(facts({ startFrame: 1 }), v('2.73.0')).repairable).toBe(false);
    expect(restorabilityOf(facts({ frameFilter: 'step=2' }), v('2.73.0')).repairable).toBe(false);
    expect(restorabilityOf(facts({ manifestEntries: 8 }), v('2.73.0')).repairable).toBe(false);
    expect(restorabilityOf(facts({ manifestEntries: undefined }), v('2.73.0')).repairable).toBe(false);
  });
});

describe('backup lifecycle against the emulator', () => {
  it('on CVAT 2.51 a share-task backup is kept but not counted good, and 2.73 restores its repaired form with every frame', { timeout: 120_000 }, async () => {
    const old = await setup('2.51.0');
    const made = await old.cli('--task', '1', '--share-dir', old.share);
    expect(made.code, made.stderr).toBe(1);
    expect(made.stdout).toMatch(/not restorable on this CVAT.*storage "share"/);
    const [zip] = old.kept(1);
    const sidecar = JSON.parse(fs.readFileSync(zip!.replace(/\.zip$/, '.json'), 'utf8')) as Record<string, unknown>;
    expect(sidecar).toMatchObject({ restorable: false, cvatVersion: '2.51.0' });
    expect(sidecar['sha256']).toMatch(/^[0-9a-f]{64}$/);

    // The emulated 2.51 refuses its own zip, as _import_task does.
    const refused = await old.cli('restore', zip!);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/storage "share"/);

    // After an upgrade: 2.73 is given the repaired form (storage local) and creates a task with every frame.
    const now = await setup('2.73.0');
    const listed = await now.cli('list', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    const restored = await runCli(['backup', 'restore', zip!, '--backup-dir', now.backupDir], now.env, { timeoutMs: 60_000 });
    expect(restored.code, restored.stderr).toBe(0);
    const newId = Number(restored.stdout.trim());
    expect(now.emu.deployment.tasks.get(newId)?.storage).toBe('local');
    expect(now.emu.deployment.tasks.get(newId)?.frames.map((f) => f.name)).toEqual(plain);
    // The kept zip itself is untouched: the repair went to a temp file that is gone.
    expect(fs.readdirSync(path.join(now.backupDir, '.tmp'))).toEqual([]);
  });

  it('on CVAT 2.73 a backup of a task with context images holds them, verifies, and restores them', { timeout: 120_000 }, async () => {
    const s = await setup('2.73.0');
    const made = await s.cli('--task', '2', '--share-dir', s.share);
    expect(made.code, made.stderr + made.stdout).toBe(0);
    expect(made.stdout).toMatch(/and 7 context image\(s\)/);
    const [zip] = s.kept(2);
    const entries = await names(zip!);
    expect(entries).toContain('data/images/with_related/related_images/image_0_png/30.png');
    expect(entries.filter((n) => n.includes('/related_images/'))).toHaveLength(7);

    const listed = await s.cli('list', '--json');
    const body = JSON.parse(listed.stdout) as { backups: Array<{ taskId: number; restorable: boolean; relatedFiles: number }> };
    expect(body.backups).toEqual([expect.objectContaining({ taskId: 2, restorable: true, relatedFiles: 7 })]);

    const restored = await runCli(['backup', 'restore', zip!, '--project', '7', '--backup-dir', s.backupDir], s.env, { timeoutMs: 60_000 });
    expect(restored.code, restored.stderr).toBe(0);
    const task = s.emu.deployment.tasks.get(Number(restored.stdout.trim()))!;
    expect(task.frames.map((f) => f.name)).toEqual(withRelated);
    expect(task.frames.map((f) => f.related)).toEqual([3, 1, 3, 0]);
    expect(task.projectId).toBe(7);
  });

  it('without --share-dir a task with context images gets no backup counted good', { timeout: 60_000 }, async () => {
    const s = await setup('2.73.0');
    const made = await s.cli('--task', '2');
    expect(made.code).toBe(1);
    expect(made.stdout).toMatch(/context images.*cvat#9978.*--share-dir/);
    expect(fs.existsSync(path.join(s.backupDir, 'task-2'))).toBe(false);
  });

  it('backup verify catches a flipped byte (exit 1) and passes intact zips', { timeout: 60_000 }, async () => {
    const s = await setup('2.73.0');
    expect((await s.cli('--task', '1', '--share-dir', s.share)).code).toBe(0);
    expect((await s.cli('verify')).code).toBe(0);
    const [zip] = s.kept(1);
    const bytes = fs.readFileSync(zip!);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    fs.writeFileSync(zip!, bytes);
    const bad = await s.cli('verify', '--json');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, results: [{ taskId: 1, ok: false, problem: expect.stringMatching(/SHA-256 mismatch/) }] });
  });

  it('never copies a context image that resolves outside the share (a symlink planted on the share)', { timeout: 60_000 }, async () => {
    const share = await writeSyntheticShare(path.join(tmp.path, 'share-hostile'));
    const secret = path.join(tmp.path, 'outside-secret.png');
    fs.writeFileSync(secret, 'not for the backup');
    const victim = path.join(share, 'images/with_related/related_images/image_0_png/31.png');
    fs.rmSync(victim);
    fs.symlinkSync(secret, victim);
    const s = await setup('2.73.0', share);
    const made = await s.cli('--task', '2', '--share-dir', share);
    expect(made.code).toBe(1);
    expect(made.stdout).toMatch(/resolves outside the share/);
    expect(fs.existsSync(path.join(s.backupDir, 'task-2'))).toBe(false);
    // Only the store's own temp names were written, and none is left.
    expect(fs.readdirSync(path.join(s.backupDir, '.tmp'))).toEqual([]);
  });
});

describe('rewriteBackup', () => {
  it('refuses paths that leave the share and never overwrites an existing destination', async () => {
    const share = await writeSyntheticShare(path.join(tmp.path, 'share-rw'));
    const src = path.join(tmp.path, 'src.zip');
    const z = new yazl.ZipFile();
    z.addBuffer(Buffer.from('{"data":{}}'), 'task.json');
    z.end();
    const chunks: Buffer[] = [];
    for await (const c of z.outputStream) chunks.push(c as Buffer);
    fs.writeFileSync(src, Buffer.concat(chunks));
    const dest = path.join(tmp.path, 'dest.zip');
    await expect(rewriteBackup(src, dest, { addFromShare: { shareDir: share, paths: ['../outside.png'] }, maxAddedBytes: 1e9 })).rejects.toBeInstanceOf(
      RewriteRefused,
    );
    fs.writeFileSync(dest, 'keep me');
    await expect(rewriteBackup(src, dest, { maxAddedBytes: 0 })).rejects.toThrow(/EEXIST/);
    expect(fs.readFileSync(dest, 'utf8')).toBe('keep me');
    const fresh = path.join(tmp.path, 'fresh.zip');
    const rewritten = await rewriteBackup(src, fresh, { patchData: (d) => ({ ...d, storage: 'local' }), maxAddedBytes: 0 });
    expect(fs.statSync(fresh).size).toBeGreaterThan(0);
    // The copy is the caller's to move or discard: discarding it removes exactly it.
    await rewritten.file.discard();
    expect(fs.existsSync(fresh)).toBe(false);
    expect(fs.readFileSync(dest, 'utf8')).toBe('keep me');
  });
});
