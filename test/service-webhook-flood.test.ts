/**
 * A flood of validly signed webhook deliveries against `cvat-warden run` (in-process, real
 * HTTP on port 0) and a counting CVAT: deliveries for distinct tasks cost a few list
 * requests, not a GET each; no task is skipped (past the pending bound a complete listing
 * covers them); a burst for one task is one or two looks; the log carries a few summary
 * lines, not one per delivery; /healthz answers during the flood; CVAT never sees more
 * API requests in flight than --discovery-concurrency.
 */
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { signBody } from '../src/daemon/webhook.js';
import { startCountingCvat, type CountingCvat } from './support/counting-cvat.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const TOKEN = 'pat-flood-3c4d5e6f7a8b';
const SECRET = 'flood-webhook-secret-91ab';
const TASKS = 10_000;
const WITH_DATA = [1, 2, 3, 4, 5];
const DISCOVERY_CONCURRENCY = 3;
const tmp = useTempDir('webhook-flood-');
const agent = new Agent({ connections: 16, keepAliveTimeout: 2_000 });
afterAll(() => agent.close());
let cvat: CountingCvat | undefined;
let running: RunningService | undefined;
closeAfterEach(
  () => [running?.service, cvat],
  () => (running = cvat = undefined),
);

async function start(extra: string[] = [], tasks = TASKS): Promise<RunningService> {
  cvat = await startCountingCvat({ tasks, withData: WITH_DATA });
  running = await startService(
    ['--state-dir', tmp.path, '--poll-interval', '1h', '--discovery-concurrency', String(DISCOVERY_CONCURRENCY), '--webhook-coalesce', '100ms', ...extra],
    { CVAT_URL: cvat.url, CVAT_ACCESS_TOKEN: TOKEN, CVAT_WEBHOOK_SECRET: SECRET },
    // Only the polls webhooks cause, and no periodic complete listing among them.
    { discoveryFullEvery: 1_000_000 },
    'info',
  );
  await waitFor(
    'ready',
    async () => (await request(`${running!.url}/readyz`, { dispatcher: agent }).then((r) => r.body.json().then(() => r.statusCode))) === 200,
    {
      timeoutMs: 20_000,
    },
  );
  return running;
}

let edit = 0;
/** An `update:task` as CVAT sends it; each edit has its own updated_date, so none is a duplicate. */
function delivery(taskId: number): { body: string; signature: string } {
  const date = new Date(Date.parse('2026-06-01T00:00:00Z') + ++edit).toISOString();
  const body = JSON.stringify({ event: 'update:task', task: { id: taskId, updated_date: date }, before_update: { name: 'old' }, webhook_id: 1 });
  return { body, signature: signBody(body, SECRET) };
}

/** Posts one delivery per id, `parallel` at a time over keep-alive; returns the statuses. */
async function flood(url: string, ids: readonly number[], parallel = 16): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const { body, signature } = delivery(ids[next++]!);
      const res = await request(`${url}/webhooks/cvat`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', 'x-signature-256': signature },
        body,
      });
      await res.body.dump();
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return statuses;
}

/** GETs /healthz one after another until `done` settles; returns the statuses seen meanwhile. */
async function probeHealth(url: string, done: Promise<unknown>): Promise<number[]> {
  const seen: number[] = [];
  const state = { over: false };
  void done.finally(() => (state.over = true));
  while (!state.over) {
    const res = await request(`${url}/healthz`, { dispatcher: agent });
    await res.body.dump();
    seen.push(res.statusCode);
  }
  return seen;
}

function logLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const SUMMARY = 'webhook deliveries since the last summary';

