/**
 * `warm` end to end against the emulator: every chunk the UI reads ends warm, nothing
 * else is built, a resumed run requests nothing, moved chunk dates re-warm only their
 * job, and secrets stay out of every output.
 */
import { Ledger } from '../src/warm/ledger.js';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoAuth, startEmulator, syntheticDeployment, type Emulator } from '../src/emulator/index.js';
import { clearSecretsForTests } from '../src/secrets.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';
import { warmInProcess } from './support/warm.js';

const tmp = useTempDir('warden-warm-');
let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
  clearSecretsForTests();
});

const deployment = () =>
  syntheticDeployment({
    tasks: 3,
    mediaType: 'video',
    framesPerTask: 260,
    chunkSize: 36,
    segmentSize: 100,
    overlap: 5,
    groundTruthFrames: 20,
    consensusReplicas: 2,
  });

function env(url: string): NodeJS.ProcessEnv {
  return { CVAT_URL: url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken };
}

describe('warm against the emulator (CVAT 2.73)', () => {
  it('leaves every chunk the UI reads warm, builds nothing else, and exits 0', async () => {
    emulator = await startEmulator({ tasks: deployment(), auth: demoAuth(), buildTimeMs: 2, pathPrefix: '/cvat' });
    expect(emulator.state.coldUiChunkKeys().size).toBeGreaterThan(20);
    const run = await warmInProcess(['--all', '--concurrency', '2', '--state-dir', tmp.path, '--json'], env(emulator.url));
    expect(run.code, run.logs).toBe(0);
    expect(emulator.state.coldUiChunkKeys().size).toBe(0);
    const built = Object.keys(emulator.state.buildsByKey());
    expect(built.filter((k) => !emulator!.state.uiChunkKeys().has(k))).toEqual([]);
    expect(emulator.state.duplicateBuilds()).toEqual([]);
    const summary = JSON.parse(run.stdout);
    expect(summary.result).toMatchObject({ warm: emulator.state.uiChunkKeys().size, failed: 0, stuck: 0 });
    // Range: bytes=0-0 on >= 2.66 → 206 with one byte per chunk.
    expect(summary.result.bytes).toBe(summary.result.warm);
    expect(run.stdout + run.logs).not.toContain(DEMO_CREDENTIALS.accessToken);
    expect(await run.metrics.registry.metrics()).toMatch(/cvat_warden_chunk_requests_total\{quality="compressed",outcome="warm"\} \d+/);
  });

  it('resumes without re-requesting confirmed chunks, and re-warms only a job whose chunks were rebuilt', async () => {
    emulator = await startEmulator({ tasks: deployment(), auth: demoAuth(), buildTimeMs: 1 });
    // Emulated builds take 1 ms: count every answer as a build, as a slow real build would be.
    expect((await warmInProcess(['--all', '--state-dir', tmp.path, '--cold-threshold', '0ms'], env(emulator.url))).code).toBe(0);
    emulator.state.resetCounters();
    const second = await warmInProcess(['--all', '--state-dir', tmp.path, '--json'], env(emulator.url));
    expect(second.code).toBe(0);
    expect(emulator.state.count('chunk')).toBe(0);
    expect(JSON.parse(second.stdout).result.warm).toBe(0);

    const job = [...emulator.deployment.jobs.values()].find((j) => j.type === 'annotation')!;
    const segment = emulator.deployment.segments.get(job.segmentId)!;
    emulator.touchSegment(job.id);
    expect(emulator.state.coldUiChunkKeys().size).toBeGreaterThan(0);
    emulator.state.resetCounters();
    const third = await warmInProcess(['--all', '--state-dir', tmp.path, '--json', '--cold-threshold', '0ms'], env(emulator.url));
    expect(third.code, third.logs).toBe(0);
    expect(emulator.state.coldUiChunkKeys().size).toBe(0);
    const result = JSON.parse(third.stdout).result;
    expect(result.warm).toBe(Math.ceil(segment.frameSet.length / 36));
  });

  it('treats a fast answer with no build time on record as cached by someone else, and looks again 4 h later, not on every run', async () => {
    emulator = await startEmulator({ tasks: deployment(), auth: demoAuth(), buildTimeMs: 1 });
    const before = Date.now();
    expect((await warmInProcess(['--all', '--state-dir', tmp.path, '--cold-threshold', '10s'], env(emulator.url))).code).toBe(0);
    const after = Date.now();
    emulator.state.resetCounters();
    // 1 ms builds under a 10 s cold threshold look like cache hits of unknown age (what a kill -9 leaves of our own
    // builds): looked at again TTL − 20 h = 4 h later, so the next run asks for none of them.
    const again = await warmInProcess(['--all', '--state-dir', tmp.path, '--json', '--cold-threshold', '10s'], env(emulator.url));
    const result = JSON.parse(again.stdout).result;
    expect(result.warm).toBe(0);
    expect(result.fresh).toBe(emulator.state.uiChunkKeys().size);
    expect(emulator.state.requestLog.filter((r) => r.kind === 'job_chunk')).toHaveLength(0);
    // Recorded 16 h old (20 h max age − 4 h): due 4 h from now, within CVAT's 24 h.
    const ledger = await Ledger.open(tmp.path);
    try {
      // Recorded during the first run, dated 16 h before the moment it saw the answer (however long the run took).
      const confirmed = [...ledger.seriesNames()].flatMap((series) => [...ledger.entries(series)].map(([, e]) => e.confirmedAt));
      expect(confirmed.length).toBe(emulator.state.uiChunkKeys().size);
      for (const at of confirmed) expect(at).toBeGreaterThanOrEqual(before - 16 * 3_600_000);
      for (const at of confirmed) expect(at).toBeLessThanOrEqual(after - 16 * 3_600_000);
    } finally {
      await ledger.close();
    }
  });

  it('stops cleanly on Ctrl-C: in-flight requests end, the ledger keeps what was warmed, the next run resumes', async () => {
    emulator = await startEmulator({ tasks: deployment(), auth: demoAuth(), buildTimeMs: 20 });
    const interrupt = new AbortController();
    const pending = warmInProcess(['--all', '--state-dir', tmp.path, '--json', '--cold-threshold', '0ms'], env(emulator.url), interrupt.signal);
    // The emulator caches a chunk before its answer reaches the client; at concurrency 1 at
    // most one is in flight, so 11 cached means at least 10 answered and recorded.
    await waitFor('11 chunks cached', () => emulator!.state.uiChunkKeys().size - emulator!.state.coldUiChunkKeys().size >= 11, { intervalMs: 10 });
    interrupt.abort();
    const stopped = await pending;
    expect(stopped.code).toBe(130);
    const first = JSON.parse(stopped.stdout).result;
    expect(first.aborted).toBe(true);
    expect(first.warm).toBeGreaterThanOrEqual(10);
    expect(first.warm).toBeLessThan(emulator.state.uiChunkKeys().size);
    emulator.state.resetCounters();
    const resumed = await warmInProcess(['--all', '--state-dir', tmp.path, '--json', '--cold-threshold', '0ms'], env(emulator.url));
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout).result.fresh).toBe(first.warm);
    expect(emulator.state.coldUiChunkKeys().size).toBe(0);
  });

  it('plans without requesting any chunk on --dry-run', async () => {
    emulator = await startEmulator({ tasks: deployment(), auth: demoAuth(), buildTimeMs: 1 });
    const run = await warmInProcess(['--all', '--dry-run', '--state-dir', tmp.path, '--json'], env(emulator.url));
    expect(run.code).toBe(0);
    expect(emulator.state.count('chunk')).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.plan.requests).toBe(emulator.state.uiChunkKeys().size);
    expect(report.plan.estimatedSeconds).toBeGreaterThan(0);
    const text = await warmInProcess(['--all', '--dry-run', '--state-dir', tmp.path], env(emulator.url));
    expect(text.stdout).toMatch(/tasks\s+3/);
    expect(text.stdout).toMatch(/est\. time/);
  });

  it('exits 3 with a clear message when the token is refused, and never prints it', async () => {
    emulator = await startEmulator({ tasks: deployment(), auth: demoAuth(), buildTimeMs: 1 });
    const run = await warmInProcess(['--all', '--state-dir', tmp.path], { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: 'wrong-token-123456' });
    expect(run.code).toBe(3);
    expect(run.logs).toMatch(/personal access token was refused/);
    expect(run.stdout + run.logs).not.toContain('wrong-token-123456');
  });

  it('exits 3 when the account may list jobs but not read their data', async () => {
    // An org supervisor sees tasks and jobs but has no view:data permission.
    const auth = {
      users: [
        { username: 'owner', isAdmin: true },
        { username: 'supervisor', password: 'supervisor-pw', orgRoles: { demo: 'supervisor' as const } },
      ],
    };
    emulator = await startEmulator({
      tasks: syntheticDeployment({ tasks: 1, organization: 'demo' }).map((t) => ({ ...t, owner: 'owner' })),
      auth,
      organizations: [{ id: 1, slug: 'demo' }],
      buildTimeMs: 1,
    });
    const run = await warmInProcess(['--all', '--org', 'demo', '--state-dir', tmp.path], {
      CVAT_URL: emulator.url,
      CVAT_USERNAME: 'supervisor',
      CVAT_PASSWORD: 'supervisor-pw',
    });
    expect(run.code, run.logs).toBe(3);
    expect(run.logs).toMatch(/403 .*admin account or an organization owner\/maintainer/);
    expect(run.stdout + run.logs).not.toContain('supervisor-pw');
  });
});

describe('warm against an emulated CVAT 2.14 (task chunk numbers)', () => {
  it('warms every chunk the old UI reads, each shared border chunk once', async () => {
    emulator = await startEmulator({ version: '2.14.4', tasks: deployment(), buildTimeMs: 1 });
    const run = await warmInProcess(['--all', '--state-dir', tmp.path, '--json'], { CVAT_URL: emulator.url, CVAT_API_KEY: 'legacy-key' });
    expect(run.code, run.logs).toBe(0);
    expect(emulator.state.coldUiChunkKeys().size).toBe(0);
    expect(emulator.state.duplicateBuilds()).toEqual([]);
    const result = JSON.parse(run.stdout).result;
    expect(result.warm).toBe(emulator.state.uiChunkKeys().size);
  });
});
