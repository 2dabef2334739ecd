/**
 * The demo's closing hints are commands a user can paste (issue 22): no placeholders,
 * and the CLI named so that the user's shell finds it — `cvat-warden` only when that name
 * on PATH is this CLI (npm's script-time node_modules/.bin does not count), else
 * `node <path>`. Checked with a real shell and real PATH directories.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { exploreByHand } from '../src/commands/demo.js';
import { selfCommand, shellQuote } from '../src/commands/self-command.js';
import { useTempDir } from './support/tmp.js';

const execFileAsync = promisify(execFile);
const CLI = resolve('dist/cli.js');
const tmp = useTempDir('warden-hints-');
const pkg = (await import('../package.json', { with: { type: 'json' } })).default as { version: string };

describe('demo hints', () => {
  it('names the CLI by `cvat-warden` only when the user PATH resolves that name to it', () => {
    const bin = join(tmp.path, 'bin');
    const npmBin = join(tmp.path, 'project', 'node_modules', '.bin');
    mkdirSync(bin, { recursive: true });
    mkdirSync(npmBin, { recursive: true });
    // An installed CLI, executable as npm makes a package's bin.
    const script = join(tmp.path, 'project', 'node_modules', 'cvat-warden', 'dist', 'cli.js');
    mkdirSync(dirname(script), { recursive: true });
    writeFileSync(script, '#!/usr/bin/env node\n', { mode: 0o755 });
    symlinkSync(script, join(npmBin, 'cvat-warden'));
    const nodeDir = dirname(process.execPath);
    // Only npm's script-time directory has it: the user's shell would not find it.
    expect(selfCommand(script, { PATH: [npmBin, nodeDir].join(delimiter) })).toBe(`node ${realpathSync(script)}`);
    symlinkSync(script, join(bin, 'cvat-warden'));
    expect(selfCommand(join(npmBin, 'cvat-warden'), { PATH: [npmBin, bin, nodeDir].join(delimiter) })).toBe('cvat-warden');
    // Another cvat-warden first on PATH: this one is named by its path.
    const other = join(tmp.path, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'cvat-warden'), '#!/bin/sh\n', { mode: 0o755 });
    expect(selfCommand(script, { PATH: [other, bin, nodeDir].join(delimiter) })).toBe(`node ${realpathSync(script)}`);
    expect(shellQuote("/tmp/it's here")).toBe(`'/tmp/it'\\''s here'`);
  });

  it('prints commands without placeholders whose CLI part runs as pasted in a shell', async () => {
    const lines = exploreByHand(selfCommand(CLI, { PATH: process.env['PATH'] }), tmp.path);
    const commands = lines.slice(1).map((l) => l.trim());
    expect(commands).toHaveLength(2);
    for (const command of commands) expect(command).not.toMatch(/<[^>]*>/);
    expect(commands[0]).toMatch(/ emulate --share-dir \S+$/);
    expect(commands[1]).toMatch(/^CVAT_URL=http:\/\/127\.0\.0\.1:8080 CVAT_ACCESS_TOKEN=\S+ .* run --share-dir \S+ --state-dir \S+$/);
    // Everything before the subcommand is how to start this CLI: the shell runs it.
    const self = commands[0]!.replace(/ emulate .*$/, '');
    const { stdout } = await execFileAsync('sh', ['-c', `${self} -V`], { env: { PATH: process.env['PATH'] } });
    expect(stdout.trim()).toBe(pkg.version);
  });
});
