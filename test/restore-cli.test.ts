/**
 * `restore` and `check --vault` as processes: exit 2 for usage, 1 when something asked
 * for cannot be restored, 0 when everything is in place; check says which missing files
 * the vault can put back.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { createLogger } from '../src/log.js';
import { Vault } from '../src/vault/vault.js';
import { meta, job } from './support/guard.js';
import { runCli } from './support/cli.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('restore-cli-');
let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

describe('restore and check --vault (CLI)', () => {
  it('reports recoverable files, restores what it can and exits 1 for the rest, 0 once all is in place, 2 for usage', { timeout: 180_000 }, async () => {
    const share = path.join(tmp.path, 'share');
    await prepareDemoShare(share);
    const vaultDir = path.join(share, '.cvat-warden-vault');
    const names = Array.from({ length: 6 }, (_, i) => `images/image_${i}.jpg`);
    const vault = await Vault.open({ shareDir: share, vaultDir, mode: 'link', logger: createLogger({ level: 'silent' }) });
    await vault.upsert({ taskId: 1, storage: 'share', isVideo: false, meta: meta(names.map((name) => ({ name }))), jobs: [job(1, 0, 5)] });
    await vault.close();
    const original = readFileSync(path.join(share, 'images/image_1.jpg'));
    rmSync(path.join(share, 'images/image_1.jpg'));
    rmSync(path.join(share, 'images/image_2.jpg'));
    rmSync(path.join(vaultDir, 'images/image_2.jpg'));

    emu = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
    const env = { CVAT_URL: emu.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken };
    const check = await runCli(['check', '--task', '1', '--share-dir', share, '--vault', vaultDir, '--json', '--state-dir', path.join(tmp.path, 'state')], env);
    expect(check.code).toBe(1);
    expect((JSON.parse(check.stdout) as { vault: unknown }).vault).toEqual({
      dir: vaultDir,
      recoverable: ['images/image_1.jpg'],
      unrecoverable: ['images/image_2.jpg'],
      damagedRecords: { count: 0, sample: [] },
    });
    const text = await runCli(['check', '--task', '1', '--share-dir', share, '--vault', vaultDir, '--state-dir', path.join(tmp.path, 'state')], env);
    expect(text.stdout).toMatch(/1 missing file\(s\) recoverable, 1 not in the vault/);

    expect((await runCli(['restore', '--share-dir', share, '--vault', vaultDir])).code).toBe(2);
    expect((await runCli(['restore', '--all', '--task', '1', '--share-dir', share, '--vault', vaultDir])).stderr).toMatch(
      /exactly one of --all, --task ID or --path P/,
    );
    expect((await runCli(['restore', '--all', '--share-dir', share, '--vault', path.join(tmp.path, 'nope')])).code).toBe(2);

    const dry = await runCli(['restore', '--task', '1', '--share-dir', share, '--vault', vaultDir, '--dry-run']);
    expect(dry.code).toBe(1);
    expect(dry.stdout).toMatch(/would restore 1 file/);
    const r = await runCli(['restore', '--task', '1', '--share-dir', share, '--vault', vaultDir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/restored 1 file.*1 unrecoverable/s);
    expect(r.stdout).toMatch(/images\/image_2\.jpg — missing from the share and not in the vault/);
    expect(readFileSync(path.join(share, 'images/image_1.jpg')).equals(original)).toBe(true);
    const one = await runCli(['restore', '--path', 'images/image_1.jpg', '--path', 'images/image_0.jpg', '--share-dir', share, '--vault', vaultDir, '--json']);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ ok: true, alreadyInPlace: 2, restored: [] });
  });
});