describe('a flood of webhook deliveries', () => {
  it('10,000 distinct tasks: a few list requests, every task looked at, a few log lines, /healthz answers throughout', async () => {
    const svc = await start();
    // The first discovery read the five tasks' jobs from the all-jobs listing: no list of its own per task.
    expect(cvat!.jobsOf.size).toBe(0);
    expect(cvat!.counts.get('jobs')).toBe(1);
    const linesBefore = logLines(svc.logs()).length;
    cvat!.reset();
    for (const id of WITH_DATA) cvat!.touch(id); // five tasks really changed; the rest did not
    const ids = Array.from({ length: TASKS }, (_, i) => i + 1);

    const sending = flood(svc.url, ids);
    const health = await probeHealth(svc.url, sending);
    expect(await sending).toEqual(new Map([[200, TASKS]]));
    expect(health.length).toBeGreaterThan(0);
    expect(health.every((status) => status === 200)).toBe(true);

    await waitFor('every task looked at', () => ids.every((id) => cvat!.covered.has(id)) && true, { timeoutMs: 20_000 });
    await waitFor('nothing pending', async () => (await svc.metric('cvat_warden_webhook_pending_tasks')) === 0);
    // The changed tasks were refreshed in depth; the others cost no request of their own.
    await waitFor('changed tasks refreshed', () => WITH_DATA.every((id) => cvat!.jobsOf.has(id)) && true);
    expect(cvat!.counts.get('task') ?? 0).toBe(0);
    expect(cvat!.counts.get('full') ?? 0).toBe(0);
    const requests = cvat!.apiRequests();
    expect(requests).toBeLessThan(TASKS / 10);
    expect(cvat!.peakInFlight()).toBeLessThanOrEqual(DISCOVERY_CONCURRENCY);

    expect(await svc.metric('cvat_warden_webhook_deliveries_total{outcome="accepted"}')).toBe(TASKS);
    expect(await svc.metric('cvat_warden_webhook_overflowed_total')).toBe(0);

    await svc.service.close();
    const during = logLines(svc.logs()).slice(linesBefore);
    const summaries = during.filter((line) => line['msg'] === SUMMARY);
    expect(during.length).toBeLessThanOrEqual(20);
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    expect(summaries.reduce((sum, line) => sum + (line['deliveries'] as number), 0)).toBe(TASKS);
    expect(summaries.reduce((sum, line) => sum + (line['tasksLooked'] as number), 0)).toBe(TASKS);
    expect(svc.logs()).not.toContain(SECRET);
  });

  it('1,000 deliveries for the same task: one or two looks, answered while CVAT is slow', async () => {
    const svc = await start();
    cvat!.reset();
    // CVAT holds its answers: the pass the first deliveries start cannot end before the
    // burst is over, so the burst's rest waits in one entry for exactly one more look.
    const release = cvat!.hold();
    expect(
      await flood(
        svc.url,
        Array.from({ length: 1_000 }, () => 3),
      ),
    ).toEqual(new Map([[200, 1_000]]));
    release();
    await waitFor('task 3 looked at', () => cvat!.idsLookedUp.has(3));
    await waitFor('nothing pending', async () => (await svc.metric('cvat_warden_webhook_pending_tasks')) === 0);
    expect(cvat!.idsLookedUp.get(3)).toBeGreaterThanOrEqual(1);
    expect(cvat!.idsLookedUp.get(3)).toBeLessThanOrEqual(2);
    expect(await svc.metric('cvat_warden_webhook_deliveries_total{outcome="accepted"}')).toBe(1_000);
    expect(await svc.metric('cvat_warden_webhook_coalesced_total')).toBeGreaterThanOrEqual(998);
  });

  it('past --webhook-max-pending: a complete listing covers the overflow, counted, and no task is lost', async () => {
    // 2,000 tasks: a complete listing is 4 pages.
    const svc = await start(['--webhook-max-pending', '100'], 2_000);
    cvat!.reset();
    const ids = Array.from({ length: 2_000 }, (_, i) => i + 1);
    expect(await flood(svc.url, ids)).toEqual(new Map([[200, ids.length]]));
    await waitFor('a complete listing', () => (cvat!.counts.get('full') ?? 0) > 0);
    await waitFor('every task looked at', () => ids.every((id) => cvat!.covered.has(id)) && true);
    await waitFor('nothing pending', async () => (await svc.metric('cvat_warden_webhook_pending_tasks')) === 0);
    expect(await svc.metric('cvat_warden_webhook_overflowed_total')).toBeGreaterThan(0);
    const status = (await (await fetch(`${svc.url}/status`)).json()) as { webhooks: { pendingTasks: number; pendingLimit: number } };
    expect(status.webhooks).toMatchObject({ pendingTasks: 0, pendingLimit: 100 });
    // Never more than the bound listed by id in one pass, and far fewer requests than deliveries.
    expect(cvat!.apiRequests()).toBeLessThan(ids.length / 5);
    expect(cvat!.peakInFlight()).toBeLessThanOrEqual(DISCOVERY_CONCURRENCY);
  });
});
