/**
 * Bounded backups: a download that never ends stops at the size cap, one that would fill
 * the backup file system stops while the reserve is left (a real 16 MiB tmpfs), the
 * temp file is gone after every failure and the older good backup stays; a zip bomb is
 * refused from its central directory before a byte is inflated, and the CRC pass stops at
 * declared sizes; in `run`, an export that never finishes does not keep another task from
 * its backup. Real emulator over HTTP, real client, real temp dirs.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { backupTask, type BackupTaskDeps } from '../src/backup/backup-task.js';
import type { ExportOptions } from '../src/backup/cvat-export.js';
import { backupCapFor, shareMediaBytes } from '../src/backup/media-size.js';
import { BackupScheduler } from '../src/backup/scheduler.js';
import { BackupStore } from '../src/backup/store.js';
import { expectedMediaEntries, verifyBackup } from '../src/backup/verify.js';
import { collectGuardTasks } from '../src/commands/shared.js';
import { defaultCvatBounds } from '../src/config/index.js';
import { CvatClient } from '../src/cvat/client.js';
import type { CvatFeatures } from '../src/cvat/features.js';
import { copySampleShare, DEMO_CREDENTIALS, startEmulator, type Emulator } from '../src/emulator/index.js';
import type { GuardTask } from '../src/guard/index.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { sampleShareAvailable } from './support/guard.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

/** The tests that copy CVAT's sample share need ../shared (a failure on CI, a skip elsewhere). */
const withShare = sampleShareAvailable();
import { deflatedZeros, writeZip } from './support/zip-writer.js';

const tmp = useTempDir('backup-bounds-');
const MiB = 1024 * 1024;
const images = Array.from({ length: 4 }, (_, i) => `images/image_${i}.jpg`);
let emu: Emulator | undefined;
let client: CvatClient | undefined;
let unmount: (() => void) | undefined;
afterEach(async () => {
  await client?.close();
  await emu?.close();
  unmount?.();
  client = emu = unmount = undefined;
});

async function setup(): Promise<{ features: CvatFeatures; tasks: GuardTask[] }> {
  const shareDir = await copySampleShare(path.join(tmp.path, 'share'));
  emu = await startEmulator({
    shareDir,
    buildTimeMs: 1,
    backupExportTimeMs: 5,
    tasks: [
      { id: 1, storage: 'share', frames: images, chunkSize: 2, segmentSize: 4 },
      { id: 2, storage: 'share', frames: images.slice(0, 2), chunkSize: 2, segmentSize: 4 },
    ],
  });
  client = new CvatClient({ ...defaultCvatBounds(), baseUrl: emu.url, credentials: { kind: 'token', token: DEMO_CREDENTIALS.accessToken } });
  const features = await client.features();
  const scope = { all: false, taskIds: [1, 2], projectIds: [], jobIds: [] };
  const tasks = await collectGuardTasks(client, features, scope, [], () => undefined);
  return { features, tasks: tasks.sort((a, b) => a.taskId - b.taskId) };
}

function deps(features: CvatFeatures, dir: string, exportOptions: ExportOptions): BackupTaskDeps {
  return { client: client!, features, store: new BackupStore(dir), keep: 3, exportOptions };
}

const tempFiles = (dir: string) => fs.readdirSync(path.join(dir, '.tmp'));

it.runIf(withShare)('stops a download that never ends at the size cap, removes it, keeps the older backup; an abort removes it too', async () => {
  const { features, tasks } = await setup();
  const dir = path.join(tmp.path, 'backups');
  const bounds = { timeoutMs: 60_000, maxBytes: 8 * MiB, minFreeBytes: 1 };
  const good = await backupTask(deps(features, dir, bounds), tasks[0]!, null);
  expect(good.outcome, good.message).toBe('done');

  emu!.backups.endlessDownloads = 1;
  const sentBefore = emu!.backups.downloadBytes;
  const capped = await backupTask(deps(features, dir, bounds), tasks[0]!, null);
  expect(capped.outcome).toBe('failed');
  expect(capped.message).toMatch(/larger than 8\.0 MiB \(.* received; --backup-max-gib\): download stopped/);
  expect(capped.newestGood?.file).toBe(good.backup!.file);
  expect(tempFiles(dir)).toEqual([]);
  expect(await new BackupStore(dir).list(1)).toHaveLength(1);
  // What the server got out before the client hung up: the cap plus socket buffers.
  console.info(
    `never-ending download: ${((emu!.backups.downloadBytes - sentBefore) / MiB).toFixed(1)} MiB sent by the server before the cap (8 MiB) stopped it`,
  );

  // CVAT (or a proxy) breaks the connection mid-body: the same.
  emu!.faults.add({ match: /backup\/download/, kind: 'truncate', truncateAt: 1000 });
  const broken = await backupTask(deps(features, dir, bounds), tasks[0]!, null);
  expect(broken.outcome).toBe('failed');
  expect(broken.newestGood?.file).toBe(good.backup!.file);
  expect(tempFiles(dir)).toEqual([]);

  // SIGTERM in `backup` and close() in `run` abort the signal: the partial file goes as well.
  emu!.backups.endlessDownloads = 1;
  const stop = new AbortController();
  const aborted = backupTask(deps(features, dir, { ...bounds, maxBytes: 1024 * MiB, signal: stop.signal }), tasks[0]!, null);
  await waitFor('a partial download', () => tempFiles(dir).some((f) => fs.statSync(path.join(dir, '.tmp', f)).size > MiB));
  stop.abort();
  expect(await aborted).toMatchObject({ outcome: 'failed', message: expect.stringMatching(/aborted/) });
  expect(tempFiles(dir)).toEqual([]);
  expect(await new BackupStore(dir).list(1)).toHaveLength(1);
});

