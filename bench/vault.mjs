#!/usr/bin/env node
/**
 * Vault benchmark (issue 10): a synthetic share of VAULT_BENCH_FILES (default 1,000,000)
 * files of 512 bytes in 1,000-file directories, fed to the vault as 1,000 tasks the way
 * the service feeds the guard. Measured in a child process (peak RSS is the vault's):
 *
 *   vault build   Vault.open + upsert of every task in link mode: wall time, peak RSS,
 *                 disk used before/after (statfs) = the extra disk, and a check that
 *                 every share file now has link count 2 (no data copied)
 *   rebuild       (VAULT_BENCH_REBUILD=1) the same again after a restart (every entry exists: the EEXIST path)
 *   restore       `restore --all` with 10,000 files deleted: time (stats every expected file)
 *   baseline      copying VAULT_BENCH_COPY files (default 10,000) with copyFile, measured
 *                 in the same run: time and disk per file, scaled to the vault's file count
 *
 * Usage: npm run build && node bench/vault.mjs   (or `npm run bench -- vault`)
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { peakRssMB, runChild, fmt } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '../dist');
const PER_DIR = 1000;
const FILE_BYTES = 512;

const usedBytes = (dir) => {
  const s = fs.statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
};
/** Bytes of the directories under `dir` (st_blocks): what link entries cost; files it holds as links add no blocks. */
function dirBlocksBytes(dir, skip) {
  let bytes = fs.statSync(dir).blocks * 512;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory() && e.name !== skip) bytes += dirBlocksBytes(path.join(dir, e.name), skip);
  return bytes;
}

/** Bytes a copied tree takes (st_blocks of every file and directory). */
function treeBlocksBytes(dir) {
  let bytes = fs.statSync(dir).blocks * 512;
  for (const e of fs.readdirSync(dir, { withFileTypes: true }))
    bytes += e.isDirectory() ? treeBlocksBytes(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).blocks * 512;
  return bytes;
}

const rel = (i) => `d${String(Math.floor(i / PER_DIR)).padStart(5, '0')}/f${i}.jpg`;

function makeTree(share, files) {
  const body = Buffer.alloc(FILE_BYTES, 0x61);
  for (let i = 0; i < files; i++) {
    if (i % PER_DIR === 0) fs.mkdirSync(path.join(share, path.dirname(rel(i))), { recursive: true });
    fs.writeFileSync(path.join(share, rel(i)), body);
  }
}

function tasks(files) {
  const list = [];
  for (let t = 0; t * PER_DIR < files; t++) {
    const frames = [];
    for (let i = t * PER_DIR; i < Math.min(files, (t + 1) * PER_DIR); i++)
      frames.push({ name: rel(i), width: 1, height: 1, related_files: 0, has_related_context: false });
    list.push({
      taskId: t + 1,
      storage: 'share',
      isVideo: false,
      dimension: '2d',
      meta: {
        chunk_size: 10,
        size: frames.length,
        start_frame: 0,
        stop_frame: frames.length - 1,
        frame_filter: '',
        frames,
        deleted_frames: [],
        storage: 'share',
      },
      jobs: [{ id: t + 1, type: 'annotation', startFrame: 0, stopFrame: frames.length - 1, chunkSize: 10 }],
    });
  }
  return list;
}

async function child(root, files, copyCount) {
  const { Vault } = await import(pathToFileURL(path.join(dist, 'vault/vault.js')).href);
  const { restoreFromVault } = await import(pathToFileURL(path.join(dist, 'vault/restore.js')).href);
  const { createLogger } = await import(pathToFileURL(path.join(dist, 'log.js')).href);
  const logger = createLogger({ level: 'silent' });
  const share = path.join(root, 'share');
  const vaultDir = path.join(share, '.cvat-warden-vault');
  const all = tasks(files);

  const before = usedBytes(root);
  let t = performance.now();
  let vault = await Vault.open({ shareDir: share, vaultDir, mode: 'link', logger });
  for (const task of all) await vault.upsert(task);
  await vault.close();
  const buildMs = performance.now() - t;
  const statfsDelta = usedBytes(root) - before;
  const extraBytes = dirBlocksBytes(vaultDir, '.vault-meta') + treeBlocksBytes(path.join(vaultDir, '.vault-meta'));
  let linked = 0;
  for (let i = 0; i < files; i += Math.max(1, Math.floor(files / 10_000))) {
    const original = fs.statSync(path.join(share, rel(i)));
    if (original.nlink === 2 && fs.statSync(path.join(vaultDir, rel(i))).ino === original.ino) linked++;
  }
  const sampled = Math.ceil(files / Math.max(1, Math.floor(files / 10_000)));

  // Optional (VAULT_BENCH_REBUILD=1): a restart over an existing vault, every entry already there.
  let rebuildMs = null;
  if (process.env.VAULT_BENCH_REBUILD === '1') {
    t = performance.now();
    vault = await Vault.open({ shareDir: share, vaultDir, mode: 'link', logger });
    for (const task of all) await vault.upsert(task);
    await vault.close();
    rebuildMs = performance.now() - t;
  }

  const deleted = Math.min(10_000, files);
  for (let i = 0; i < deleted; i++) fs.unlinkSync(path.join(share, rel(Math.floor((i * files) / deleted))));
  t = performance.now();
  const report = await restoreFromVault({ shareDir: share, vaultDir, select: { all: true } });
  const restoreMs = performance.now() - t;

  // Baseline: what a copying backup of the same files costs, on the same disk, now.
  const copyDir = path.join(root, 'copy');
  t = performance.now();
  for (let i = 0; i < copyCount; i++) {
    if (i % PER_DIR === 0) fs.mkdirSync(path.join(copyDir, path.dirname(rel(i))), { recursive: true });
    await fs.promises.copyFile(path.join(share, rel(i)), path.join(copyDir, rel(i)));
  }
  const copyMs = performance.now() - t;
  const copyBytes = treeBlocksBytes(copyDir);
  return {
    files,
    buildMs,
    rebuildMs,
    extraBytes,
    statfsDelta,
    linkedSample: linked,
    sampled,
    restoreMs,
    restored: report.restored.length,
    restoreOk: report.ok,
    copyCount,
    copyMs,
    copyBytes,
    peakRssMB: peakRssMB(),
  };
}

