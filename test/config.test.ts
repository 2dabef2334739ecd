import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { COMMAND_NAMES, MAX_TIMER_MS, OPTIONS, type OptionSpec, type OptionValues } from '../src/config/options.js';
import { parseDuration, parseOptions } from '../src/config/parse.js';
import { closest } from '../src/config/suggest.js';
import { ConfigError } from '../src/errors.js';
import { clearSecretsForTests, redactSecrets } from '../src/secrets.js';
import { withTempDir } from './support/tmp.js';

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

  it('reads the token from a file (Docker secret) and registers it for redaction', async () => {
    await withTempDir('warden-config-', (dir) => {
      writeFileSync(join(dir, 'token'), 'file-token-abcdef\n');
      const config = loadConfig('warm', ['--all', '--token-file', join(dir, 'token')], { CVAT_URL: 'http://cvat' });
      expect(config.cvat.credentials).toEqual({ kind: 'token', token: 'file-token-abcdef' });
      expect(redactSecrets('Bearer file-token-abcdef')).toBe('Bearer [REDACTED]');
      const missing = problemsOf(() => loadConfig('warm', ['--all', '--token-file', join(dir, 'nope')], { CVAT_URL: 'http://cvat' }));
      expect(missing.join('\n')).toMatch(/access token file .*nope cannot be read \(ENOENT\)/);
    });
  });

  it('never puts a secret into a problem message', () => {
    const problems = problemsOf(() => loadConfig('warm', ['--all', '--url', 'https://user:hunter22@cvat'], { CVAT_PASSWORD: 'hunter22' }));
    expect(problems.join('\n')).not.toContain('hunter22');
  });

  it('rejects durations outside their bounds, from flags and from the environment', () => {
    const run = (argv: string[], env: NodeJS.ProcessEnv = {}) => problemsOf(() => loadConfig('run', argv, { ...BASE_ENV, ...env })).join('\n');
    expect(run(['--poll-interval', '0', '--scan-interval', '0'])).toMatch(
      /--poll-interval: expected 100ms to 24d, got "0"[\s\S]*--scan-interval: expected 1m to 24d, got "0"/,
    );
    // 25 days is beyond Node's timer limit (2^31-1 ms): such a timer fires after 1 ms.
    expect(run(['--poll-interval', '25d'])).toMatch(/--poll-interval: expected 100ms to 24d, got "25d"/);
    expect(run([], { CVAT_WARDEN_SCAN_INTERVAL: '10s' })).toMatch(/CVAT_WARDEN_SCAN_INTERVAL: expected 1m to 24d, got "10s"/);
    expect(run(['--concurrency', '65'])).toMatch(/--concurrency: expected 1 to 64, got "65"/);
    expect(loadConfig('run', ['--poll-interval', '1h30m', '--scan-interval', '24d'], BASE_ENV)).toMatchObject({
      pollIntervalMs: 5_400_000,
      scanIntervalMs: 24 * 86_400_000,
    });
  });

  it('every duration and integer of the table has bounds within the timer limit, and every default is valid', () => {
    for (const spec of OPTIONS as readonly OptionSpec[]) {
      if (spec.type === 'duration') {
        expect(parseDuration(spec.min), spec.name).toBeGreaterThanOrEqual(0);
        expect(parseDuration(spec.max)!, spec.name).toBeLessThanOrEqual(MAX_TIMER_MS);
        expect(parseDuration(spec.min)!, spec.name).toBeLessThan(parseDuration(spec.max)!);
      }
      if (spec.type === 'integer') expect(spec.min, spec.name).toBeLessThan(spec.max);
    }
    for (const command of COMMAND_NAMES) expect(parseOptions(command, [], {}).problems, command).toEqual([]);
  });

  it('leaves situation-dependent defaults to the component that knows the situation', () => {
    const config = loadConfig('run', [], BASE_ENV);
    expect(config.scanIntervalMs).toBeUndefined(); // the guard: 1h with inotify, 10m on network shares
    expect(config.logFormat).toBeUndefined(); // the logger: pretty on a terminal, json otherwise
    expect(config.pollIntervalMs).toBe(60_000);
  });

  it('validates LOG_LEVEL with everything else', () => {
    const problems = problemsOf(() => loadConfig('warm', ['--concurrency', '0'], { LOG_LEVEL: 'loud' }));
    expect(problems.join('\n')).toMatch(/LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"/);
    expect(problems.join('\n')).toMatch(/--concurrency: expected 1 to 64/);
    expect(problems.join('\n')).toMatch(/CVAT URL is missing/);
    expect(loadConfig('warm', ['--all'], { ...BASE_ENV, LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
  });

  it('rejects positional arguments and suggests the option meant', () => {
    const problems = problemsOf(() => loadConfig('warm', ['12', '--concurency', '2', '--al'], BASE_ENV));
    expect(problems).toContain('unexpected argument "12": "warm" takes only options (e.g. --task 12)');
    expect(problems.join('\n')).toMatch(/--concurency: unknown option for "warm" — did you mean --concurrency\?/);
    expect(problems.join('\n')).toMatch(/--al: unknown option for "warm" — did you mean --all\?/);
    expect(problems.join('\n')).not.toMatch(/unexpected argument "2"/); // the value of the mistyped option, not a second problem
    expect(problemsOf(() => loadConfig('check', ['--all', '--job', '3'], BASE_ENV)).join('\n')).toMatch(
      /--job: not an option of "check" \(it is one of warm\)/,
    );
    expect(closest('wram', ['warm', 'check', 'run'])).toBe('warm');
    expect(closest('xyz', ['warm', 'check', 'run'])).toBeUndefined();
  });

  it('takes secrets only from the environment or a file, and never echoes them', () => {
    const problems = problemsOf(() => loadConfig('run', ['--access-token', 'pat-on-the-command-line'], { CVAT_URL: 'https://cvat' }));
    expect(problems.join('\n')).toMatch(/--access-token: not taken as a flag .*set CVAT_ACCESS_TOKEN/);
    expect(problems.join('\n')).not.toContain('pat-on-the-command-line');
    const config = loadConfig('run', [], { ...BASE_ENV, CVAT_WEBHOOK_SECRET: 'hook-secret-123456' });
    expect(config.webhookSecret).toBe('hook-secret-123456');
    expect(redactSecrets('sig hook-secret-123456')).toBe('sig [REDACTED]');
    for (const env of ['CVAT_ACCESS_TOKEN', 'CVAT_API_KEY', 'CVAT_PASSWORD', 'CVAT_WEBHOOK_SECRET']) {
      expect(
        (OPTIONS as readonly OptionSpec[]).find((o) => o.env === env),
        env,
      ).toMatchObject({ secret: true, envOnly: true });
    }
  });

  it('negates a boolean with --no-<name> (for options that are on by default)', () => {
    expect(parseOptions('warm', ['--previews', '--no-previews'], {}).values.previews).toBe(false);
    expect(parseOptions('warm', ['--no-previews', '--previews'], {}).values.previews).toBe(true);
    expect(parseOptions('warm', ['--no-task', '3'], {}).problems.join('\n')).toMatch(/--no-task: unknown option/);
  });

  it('derives typed values from the table', () => {
    const { values } = parseOptions('warm', ['--quality', 'both', '--task', '1,2'], {});
    expectTypeOf(values.quality).toEqualTypeOf<'compressed' | 'original' | 'both'>();
    expectTypeOf(values['max-age']).toEqualTypeOf<number>();
    expectTypeOf(values['scan-interval']).toEqualTypeOf<number | undefined>();
    expectTypeOf(values.task).toEqualTypeOf<readonly number[]>();
    expectTypeOf(values.all).toEqualTypeOf<boolean>();
    expectTypeOf<OptionValues['org']>().toEqualTypeOf<string | undefined>();
    expect(values).toMatchObject({ quality: 'both', task: [1, 2], all: false, 'max-age': 20 * 3_600_000, 'build-time': 300 });
  });
});