it.runIf(withShare)("sizes a task's cap from its share media when the share is here (CVAT reports no media sizes)", async () => {
  const shareDir = await copySampleShare(path.join(tmp.path, 'share'));
  const sizes = images.map((name) => fs.statSync(path.join(shareDir, name)).size);
  expect(await shareMediaBytes(shareDir, images)).toBe(sizes.reduce((a, b) => a + b, 0));
  expect(await shareMediaBytes(shareDir, [...images, 'images/gone.jpg'])).toBeUndefined();
  expect(await shareMediaBytes(shareDir, ['../outside.jpg'])).toBeUndefined();
  expect(backupCapFor(10 * MiB)).toBe(10 * MiB + 1024 * MiB);
  expect(backupCapFor(40 * 1024 * MiB)).toBe(50 * 1024 * MiB);
});

it.runIf(withShare)('stops a download while the reserve is still free on a small file system (tmpfs), leaving no partial file', async (ctx) => {
  const mnt = path.join(tmp.path, 'small');
  fs.mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt], { stdio: 'pipe' });
  } catch (error) {
    ctx.skip(`cannot mount a tmpfs here (${(error as Error).message.split('\n')[0]}): needs root and mount rights; CI runs as root`);
    return;
  }
  unmount = () => execFileSync('umount', ['-l', mnt]);
  const { features, tasks } = await setup();
  const reserve = 4 * MiB;
  const bounds = { timeoutMs: 60_000, maxBytes: 1024 * MiB, minFreeBytes: reserve };
  const good = await backupTask(deps(features, mnt, bounds), tasks[0]!, null);
  expect(good.outcome, good.message).toBe('done');
  fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(6 * MiB));
  const freeBefore = fs.statfsSync(mnt);

  emu!.backups.endlessDownloads = 1;
  const full = await backupTask(deps(features, mnt, bounds), tasks[0]!, null);
  expect(full.outcome).toBe('failed');
  expect(full.message).toMatch(/free after .* of the download, and 4\.0 MiB must stay free \(--backup-min-free-mib\): download stopped/);
  expect(full.newestGood?.file).toBe(good.backup!.file);
  expect(tempFiles(mnt)).toEqual([]);
  // The download had written into the space above the reserve, and stopped before the reserve.
  const written = Number(/after ([\d.]+) MiB of the download/.exec(full.message)?.[1] ?? 0);
  expect(written).toBeGreaterThan(1);
  const s = fs.statfsSync(mnt);
  expect(s.bavail * s.bsize).toBe(freeBefore.bavail * freeBefore.bsize);
  console.info(
    `tmpfs 16 MiB: ${(freeBefore.bavail * freeBefore.bsize) / MiB} MiB free before, download stopped after ${written} MiB with ${reserve / MiB} MiB reserve`,
  );

  // Already below the reserve: nothing is requested at all.
  fs.writeFileSync(path.join(mnt, 'filler2'), Buffer.alloc(Math.max(0, s.bavail * s.bsize - 3 * MiB)));
  const before = emu!.backups.downloadBytes;
  const refused = await backupTask(deps(features, mnt, bounds), tasks[0]!, null);
  expect(refused.message).toMatch(/free before the download, and 4\.0 MiB must stay free/);
  expect(emu!.backups.downloadBytes).toBe(before);
});

