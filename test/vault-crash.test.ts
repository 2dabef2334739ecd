/**
 * kill -9 in the middle of building the vault and in the middle of `restore`: no
 * half-written file anywhere (every vault entry and every restored file is the whole
 * original), and the next run finishes the job.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, runCli } from './support/cli.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const tmp = useTempDir('vault-crash-');
// Enough work that the kill lands mid-way (it comes after ~300 files); the rest is only the re-run's.
const COUNT = 5_000;

function makeShare(): string {
  const share = path.join(tmp.path, 'share');
  for (let i = 0; i < COUNT; i++) {
    const dir = path.join(share, `d${Math.floor(i / 500)}`);
    if (i % 500 === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `f${i}.jpg`), `frame ${i} `.repeat(20));
  }
  return share;
}

function countFiles(root: string, skip = '.vault-meta'): number {
  let n = 0;
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (entry.name === skip) continue;
    n += entry.isDirectory() ? countFiles(path.join(root, entry.name), skip) : 1;
  }
  return n;
}

function build(share: string, vault: string) {
  const child = spawn(process.execPath, ['test/fixtures/vault-build-fixture.mjs', share, vault, String(COUNT)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, out: () => out };
}

function expectWholeLinks(share: string, vault: string): number {
  let n = 0;
  for (let i = 0; i < COUNT; i++) {
    const rel = `d${Math.floor(i / 500)}/f${i}.jpg`;
    const held = path.join(vault, rel);
    if (!existsSync(held)) continue;
    n++;
    expect(statSync(held).ino).toBe(statSync(path.join(share, rel)).ino);
  }
  return n;
}

describe('kill -9', () => {
  it('during vault building leaves only whole entries, and the next open finishes', { timeout: 120_000 }, async () => {
    expect(existsSync(CLI)).toBe(true);
    const share = makeShare();
    const vault = path.join(share, '.cvat-warden-vault');
    const first = build(share, vault);
    await waitFor('some links made', () => first.out().includes('building') && existsSync(vault) && countFiles(vault) > 300, {
      timeoutMs: 60_000,
      intervalMs: 20,
    });
    first.child.kill('SIGKILL');
    await first.exited;
    const partial = expectWholeLinks(share, vault);
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(COUNT);
    // The manifest is written after the links, atomically: absent or complete.
    const manifest = path.join(vault, '.vault-meta/tasks/1.jsonl');
    if (existsSync(manifest)) expect(readFileSync(manifest, 'utf8').trim().split('\n')).toHaveLength(COUNT);

    const second = build(share, vault);
    expect(await second.exited).toBe(0);
    expect(expectWholeLinks(share, vault)).toBe(COUNT);
    expect(readFileSync(manifest, 'utf8').trim().split('\n')).toHaveLength(COUNT);
    expect(readdirSync(path.join(vault, '.vault-meta/tmp'))).toEqual([]);
  });

  it('during restore leaves every restored file whole and nothing else in the share; a re-run completes (exit 0)', { timeout: 120_000 }, async () => {
    const share = makeShare();
    const vault = path.join(share, '.cvat-warden-vault');
    expect(await build(share, vault).exited).toBe(0);
    for (let d = 0; d < COUNT / 500; d++) rmSync(path.join(share, `d${d}`), { recursive: true });
    const child = spawn(process.execPath, [CLI, 'restore', '--all', '--share-dir', share, '--vault', vault], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await waitFor('some files restored', () => countFiles(share, '.cvat-warden-vault') > 300, { timeoutMs: 60_000, intervalMs: 20 });
    child.kill('SIGKILL');
    await exited;
    const restored = countFiles(share, '.cvat-warden-vault');
    expect(restored).toBeLessThan(COUNT);
    let whole = 0;
    for (let i = 0; i < COUNT; i++) {
      const rel = `d${Math.floor(i / 500)}/f${i}.jpg`;
      if (!existsSync(path.join(share, rel))) continue;
      expect(readFileSync(path.join(share, rel), 'utf8')).toBe(`frame ${i} `.repeat(20));
      whole++;
    }
    expect(whole).toBe(restored);
    const again = await runCli(['restore', '--all', '--share-dir', share, '--vault', vault, '--json'], {}, { timeoutMs: 60_000 });
    expect(again.code, again.stderr).toBe(0);
    const report = JSON.parse(again.stdout) as { restored: unknown[]; alreadyInPlace: number };
    expect(report.restored.length + report.alreadyInPlace).toBe(COUNT);
    expect(report.alreadyInPlace).toBe(restored);
  });
});
