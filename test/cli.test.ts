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
    // Descriptions wrap under their column on an 80-column terminal.
    expect(help.stdout.replace(/\n {33}/g, ' ')).toMatch(/--concurrency <integer> .*env CVAT_WARDEN_CONCURRENCY, default the chunk-worker count, 1 to 64/);
    expect(help.stdout.split('\n').filter((l) => l.length > 80)).toEqual([]);
  });

  it('has the habits admins expect: -h on every command, help <cmd>, -V/--version/version, did you mean', async () => {
    const short = await runCli(['warm', '-h']);
    expect(short.code).toBe(0);
    expect(short.stdout).toMatch(/^Usage: cvat-warden warm \[options\]/);
    const topic = await runCli(['help', 'warm']);
    expect(topic.code).toBe(0);
    expect(topic.stdout).toBe(short.stdout);
    // --help wins over other problems on the line: the command is not run anyway.
    expect((await runCli(['check', '--bogus', '--help'])).code).toBe(0);
    for (const flag of ['-V', '--version', 'version']) {
      const version = await runCli([flag]);
      expect(version.code, flag).toBe(0);
      expect(version.stdout.trim(), flag).toMatch(/^\d+\.\d+\.\d+/);
    }
    const typo = await runCli(['wram', '--all']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown command "wram" — did you mean warm\?/);
    const helpTypo = await runCli(['help', 'chek']);
    expect(helpTypo.code).toBe(2);
    expect(helpTypo.stderr).toMatch(/did you mean check\?/);
    const option = await runCli(['warm', '--al', '--concurency', '2', '7'], { CVAT_URL: 'https://cvat', CVAT_ACCESS_TOKEN: 'token-abcdef-123' });
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/--al: unknown option for "warm" — did you mean --all\?/);
    expect(option.stderr).toMatch(/--concurency: unknown option for "warm" — did you mean --concurrency\?/);
    expect(option.stderr).toMatch(/unexpected argument "7": "warm" takes only options \(e.g. --task 7\)/);
  }, 90_000);

  it('an invalid LOG_LEVEL is one problem among all, exit 2, not a crash', async () => {
    const bad = await runCli(['run', '--poll-interval', '0'], { LOG_LEVEL: 'loud', CVAT_URL: 'https://cvat', CVAT_ACCESS_TOKEN: 'token-abcdef-123' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"/);
    expect(bad.stderr).toMatch(/--poll-interval: expected 100ms to 24d, got "0"/);
    expect(bad.stderr).not.toMatch(/Error:|at .*\.js:\d+/);
  });

  it('lists every configuration problem at once and exits 2 before touching the network', async () => {
    const bad = await runCli(['warm', '--concurrency', '0', '--quality', 'best', '--nope'], {
      CVAT_URL: 'cvat.example.com',
      CVAT_ACCESS_TOKEN: 'secret-token-xyz',
      CVAT_API_KEY: 'other-key-123',
    });
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
    child.stdout.on('data', (d: Buffer) => (out += String(d)));
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
