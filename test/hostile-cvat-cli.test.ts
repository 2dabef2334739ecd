/**
 * `cvat-warden warm` (the built CLI, as a process) against a hostile CVAT: every fault
 * of issue 8 ends with a clear error or a skipped job, in bounded time and requests,
 * and the token is in no output. Deadlines are shortened by option so the suite stays
 * fast; test/hostile-defaults.test.ts holds the defaults to the issue's numbers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from './support/cli.js';
import { startHostileCvat, type HostileCvat, type HostileFaults, type HostileOptions } from './support/hostile-cvat.js';
import { useTempDir } from './support/tmp.js';

const TOKEN = 'pat-hostile-5f4e3d2c1b0a9988';
const tmp = useTempDir('hostile-cli-');
let cvat: HostileCvat | undefined;
afterEach(async () => {
  await cvat?.close();
  cvat = undefined;
});

async function warm(faults: HostileFaults, extra: string[] = [], options: HostileOptions = {}): Promise<CliResult> {
  cvat = await startHostileCvat(faults, options);
  const result = await runCli(['warm', '--all', '--url', cvat.url, '--state-dir', tmp.path, ...extra], { CVAT_ACCESS_TOKEN: TOKEN }, { timeoutMs: 60_000 });
  const everything = result.stdout + result.stderr;
  expect(everything).not.toContain(TOKEN);
  // stderr is JSON log lines, plus at most the final one-line error message of the CLI.
  const stray = result.stderr.split('\n').filter((line) => line && !line.startsWith('{') && !line.startsWith('cvat-warden warm:'));
  expect(stray).toEqual([]);
  return result;
}

describe('warm against a hostile CVAT', () => {
  it('gives up on a `next` that never ends after at most 100 pages, with a clear error (defaults)', async () => {
    // count says 20,000 (40 pages of 500) but every page holds one task and links the next.
    const result = await warm({ endlessNext: { count: 20_000, perPage: 1 } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/list \/api\/tasks cannot be trusted and was abandoned: it is still not done after 100 pages/);
    expect(cvat!.counts.list).toBe(100);
  });

  it('stops at `count` when `next` keeps offering pages beyond it', async () => {
    const result = await warm({ endlessNext: { count: 1000, perPage: 500 } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/still offers a next page after 1000 items though it counts 1000/);
    expect(cvat!.counts.list).toBe(2);
  });

  it('refuses a count that needs more pages than the cap before walking them', async () => {
    const result = await warm({ endlessNext: { count: 1_000_000_000, perPage: 1 } }, ['--max-list-pages', '10']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/counts 1000000000 items, 2000000 pages of 500, more than the cap of 10 pages \(--max-list-pages\)/);
    expect(cvat!.counts.list).toBe(1);
  });

  it('detects a `next` that loops back', async () => {
    const result = await warm({ loopingNext: true });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/"next" link on page 2 points back to page 1 \(a loop\)/);
    expect(cvat!.counts.list).toBe(2);
  });

  it('reports a malformed `next` as a bad CVAT answer, not an unexpected error', async () => {
    const result = await warm({ malformedNext: 'http://[::1/api/tasks?page=2&secret=abc' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/"next" link "http:\/\/\[::1\/api\/tasks" is not a URL with a page number/);
    expect(result.stderr).not.toMatch(/unexpected error/i);
    expect(result.stderr).not.toContain('secret=abc');
  });

  it('cuts a dripping /api/server/about at its deadline: exit 3, path and kind named', async () => {
    const result = await warm({ drip: { kinds: ['about'], intervalMs: 200 } }, ['--request-timeout', '1s']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/did not finish answering GET \/api\/server\/about \(about request\) within 1 s, headers and body \(--request-timeout\)/);
  });

  it('cuts a dripping task list at its deadline: exit 3, path and kind named', async () => {
    const result = await warm({ drip: { kinds: ['list'], intervalMs: 200 } }, ['--request-timeout', '1s']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/GET \/api\/tasks \(list request\) within 1 s/);
    expect(result.stderr).not.toMatch(/page_size|page=/);
  });

  it('fails dripping chunks after two deadlines each, with a reason, and ends', async () => {
    // 250 ms deadlines, 4 chunks at once: the mechanism, not the 120 s default (held by the options table)
    const result = await warm({ drip: { kinds: ['chunk'], intervalMs: 3000 } }, ['--chunk-timeout', '250ms', '--concurrency', '4', '--json']);
    expect(result.code).toBe(1);
    const summary = JSON.parse(result.stdout) as { result: { failed: number; failures: Array<{ reason: string }> } };
    expect(summary.result.failed).toBe(4);
    expect(summary.result.failures[0]!.reason).toMatch(/ran into its deadline \(--chunk-timeout\) on 2 attempts/);
    expect(cvat!.counts.chunk).toBe(8);
  });

  it('cuts a 700 MB task list at 64 MiB instead of reading it (defaults)', async () => {
    const result = await warm({ giantPageBytes: 700 * 1024 * 1024 });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/answer to GET \/api\/tasks \(list request\) is larger than 64 MiB/);
    // The client hung up: the server got nowhere near writing 700 MB.
    expect(cvat!.bytesSent()).toBeLessThan(200 * 1024 * 1024);
  });

  it('skips a job claiming 10^9 frames with its id, and plans the rest at once', async () => {
    const result = await warm({ absurdJob: true }, ['--dry-run', '--json']);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { plan: { jobs: number; requests: number }; issues: Array<{ jobId?: number; message: string }> };
    expect(report.plan.jobs).toBe(2);
    expect(report.plan.requests).toBe(4);
    expect(report.issues).toContainEqual(
      expect.objectContaining({
        jobId: 11,
        message: expect.stringMatching(/job 11 of task 1 skipped: it contradicts its task: frames 0–999999999 reach beyond the task's 10 frames/),
      }),
    );
  });

  it('exits 3 with the reason when the token is refused, and never prints it', async () => {
    const result = await warm({ revoked: true });
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/CVAT answered 401 for \/api\/server\/about: the personal access token was refused/);
  });

  it('stops with exit 3 when the token is revoked mid-run (chunks answer 401)', async () => {
    const result = await warm({ revoked: ['chunk'] });
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/CVAT answered 401 for \/api\/jobs\/\d+\/data: the credentials were refused mid-run/);
    expect(cvat!.counts.chunk).toBeLessThanOrEqual(2);
  });

  it('exits 3, not 1, on an HTML 502 page at /api/server/about', async () => {
    const result = await warm({ htmlAbout: 502 });
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/does not answer as a working CVAT: CVAT answered 502 for \/api\/server\/about/);
  });

  it('names the Location of a redirect, without its credentials or query', async () => {
    const result = await warm({ redirectAbout: 'https://user:pw-123456@cvat.example.com/cvat/api/server/about?next=x' });
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      /CVAT answered 301 for \/api\/server\/about: redirected to \\?"https:\/\/\[REDACTED\]@cvat\.example\.com\/cvat\/api\/server\/about\\?"/,
    );
    expect(result.stderr).not.toContain('pw-123456');
  });

  it('keeps the token out of every output when CVAT echoes the Authorization header into its version', async () => {
    const result = await warm({ echoHeaders: true }, ['--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).cvat.version).toMatch(/^2\.73\.0 \(Bearer \[REDACTED\]/);
  });

  it('prints no MaxListenersExceededWarning when many chunks wait out a Retry-After at once', async () => {
    // 16 chunk workers: the warming controller starts with 16 requests in flight, so 16 wait out their Retry-After at once.
    const result = await warm({ retryAfterOnce: '1' }, ['--concurrency', '16', '--chunk-workers', '16'], { tasks: 20 });
    expect(result.code).toBe(0);
    expect(result.stderr).not.toMatch(/MaxListenersExceededWarning/);
    expect(cvat!.counts.chunk).toBe(80);
  });
});
