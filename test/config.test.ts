import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { ConfigError } from '../src/errors.js';
import { clearSecretsForTests, redactSecrets } from '../src/secrets.js';

const BASE_ENV = { CVAT_URL: 'https://cvat.example.com', CVAT_ACCESS_TOKEN: 'pat-0123456789abcdef' };

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected a ConfigError');
}

afterEach(() => clearSecretsForTests());

describe('config', () => {
  it('lists every problem at once', () => {
    const problems = problemsOf(() =>
      loadConfig('warm', ['--concurrency', 'lots', '--max-age', '30h', '--quality', 'best', '--bogus', '--task', 'x1'], { CVAT_URL: 'ftp://cvat' }),
    );
    expect(problems).toHaveLength(8); // the invalid --task also leaves the scope empty
    expect(problems.join('\n')).toMatch(/--concurrency: expected a whole number, got "lots"/);
    expect(problems.join('\n')).toMatch(/--max-age: expected 1m to 23h59m \(CVAT drops chunks 24 h after building them\), got "30h"/);
    expect(problems.join('\n')).toMatch(/--quality: expected one of compressed, original, both/);
    expect(problems.join('\n')).toMatch(/--bogus: unknown option/);
    expect(problems.join('\n')).toMatch(/--task: expected positive id numbers/);
    expect(problems.join('\n')).toMatch(/http or https/);
    expect(problems.join('\n')).toMatch(/no CVAT credentials/);
    expect(problems.join('\n')).toMatch(/nothing to do/);
  });

  it('requires a scope and refuses two kinds of credentials', () => {
    const problems = problemsOf(() => loadConfig('warm', [], { ...BASE_ENV, CVAT_API_KEY: 'key-123456' }));
    expect(problems.some((p) => /nothing to do/.test(p))).toBe(true);
    expect(problems.some((p) => /several credentials/.test(p))).toBe(true);
  });

  it('reads options from the environment and flags, flags first', () => {
    const config = loadConfig('warm', ['--task', '3,4', '--task', '9', '--concurrency', '2'], { ...BASE_ENV, CVAT_WARDEN_CONCURRENCY: '5', CVAT_ORG: 'lab' });
    expect(config.scope.taskIds).toEqual([3, 4, 9]);
    expect(config.warm.concurrency).toBe(2);
    expect(config.cvat.organization).toBe('lab');
    expect(config.cvat.credentials).toEqual({ kind: 'token', token: BASE_ENV.CVAT_ACCESS_TOKEN });
    expect(config.warm.maxAgeMs).toBe(20 * 3_600_000);
    expect(config.warm.qualities).toEqual(['compressed']);
  });

  it('strips a trailing /api and keeps a path prefix', () => {
    expect(loadConfig('warm', ['--all', '--url', 'https://host/cvat/api/'], BASE_ENV).cvat.url).toBe('https://host/cvat');
  });

  it('reads the token from a file (Docker secret) and registers it for redaction', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-config-'));
    writeFileSync(join(dir, 'token'), 'file-token-abcdef\n');
    const config = loadConfig('warm', ['--all', '--token-file', join(dir, 'token')], { CVAT_URL: 'http://cvat' });
    expect(config.cvat.credentials).toEqual({ kind: 'token', token: 'file-token-abcdef' });
    expect(redactSecrets('Bearer file-token-abcdef')).toBe('Bearer [REDACTED]');
    const missing = problemsOf(() => loadConfig('warm', ['--all', '--token-file', join(dir, 'nope')], { CVAT_URL: 'http://cvat' }));
    expect(missing.join('\n')).toMatch(/access token file .*nope cannot be read \(ENOENT\)/);
  });

  it('never puts a secret into a problem message', () => {
    const problems = problemsOf(() => loadConfig('warm', ['--all', '--url', 'https://user:hunter22@cvat'], { CVAT_PASSWORD: 'hunter22' }));
    expect(problems.join('\n')).not.toContain('hunter22');
  });
});
