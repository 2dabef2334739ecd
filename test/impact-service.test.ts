/**
 * `cvat-warden impact` beside a running service: the service's guard already holds the
 * share index, so the CLI asks it (GET /impact at --listen) and CVAT only about the tasks
 * in the answer — no task's data meta streamed again (issue 18: "answers in under 2 s once
 * the service's index exists"; the cost is in docs/benchmarks.md). The answer is the same
 * as the one built from CVAT, the route refuses paths that leave the share, and whatever
 * else answers on the port is not believed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../src/emulator/index.js';
import { runCli } from './support/cli.js';
import { closeAfterEach, startService, type RunningService } from './support/service.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const tmp = useTempDir('warden-impact-service-');
let emulator: Emulator | undefined;
let running: RunningService | undefined;
const servers: Server[] = [];
closeAfterEach(
  () => [running?.service, emulator, ...servers.map((s) => ({ close: () => new Promise<void>((r) => s.close(() => r())) }))],
  () => {
    running = undefined;
    emulator = undefined;
    servers.length = 0;
  },
);

/** A real HTTP proxy to CVAT that counts what the CLI asks for, by kind. */
async function countingProxy(target: string): Promise<{ url: string; counts: Map<string, number> }> {
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const kind = /^\/api\/tasks\/\d+\/data\/meta/.test(url) ? 'task meta' : /^\/api\/jobs/.test(url) ? 'jobs' : /^\/api\/tasks/.test(url) ? 'tasks' : 'other';
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'host' && k !== 'connection')) as Record<string, string>;
    void fetch(`${target}${url}`, { method: req.method ?? 'GET', headers, redirect: 'manual' }).then(
      async (answer) => {
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
        res.end(Buffer.from(await answer.arrayBuffer()));
      },
      () => res.writeHead(502).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, counts };
}

interface ImpactJson {
  answeredBy: 'service' | 'cvat';
  files: number;
  tasks: Array<{
    taskId: number;
    files: number;
    frames: number;
    sampleFiles: string[];
    expiresAt: string;
    jobs: Array<{ jobId: number; state: string; chunks: number[] }>;
  }>;
  blockingTasks: number[];
}
/** Everything but the expiry dates: the service dates chunks from its own ledger, a CLI with another state dir cannot. */
const comparable = (out: ImpactJson) => ({
  files: out.files,
  blockingTasks: out.blockingTasks,
  tasks: out.tasks.map(({ expiresAt: _expiresAt, ...t }) => ({ ...t, jobs: t.jobs.map((j) => ({ jobId: j.jobId, state: j.state, chunks: j.chunks })) })),
});

it('answers from the running service’s index, the same as from CVAT, asking CVAT only about the tasks it names', async () => {
  const share = join(tmp.path, 'share');
  await prepareDemoShare(share);
  emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
  const env = { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken };
  running = await startService(['--share-dir', share, '--state-dir', join(tmp.path, 'state')], env);
  const service = running;
  const listen = new URL(service.url).host;
  await waitFor('the first discovery', async () => ((await (await fetch(`${service.url}/status`)).json()) as { discovery: { done: boolean } }).discovery.done);

  // The route checks its query like a typed path.
  for (const bad of ['path=..%2Fetc%2Fpasswd', 'path=%2Fetc%2Fpasswd', '', 'task=x'])
    expect((await fetch(`${service.url}/impact?${bad}`)).status, bad).toBe(400);

  // The service warms the demo tasks: its answer dates their cached chunks from its own ledger.
  await waitFor('the demo tasks warmed', async () => ((await service.metric('cvat_warden_chunks{state="warm"}')) ?? 0) > 0);
  const proxy = await countingProxy(emulator.url);
  const viaService = await runCli(['impact', 'images', '--share-dir', share, '--json', '--listen', listen], {
    ...env,
    CVAT_URL: proxy.url,
    CVAT_WARDEN_STATE_DIR: join(tmp.path, 'cli-state'),
  });
  expect(viaService.code, viaService.stderr).toBe(1);
  const fromService = JSON.parse(viaService.stdout) as ImpactJson;
  expect(fromService.answeredBy).toBe('service');
  expect(fromService.tasks.map((t) => t.taskId)).toEqual([1, 2]);
  // Nothing streamed again: no task's data meta, only the two tasks and their jobs.
  expect(proxy.counts.get('task meta') ?? 0).toBe(0);

  // Without a service on --listen: the same answer, built from every task's data in CVAT.
  const viaCvat = await runCli(['impact', 'images', '--share-dir', share, '--json', '--listen', '127.0.0.1:1'], {
    ...env,
    CVAT_WARDEN_STATE_DIR: join(tmp.path, 'cli-state'),
  });
  expect(viaCvat.code, viaCvat.stderr).toBe(1);
  const fromCvat = JSON.parse(viaCvat.stdout) as ImpactJson;
  expect(fromCvat.answeredBy).toBe('cvat');
  expect(comparable(fromService)).toEqual(comparable(fromCvat));
  // Expiry: the service's ledger knows it; a CLI with another state dir does not.
  for (const t of fromService.tasks) expect(t.expiresAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  expect(fromCvat.tasks.map((t) => t.expiresAt)).toEqual(['unknown', 'unknown']);
  expect(viaCvat.stderr).toContain('no running service answered /impact');

  // --task is passed on: only that task.
  const oneTask = await runCli(['impact', '--task', '2', '--share-dir', share, '--json', '--listen', listen], env);
  const one = JSON.parse(oneTask.stdout) as ImpactJson;
  expect([one.answeredBy, one.tasks.map((t) => t.taskId)]).toEqual(['service', [2]]);
});

it('does not believe something else answering on the port, nor a service whose index is not complete', async () => {
  const share = join(tmp.path, 'share');
  await prepareDemoShare(share);
  emulator = await startEmulator({ ...demoDeployment(share), buildTimeMs: 1 });
  const env = { CVAT_URL: emulator.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken, CVAT_WARDEN_STATE_DIR: join(tmp.path, 'state') };
  const impostor = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"files":1,"tasks":[{"taskId":99}]}'));
  await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
  servers.push(impostor);
  const run = await runCli(['impact', 'images', '--share-dir', share, '--json', '--listen', `127.0.0.1:${(impostor.address() as AddressInfo).port}`], env);
  expect(run.code, run.stderr).toBe(1);
  const out = JSON.parse(run.stdout) as ImpactJson;
  expect([out.answeredBy, out.tasks.map((t) => t.taskId)]).toEqual(['cvat', [1, 2]]);
  expect(run.stderr).toContain('did not answer /impact as cvat-warden does');
});
