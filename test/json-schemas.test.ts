/**
 * Every command's `--json` output is described by schemas/<command>.schema.json: real
 * outputs of the built CLI against the emulator (clean and with problems) validate with
 * ajv in strict mode, carry their schemaVersion, and hold no secret.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JSON_SCHEMA_VERSIONS, type JsonCommand } from '../src/commands/json-output.js';
import { optionSpec } from '../src/config/options.js';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import type { ChunkFailure } from '../src/warm/engine.js';
import { runCli } from './support/cli.js';
import { addFormats } from './support/openapi.js';
import { useTempDir } from './support/tmp.js';

const ajv = addFormats(new Ajv({ strict: true, allErrors: true }));
const schemas = new Map<JsonCommand, { schema: Record<string, unknown>; validate: ValidateFunction }>();
for (const command of Object.keys(JSON_SCHEMA_VERSIONS) as JsonCommand[]) {
  const schema = JSON.parse(readFileSync(`schemas/${command}.schema.json`, 'utf8')) as Record<string, unknown>;
  schemas.set(command, { schema, validate: ajv.compile(schema) });
}

function expectValid(command: JsonCommand, output: unknown): void {
  const { validate } = schemas.get(command)!;
  const ok = validate(output);
  expect(ok ? [] : validate.errors, `${command} --json against schemas/${command}.schema.json`).toEqual([]);
  expect(output).toMatchObject({ schemaVersion: JSON_SCHEMA_VERSIONS[command], command });
}

let emulator: Emulator | undefined;
const work = useTempDir('warden-json-');
// One emulator and share for the file (beforeAll), a fresh state directory per test (useTempDir).
const shareRoot = useTempDir('warden-json-share-', { scope: 'suite' });
let share: string;

beforeAll(async () => {
  share = join(shareRoot.path, 'share');
  await prepareDemoShare(share);
  emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
});
afterAll(async () => {
  await emulator?.close();
});

const env = () => ({ CVAT_URL: emulator!.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken, CVAT_WARDEN_STATE_DIR: join(work.path, 'state') });

async function json(args: string[], expectedCode: number): Promise<unknown> {
  const run = await runCli([...args, '--json'], env(), { timeoutMs: 60_000 });
  expect(run.code, run.stderr).toBe(expectedCode);
  expect(run.stdout + run.stderr).not.toContain(DEMO_CREDENTIALS.accessToken);
  return JSON.parse(run.stdout);
}

describe('--json schemas', () => {
  it('has one schema per command that takes --json, each versioned like the code', () => {
    // `backup list|verify|restore` are actions of `backup`: schemas of their own, one --json option.
    expect([...optionSpec('json').commands].sort()).toEqual(
      Object.keys(JSON_SCHEMA_VERSIONS)
        .filter((c) => !c.startsWith('backup-'))
        .sort(),
    );
    // Plus the service's GET /status (test/service-health.test.ts validates it).
    expect(readdirSync('schemas').sort()).toEqual([...Object.keys(JSON_SCHEMA_VERSIONS).map((c) => `${c}.schema.json`), 'status.schema.json'].sort());
    for (const [command, { schema }] of schemas) expect(JSON.stringify(schema), command).toContain(`"schemaVersion":{"const":${JSON_SCHEMA_VERSIONS[command]}`);
  });

  it('warm: the dry-run plan and a warm pass', async () => {
    const plan = await json(['warm', '--all', '--dry-run'], 0);
    expectValid('warm', plan);
    expect(plan).toMatchObject({ dryRun: true, plan: { requests: expect.any(Number) } });
    const pass = await json(['warm', '--all'], 0);
    expectValid('warm', pass);
    expect(pass).toMatchObject({ dryRun: false, result: { aborted: false, failed: 0 } });
    // A second pass finds everything fresh in the ledger.
    expectValid('warm', await json(['warm', '--all', '--dry-run'], 0));
  }, 90_000);

  it('warm: the failure entries the engine reports fit the schema', () => {
    const failure: ChunkFailure = { taskId: 3, jobId: 9, kind: 'chunk', quality: 'compressed', slot: 2, state: 'stuck', reason: 'HTTP 429 ×20' };
    const definitions = (schemas.get('warm')!.schema['definitions'] as Record<string, object>)['failure']!;
    const validate = ajv.compile({ ...definitions, $id: 'urn:test:failure' });
    expect(validate(failure) ? [] : validate.errors).toEqual([]);
  });

  it('check: all present, then a file missing', async () => {
    const clean = await json(['check', '--all', '--share-dir', share], 0);
    expectValid('check', clean);
    rmSync(join(share, 'images/image_2.jpg'));
    const broken = (await json(['check', '--all', '--share-dir', share], 1)) as { problems: Array<{ jobs: unknown[] }> };
    expectValid('check', broken);
    expect(broken.problems[0]!.jobs.length).toBeGreaterThan(0);
    await prepareDemoShare(share);
  }, 90_000);

  it('impact: a directory two tasks read, and one no task reads', async () => {
    const blocking = (await json(['impact', 'images', '--share-dir', share], 1)) as { tasks: unknown[] };
    expectValid('impact', blocking);
    expect(blocking.tasks.length).toBe(2);
    expectValid('impact', await json(['impact', 'no-such-dir', '--share-dir', share], 0));
  }, 90_000);

  it('doctor: passing, and failing with a fix', async () => {
    expectValid('doctor', await json(['doctor', '--share-dir', share], 0));
    const failing = (await json(['doctor', '--share-dir', join(shareRoot.path, 'no-such-share')], 1)) as {
      ok: boolean;
      checks: Array<{ level: string; fix?: string }>;
    };
    expectValid('doctor', failing);
    expect(failing.ok).toBe(false);
    expect(failing.checks.find((c) => c.level === 'fail')?.fix).toEqual(expect.any(String));
  }, 90_000);
});
