/**
 * The package as a user gets it (issue 22): a clean clone of this repository (HEAD, so
 * nothing uncommitted and nothing already built comes along) is packed with `npm pack`,
 * which builds through `prepack`; the tarball installs into an empty folder (dependencies
 * from npm's cache, which `npm ci` filled; the registry only for what it lacks) and its
 * `cvat-warden` bin prints the version, the help, and serves the emulator until Ctrl-C.
 * Every source map in it carries its sources (no map points at the absent src/).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './support/tmp.js';

const execFileAsync = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
const inGit = existsSync(join(ROOT, '.git'));
const work = useTempDir('warden-pack-', { scope: 'suite' });

/** Runs the installed bin until `until` matches its output, then sends SIGINT; resolves with everything it printed and its exit code. */
function runUntil(bin: string, args: string[], until: RegExp): Promise<{ code: number | null; output: string; url: string | undefined }> {
  return new Promise((done, fail) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let url: string | undefined;
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = until.exec(output);
      if (match && url === undefined) {
        url = match[1] ?? '';
        void fetch(`${url}/api/server/about`)
          .then((r) => r.json())
          .then((about) => {
            output += `\nABOUT ${JSON.stringify(about)}\n`;
          })
          .finally(() => child.kill('SIGINT'));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', fail);
    child.on('exit', (code) => done({ code, output, url }));
  });
}

describe.skipIf(!inGit)('npm pack of a clean clone, installed into an empty folder', () => {
  it('packs with a build, ships resolvable source maps, installs, and runs -V, help and emulate', async () => {
    const clone = join(work.path, 'clone');
    await execFileAsync('git', ['clone', '--quiet', '--depth', '1', `file://${ROOT}`, clone]);
    expect(existsSync(join(clone, 'dist')), 'a clean clone has no dist/').toBe(false);
    // The build needs the dev dependencies: the ones already installed here, not a second npm ci.
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir');
    const { stdout } = await execFileAsync('npm', ['pack', '--json', '--no-audit', '--no-fund'], { cwd: clone, maxBuffer: 32 * 1024 * 1024 });
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = new Set(packed!.files.map((f) => f.path));
    expect(files).toContain(pkg.bin['cvat-warden']);
    const tarball = join(clone, packed!.filename);

    // Source maps: each one carries the text of every source it names.
    await execFileAsync('tar', ['-xzf', tarball, '-C', work.path]);
    const maps = [...files].filter((f) => f.endsWith('.map'));
    expect(maps).toContain('dist/cli.js.map');
    for (const map of maps) {
      const { sources, sourcesContent } = JSON.parse(readFileSync(join(work.path, 'package', map), 'utf8')) as { sources: string[]; sourcesContent?: string[] };
      expect(sourcesContent?.length, map).toBe(sources.length);
      expect(
        sourcesContent!.every((s) => s.length > 0),
        map,
      ).toBe(true);
    }

    const app = join(work.path, 'app');
    await execFileAsync('mkdir', [app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'empty', private: true }));
    await execFileAsync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], { cwd: app });
    const bin = join(app, 'node_modules', '.bin', 'cvat-warden');

    expect((await execFileAsync(bin, ['-V'])).stdout.trim()).toBe(pkg.version);
    expect((await execFileAsync(bin, ['help'])).stdout).toMatch(/^Usage: cvat-warden <command>/m);
    const emulate = await runUntil(bin, ['emulate', '--port', '0'], /listening on (http:\/\/[\d.]+:\d+)/);
    expect(emulate.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(emulate.output).toMatch(/ABOUT \{.*"version":"2\.73\.0"/);
    expect(emulate.code, emulate.output).toBe(0);
  }, 180_000);
});