export async function measure() {
  const files = Number(process.env.VAULT_BENCH_FILES ?? 1_000_000);
  const copyCount = Math.min(files, Number(process.env.VAULT_BENCH_COPY ?? 10_000));
  if (!fs.existsSync(path.join(dist, 'vault/vault.js'))) return { skipped: 'not built' };
  const parent = process.env.VAULT_BENCH_TMP ?? os.tmpdir();
  const s = fs.statfsSync(parent);
  if (s.bavail * s.bsize < files * 4096 * 1.5 + 2 * 1024 ** 3 || (s.ffree > 0 && s.ffree < files * 2.3)) return { skipped: 'disk' };
  const root = fs.mkdtempSync(path.join(parent, 'vault-bench-'));
  try {
    const t = performance.now();
    makeTree(path.join(root, 'share'), files);
    console.error(`vault bench: ${files} files generated in ${Math.round(performance.now() - t)} ms`);
    const result = await runChild(fileURLToPath(import.meta.url), ['--child', root, String(files), String(copyCount)]);
    console.error(`vault bench: ${JSON.stringify(result)}`);
    return result;
  } finally {
    // Two million directory entries take minutes to remove on a busy disk: do it in the background.
    spawn('rm', ['-rf', root], { detached: true, stdio: 'ignore' }).unref();
  }
}

export async function benchmarkSection() {
  const r = await measure();
  if (r.skipped) return `### Vault (issue 10)\n\nSkipped: ${r.skipped === 'disk' ? 'not enough free disk or inodes for the synthetic share' : 'not built'}.\n`;
  const perFileCopyMs = r.copyMs / r.copyCount;
  const perFileCopyBytes = r.copyBytes / r.copyCount;
  const scaledCopyMs = perFileCopyMs * r.files;
  const scaledCopyBytes = perFileCopyBytes * r.files;
  const mb = (b) => fmt(b / 2 ** 20, 0);
  return [
    '### Vault (issue 10)',
    '',
    `Synthetic share of ${r.files.toLocaleString('en')} files of ${FILE_BYTES} bytes in ${PER_DIR}-file directories, fed to the vault (link mode, inside the share) as ${Math.ceil(r.files / PER_DIR)} tasks. Baseline measured in the same run: copying ${r.copyCount.toLocaleString('en')} of the files with \`copyFile\`, scaled per file. The machine was shared with other work while measuring.`,
    '',
    '| figure | vault (hard links) | baseline: copying the files | goal | met |',
    '|---|---|---|---|---|',
    `| build time at ${r.files.toLocaleString('en')} files | ${fmt(r.buildMs / 1000, 1)} s | ${fmt(scaledCopyMs / 1000, 1)} s (${fmt(scaledCopyMs / r.buildMs, 1)}× the vault) | ≤ 60 s | ${r.buildMs <= 60_000 ? 'yes' : 'no'} |`,
    `| extra disk (blocks of the vault's directories and task lists) | ${mb(r.extraBytes)} MB (${fmt(r.extraBytes / r.files, 0)} bytes per file; filesystem-wide used-space change ${mb(r.statfsDelta)} MB, which includes other work on the machine) | ${mb(scaledCopyBytes)} MB | no file data copied | ${r.linkedSample === r.sampled && r.extraBytes < r.files * FILE_BYTES ? 'yes' : 'no'} |`,
    `| vault entries that are the share file itself (same inode, link count 2; sample) | ${r.linkedSample} of ${r.sampled} | — | all | ${r.linkedSample === r.sampled ? 'yes' : 'no'} |`,
    ...(r.rebuildMs !== null ? [`| rebuild after a restart (every entry there) | ${fmt(r.rebuildMs / 1000, 1)} s | — | | |`] : []),
    `| \`restore --all\`, ${r.restored.toLocaleString('en')} of ${r.files.toLocaleString('en')} files deleted | ${fmt(r.restoreMs / 1000, 1)} s (${r.restored} restored, ok: ${r.restoreOk}) | — | | |`,
    `| peak RSS of the vault process | ${fmt(r.peakRssMB, 0)} MB | — | | |`,
    '',
  ].join('\n');
}

if (process.argv[2] === '--child') {
  const [, , , root, files, copyCount] = process.argv;
  child(root, Number(files), Number(copyCount)).then(
    (result) => {
      console.log(`RESULT ${JSON.stringify(result)}`);
      process.exit(0);
    },
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await benchmarkSection());
}
