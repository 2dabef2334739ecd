/** The built CLI's own surface: usage, config errors listed at once (exit 2), emulate until Ctrl-C. */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI, runCli } from './support/cli.js';

describe('cvat-warden CLI', () => {
  it('prints usage, exits 2 without a command and on an unknown one', async () => {
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toMatch(/Commands:[\s\S]*warm[\s\S]*check[\s\S]*run[\s\S]*doctor[\s\S]*emulate/);
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const help = await runCli(['warm', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--concurrency <integer> .*env CVAT_WARDEN_CONCURRENCY, default 1/);
  });

  it('lists every configuration problem at once and exits 2 before touching the network', async () => {
    const bad = await runCli(['warm', '--concurrency', '0', '--quality', 'best', '--nope'], { CVAT_URL: 'cvat.example.com', CVAT_ACCESS_TOKEN: 'secret-token-xyz', CVAT_API_KEY: 'other-key-123' });
    expect(bad.code).toBe(2);
    const lines = bad.stderr.split('\n').filter((l) => l.trim().startsWith('- '));
    expect(lines.length).toBeGreaterThanOrEqual(6);
    expect(bad.stderr).toMatch(/--concurrency: expected 1 to 64/);
    expect(bad.stderr).toMatch(/--quality: expected one of/);
    expect(bad.stderr).toMatch(/--nope: unknown option/);
    expect(bad.stderr).toMatch(/not a valid URL/);
    expect(bad.stderr).toMatch(/several credentials/);
    expect(bad.stderr).toMatch(/nothing to do/);
    expect(bad.stderr).not.toContain('secret-token-xyz');
    expect(bad.stderr).not.toContain('other-key-123');
  });

  it('runs the emulator until Ctrl-C', async () => {
    const child = spawn(process.execPath, [CLI, 'emulate', '--port', '0', '--build-time', '10ms'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL in: ${out}`)), 15_000);
      child.stdout.on('data', () => {
        const match = /listening on (http:\/\/\S+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
    });
    const about = (await (await fetch(`${url}/api/server/about`)).json()) as { version: string };
    expect(about.version).toBe('2.73.0');
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});