it('refuses a zip bomb from its central directory without inflating, and stops the CRC pass at declared sizes', async () => {
  const taskJson = { name: 't', data: { chunk_size: 2, storage: 'local' } };
  const media = expectedMediaEntries(['images/a.jpg'], false);
  const base = [
    { name: 'task.json', stored: Buffer.from(JSON.stringify(taskJson)) },
    { name: 'data/images/a.jpg', stored: Buffer.from('jpeg bytes') },
  ];
  const bomb = deflatedZeros(256); // 1 GiB of zeros in ~1 MiB
  const bombFile = path.join(tmp.path, 'bomb.zip');
  fs.writeFileSync(bombFile, writeZip([...base, { name: 'annotations.json', deflated: bomb }]));
  const cpu = process.cpuUsage();
  const verdict = await verifyBackup(bombFile, media);
  const cpuMs = (process.cpuUsage(cpu).user + process.cpuUsage(cpu).system) / 1000;
  expect(verdict.ok).toBe(false);
  expect(verdict.problem).toMatch(/annotations\.json declares 1073741824 bytes from \d+ compressed \(ratio 10\d\d:1 > 1000:1\): a zip bomb/);
  expect(verdict.inflatedBytes).toBe(0);
  console.info(
    `zip bomb (${(fs.statSync(bombFile).size / MiB).toFixed(1)} MiB → 1 GiB): rejected after ${cpuMs.toFixed(0)} ms CPU, ${verdict.inflatedBytes} bytes inflated`,
  );

  // Below the ratio but above the declared-total cap: refused unread as well.
  const total = await verifyBackup(bombFile, media, { maxTotalBytes: 64 * MiB });
  expect([total.problem, total.inflatedBytes]).toEqual([expect.stringMatching(/declare more than 67108864 bytes uncompressed/), 0]);

  // An entry declaring 1000 bytes whose stream inflates to 1 GiB: the CRC pass stops at the declared size.
  const liar = path.join(tmp.path, 'liar.zip');
  fs.writeFileSync(liar, writeZip([...base, { name: 'annotations.json', deflated: { ...bomb, uncompressedSize: 1000 } }]));
  const lied = await verifyBackup(liar, media);
  expect(lied.problem).toMatch(/the zip is damaged: .*too many bytes/);
  expect(lied.inflatedBytes).toBeLessThanOrEqual(1000);

  // Missing task.json or media entries: also from the directory alone.
  const noTask = path.join(tmp.path, 'no-task.zip');
  fs.writeFileSync(noTask, writeZip([{ name: 'data/images/a.jpg', stored: Buffer.from('x') }]));
  expect(await verifyBackup(noTask, media)).toMatchObject({ ok: false, inflatedBytes: 0, problem: expect.stringMatching(/task\.json is missing/) });
  const good = path.join(tmp.path, 'good.zip');
  fs.writeFileSync(good, writeZip(base));
  expect(await verifyBackup(good, [...media, 'data/images/b.jpg'])).toMatchObject({ ok: false, inflatedBytes: 0, missing: ['data/images/b.jpg'] });
  expect(await verifyBackup(good, media)).toMatchObject({ ok: true, mediaFiles: 1 });
});

it.runIf(withShare)('run: an export that never finishes fails at its deadline and does not keep another task from its backup', async () => {
  const { features, tasks } = await setup();
  emu!.backups.stuckExports.add(1);
  const metrics = createMetrics({ buildInfo: { version: 't' } });
  const outcomes: string[] = [];
  const logger = createLogger({
    level: 'info',
    format: 'json',
    destination: {
      write: (line: string) => {
        const r = JSON.parse(line) as { taskId?: number; outcome?: string; file?: string };
        if (r.taskId !== undefined) outcomes.push(`${r.taskId}:${r.outcome ?? (r.file ? 'done' : '?')}`);
      },
    },
  });
  const scheduler = new BackupScheduler({
    client: client!,
    dir: path.join(tmp.path, 'backups'),
    keep: 2,
    logger,
    metrics,
    // Retry at once: without least-recently-tried order, task 1 (first in line) would be tried forever.
    retryAfterMs: 0,
    exportOptions: { timeoutMs: 300, maxBytes: 64 * MiB, minFreeBytes: 1 },
  });
  try {
    await scheduler.upsert(tasks[0]!, '2026-01-01T00:00:00Z', features);
    await scheduler.upsert(tasks[1]!, '2026-01-01T00:00:00Z', features);
    scheduler.start();
    const done = await waitFor('task 2 backed up', async () => await scheduler.store.newest(2));
    expect(done.mediaFiles).toBe(2);
    // The backup is in the store a moment before its log line is written.
    await waitFor('task 2 logged', () => outcomes.includes('2:done'));
    // Task 1 (first in line) held the one export slot for its deadline once; then task 2 went.
    expect(outcomes.slice(0, 2)).toEqual(['1:failed', '2:done']);
    const status = scheduler.status() as { failures: Array<{ taskId: number; message: string }>; withoutGoodBackup: number[] };
    expect(status.withoutGoodBackup).toEqual([1]);
    expect(status.failures).toEqual([
      expect.objectContaining({ taskId: 1, message: expect.stringMatching(/did not finish within 300 ms \(--backup-timeout; status started\)/) }),
    ]);
    // Task 1 is tried again later (following CVAT's same request id: 409) and fails cleanly again.
    const failed = async () => (await metrics.backups.get()).values.find((v) => v.labels.outcome === 'failed')?.value ?? 0;
    await waitFor('task 1 tried again', async () => (await failed()) >= 2);
    expect([...emu!.backups.jobs.values()].filter((j) => j.taskId === 1)).toHaveLength(1);
  } finally {
    await scheduler.close();
    await scheduler.close();
  }
  expect(fs.readdirSync(path.join(tmp.path, 'backups', '.tmp'))).toEqual([]);
});
