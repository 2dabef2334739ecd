import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServerHandle, type HttpServerOptions, type ReadinessReport } from '../src/daemon/http.js';
import { signBody, type WebhookEvent } from '../src/daemon/webhook.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { clearSecretsForTests, registerSecret } from '../src/secrets.js';
import { pythonJsonDumps } from './support/daemon-python-json.js';
import { waitFor } from './support/wait.js';

const SECRET = 'webhook-secret-for-tests-7d2e';
const FIXTURES = resolve(import.meta.dirname, 'fixtures');

const agent = new Agent({ keepAliveTimeout: 200, keepAliveMaxTimeout: 200 });
afterAll(() => agent.close());

interface Harness {
  server: HttpServerHandle;
  events: WebhookEvent[];
  logs: string[];
  metrics: ReturnType<typeof createMetrics>;
  ready: { value: ReadinessReport | Error };
}

const open: HttpServerHandle[] = [];
afterEach(async () => {
  clearSecretsForTests();
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function start(
  overrides: Partial<HttpServerOptions> & { onEvent?: (e: WebhookEvent) => void | Promise<void>; noWebhook?: boolean; secret?: string } = {},
): Promise<Harness> {
  const events: WebhookEvent[] = [];
  const logs: string[] = [];
  const metrics = createMetrics({ buildInfo: { version: '0.0.0-test' } });
  const ready: Harness['ready'] = { value: { ready: true, checks: { cvat: { ok: true }, ledger: { ok: true } } } };
  const secret = overrides.secret ?? SECRET;
  const { onEvent, noWebhook, ...rest } = overrides;
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } }),
    registry: metrics.registry,
    metrics,
    health: () => {
      if (ready.value instanceof Error) throw ready.value;
      return ready.value;
    },
    status: () => ({ uptimeSeconds: 1 }),
    ...(noWebhook ? {} : { webhook: { secret, onEvent: onEvent ?? ((e) => void events.push(e)) } }),
    ...rest,
  });
  open.push(server);
  return { server, events, logs, metrics, ready };
}

async function get(url: string, method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' = 'GET') {
  const res = await request(url, { method, dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

async function post(url: string, body: Buffer | string, headers: Record<string, string> = {}) {
  const res = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers }, dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, text };
}

function signed(payload: unknown): { body: Buffer; headers: Record<string, string> } {
  const body = Buffer.from(pythonJsonDumps(payload));
  return { body, headers: { 'x-signature-256': signBody(body, SECRET) } };
}

/**
 * The barrier before "no event was handed on": accepted events reach onEvent in arrival
 * order (one setImmediate each), so once a ping sent afterwards is in, an earlier
 * delivery's event would be in too. Returns the events other than the ping.
 */
async function eventsBeforePing(h: Harness): Promise<WebhookEvent[]> {
  const ping = signed({ event: 'ping', webhook: { id: 6 } });
  expect((await post(`${h.server.url}/webhooks/cvat`, ping.body, ping.headers)).status).toBe(200);
  await waitFor('the barrier ping handed on', () => h.events.some((e) => e.kind === 'ping'));
  return h.events.filter((e) => e.kind !== 'ping');
}

async function deliveries(h: Harness, outcome: string): Promise<number> {
  const metric = await h.metrics.webhookDeliveries.get();
  return metric.values.find((v) => v.labels.outcome === outcome)?.value ?? NaN;
}

const updateJob = {
  event: 'update:job',
  job: { id: 65, task_id: 36, updated_date: '2026-05-11T17:25:43.641000Z', state: 'in progress' },
  webhook_id: 6,
  sender: { id: 3, username: 'user2' },
};

describe('operational endpoints', () => {
  it('serves Prometheus text from the given registry', async () => {
    const h = await start();
    const res = await get(`${h.server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(h.metrics.registry.contentType);
    expect(res.text).toContain('cvat_warden_build_info{version="0.0.0-test"');
    expect(res.text).toContain('cvat_warden_webhook_deliveries_total{outcome="accepted"} 0');
    expect(res.text).toContain('cvat_warden_webhook_deliveries_total{outcome="rejected_size"} 0');
  });

  it('/healthz answers 200 while alive, also for HEAD', async () => {
    const h = await start();
    expect(await get(`${h.server.url}/healthz`)).toMatchObject({ status: 200, text: '{"status":"ok"}' });
    expect((await get(`${h.server.url}/healthz`, 'HEAD')).status).toBe(200);
    expect((await get(`${h.server.url}/healthz?probe=k8s`)).status).toBe(200);
  });

  it('/readyz follows the health report: 200, 503, 503 when it throws, 503 after stopAccepting', async () => {
    const h = await start();
    let res = await get(`${h.server.url}/readyz`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ ready: true, checks: { cvat: { ok: true }, ledger: { ok: true } } });

    h.ready.value = { ready: false, checks: { cvat: { ok: false, detail: 'CVAT unreachable' }, ledger: { ok: true } } };
    res = await get(`${h.server.url}/readyz`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.text).checks.cvat).toEqual({ ok: false, detail: 'CVAT unreachable' });

    h.ready.value = new Error('health exploded');
    res = await get(`${h.server.url}/readyz`);
    expect(res.status).toBe(503);
    expect(res.text).toContain('health exploded');

    h.ready.value = { ready: true, checks: {} };
    h.server.stopAccepting();
    res = await get(`${h.server.url}/readyz`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.text).checks.shutdown).toEqual({ ok: false, detail: 'shutting down' });
    expect((await get(`${h.server.url}/healthz`)).status).toBe(200);
  });

  it('/status never shows a registered secret', async () => {
    registerSecret('tok-9f8e7d6c5b4a');
    const h = await start({
      status: () => ({
        cvat: { url: 'https://cvat.example', token: 'tok-9f8e7d6c5b4a' },
        note: 'header was Bearer tok-9f8e7d6c5b4a',
        big: 12n,
        tasks: new Set([1, 2]),
      }),
    });
    const res = await get(`${h.server.url}/status`);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('tok-9f8e7d6c5b4a');
    const json = JSON.parse(res.text);
    expect(json.cvat).toEqual({ url: 'https://cvat.example', token: '[REDACTED]' });
    expect(json.note).toBe('header was Bearer [REDACTED]');
    expect(json.big).toBe('12');
    expect(json.tasks).toEqual([1, 2]);
  });

  it('answers 500 when /status fails, and keeps serving', async () => {
    const h = await start({
      status: () => {
        throw new Error('boom');
      },
    });
    expect((await get(`${h.server.url}/status`)).status).toBe(500);
    expect((await get(`${h.server.url}/healthz`)).status).toBe(200);
  });

  it('GET / answers a short plain page naming the endpoints', async () => {
    const h = await start();
    const res = await get(`${h.server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    for (const path of ['/metrics', '/status', '/healthz', '/readyz']) expect(res.text).toContain(path);
    expect(res.text.split('\n').length).toBeLessThan(15);
  });

  it('404 for unknown paths, 405 with Allow for wrong methods', async () => {
    const h = await start();
    expect((await get(`${h.server.url}/nothing-here`)).status).toBe(404);
    expect((await get(`${h.server.url}/metricsx`)).status).toBe(404);
    const wrong = await get(`${h.server.url}/metrics`, 'POST');
    expect(wrong.status).toBe(405);
    expect(wrong.headers['allow']).toBe('GET, HEAD');
    const hook = await get(`${h.server.url}/webhooks/cvat`, 'GET');
    expect(hook.status).toBe(405);
    expect(hook.headers['allow']).toBe('POST');
  });

  it('has no webhook route without a webhook configuration', async () => {
    const h = await start({ noWebhook: true });
    const { body, headers } = signed(updateJob);
    expect((await post(`${h.server.url}/webhooks/cvat`, body, headers)).status).toBe(404);
  });

  it('close() is idempotent and stops the server', async () => {
    const h = await start();
    const url = h.server.url;
    await Promise.all([h.server.close(), h.server.close()]);
    await h.server.close();
    await expect(request(`${url}/healthz`, { dispatcher: new Agent() })).rejects.toThrow();
  });

  it('reports a busy port as a configuration problem', async () => {
    const h = await start();
    await expect(
      startHttpServer({
        host: '127.0.0.1',
        port: h.server.port,
        logger: createLogger({ level: 'silent' }),
        registry: h.metrics.registry,
        health: () => ({ ready: true, checks: {} }),
        status: () => ({}),
      }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

describe('POST /webhooks/cvat', () => {
  it('accepts a signed delivery and hands the event on once', async () => {
    const h = await start();
    const { body, headers } = signed(updateJob);
    const res = await post(`${h.server.url}/webhooks/cvat`, body, headers);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ status: 'accepted' });
    await waitFor('one event', () => h.events.length === 1, { timeoutMs: 2_000, intervalMs: 5 });
    expect(h.events[0]).toMatchObject({ kind: 'job_changed', taskId: 36, jobId: 65, webhookId: 6 });
    expect(await deliveries(h, 'accepted')).toBe(1);
  });

  it('answers a duplicate (CVAT retry) with 200 without handing it on again', async () => {
    const h = await start();
    const { body, headers } = signed(updateJob);
    expect((await post(`${h.server.url}/webhooks/cvat`, body, headers)).status).toBe(200);
    const again = await post(`${h.server.url}/webhooks/cvat`, body, headers);
    expect(again.status).toBe(200);
    expect(JSON.parse(again.text)).toEqual({ status: 'duplicate' });
    expect(await eventsBeforePing(h)).toHaveLength(1);
    expect(await deliveries(h, 'duplicate')).toBe(1);
  });

  it('rejects a wrong signature with 401 and never calls onEvent', async () => {
    const h = await start();
    const { body } = signed(updateJob);
    const res = await post(`${h.server.url}/webhooks/cvat`, body, { 'x-signature-256': signBody(body, 'not-the-secret') });
    expect(res.status).toBe(401);
    expect(await eventsBeforePing(h)).toEqual([]);
    expect(await deliveries(h, 'rejected_signature')).toBe(1);
  });

  it('a flood of forged deliveries is counted in full but logged at warn once a minute at most', async () => {
    const h = await start();
    const { body } = signed(updateJob);
    for (let i = 0; i < 50; i++)
      expect((await post(`${h.server.url}/webhooks/cvat`, body, { 'x-signature-256': signBody(body, `forged-${i}`) })).status).toBe(401);
    expect(await deliveries(h, 'rejected_signature')).toBe(50);
    const warns = h.logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40 && /rejected/.test(l.msg));
    expect(warns).toHaveLength(1);
  });

  it('rejects unsigned deliveries with 401', async () => {
    const h = await start();
    const { body } = signed(updateJob);
    expect((await post(`${h.server.url}/webhooks/cvat`, body)).status).toBe(401);
    expect((await post(`${h.server.url}/webhooks/cvat`, body, { 'x-signature-256': 'sha256=' })).status).toBe(401);
    expect(h.events).toHaveLength(0);
  });

  it('rejects signed malformed JSON with 400', async () => {
    const h = await start();
    const body = Buffer.from('{"event": "update:job", "job": {');
    const res = await post(`${h.server.url}/webhooks/cvat`, body, { 'x-signature-256': signBody(body, SECRET) });
    expect(res.status).toBe(400);
    expect(await deliveries(h, 'rejected_malformed')).toBe(1);
    expect(h.events).toHaveLength(0);
  });

  it('answers 200 to events it does not use and does not hand them on', async () => {
    const h = await start();
    const { body, headers } = signed({ event: 'create:issue', issue: { id: 4, job: 65 }, webhook_id: 6 });
    const res = await post(`${h.server.url}/webhooks/cvat`, body, headers);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ status: 'ignored' });
    expect(await deliveries(h, 'ignored')).toBe(1);
    expect(h.events).toHaveLength(0);
  });

  it('verifies over the raw bytes: a Python-serialised body passes, its JSON.stringify twin does not', async () => {
    const golden = JSON.parse(readFileSync(resolve(FIXTURES, 'daemon-webhook-update-task.signature.json'), 'utf8')) as { secret: string; signature: string };
    const raw = readFileSync(resolve(FIXTURES, 'daemon-webhook-update-task.body'));
    const h = await start({ secret: golden.secret });
    const twin = Buffer.from(JSON.stringify(JSON.parse(raw.toString('utf8'))));
    expect((await post(`${h.server.url}/webhooks/cvat`, twin, { 'x-signature-256': golden.signature })).status).toBe(401);
    const res = await post(`${h.server.url}/webhooks/cvat`, raw, { 'x-signature-256': golden.signature });
    expect(res.status).toBe(200);
    await waitFor('one event', () => h.events.length === 1, { timeoutMs: 2_000, intervalMs: 5 });
    expect(h.events[0]).toMatchObject({ kind: 'task_ready', taskId: 36, source: 'task_update' });
  });

  it('rejects a 2 MiB body with 413 (declared or streamed) and stays healthy', async () => {
    const h = await start();
    const big = Buffer.alloc(2 * 1024 * 1024, 0x20);
    const declared = await post(`${h.server.url}/webhooks/cvat`, big, { 'x-signature-256': signBody(big, SECRET) });
    expect(declared.status).toBe(413);

    // No Content-Length: the server has to count while reading.
    const streamed = await request(`${h.server.url}/webhooks/cvat`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', 'x-signature-256': signBody(big, SECRET) },
      body: Readable.from(
        (function* () {
          for (let i = 0; i < 32; i++) yield big.subarray(i * 65_536, (i + 1) * 65_536);
        })(),
      ),
    });
    expect(streamed.statusCode).toBe(413);
    await streamed.body.dump();
    expect(await deliveries(h, 'rejected_size')).toBe(2);
    expect(h.events).toHaveLength(0);

    expect((await get(`${h.server.url}/healthz`)).status).toBe(200);
    const { body, headers } = signed(updateJob);
    expect((await post(`${h.server.url}/webhooks/cvat`, body, headers)).status).toBe(200);
  });

  it('bounds the bytes all bodies being read hold together: 503 past it (CVAT retries), 200 again once read', async () => {
    const h = await start({ webhook: { secret: SECRET, onEvent: () => undefined, maxBufferedBytes: 10_000 } });
    /** A signed update:job of exactly `bytes` bytes (each with its own date, so none is a duplicate). */
    const padded = (bytes: number, date: string) => {
      const head = pythonJsonDumps({ ...updateJob, job: { ...updateJob.job, updated_date: date }, pad: '' }).slice(0, -2);
      const body = Buffer.from(`${head}${'x'.repeat(bytes - head.length - 2)}"}`);
      return { body, headers: { 'x-signature-256': signBody(body, SECRET) } };
    };
    // A slow sender: 6,000 of its 8,000 bytes arrive, then it pauses.
    const slow = padded(8_000, '2026-05-11T17:25:43.000000Z');
    const socket = connect(h.server.port, '127.0.0.1');
    const answer = new Promise<string>((resolveAnswer, reject) => {
      let text = '';
      socket.on('data', (d) => {
        text += d.toString('latin1');
        if (text.includes('\r\n\r\n{')) resolveAnswer(text);
      });
      socket.on('error', reject);
    });
    socket.write(
      `POST /webhooks/cvat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${slow.body.length}\r\nx-signature-256: ${slow.headers['x-signature-256']}\r\n\r\n`,
    );
    socket.write(slow.body.subarray(0, 6_000));
    // Another 8,000 bytes do not fit beside those 6,000: refused for now, not read.
    const other = padded(8_000, '2026-05-11T17:25:44.000000Z');
    const refused = await waitFor('a 503 while the slow body holds its bytes', async () => {
      const res = await post(`${h.server.url}/webhooks/cvat`, other.body, other.headers);
      return res.status === 503 ? res : undefined;
    });
    expect(JSON.parse(refused.text)).toEqual({ error: 'too many webhook bodies at once; retry later' });
    expect(await deliveries(h, 'rejected_busy')).toBeGreaterThanOrEqual(1);
    expect((await get(`${h.server.url}/healthz`)).status).toBe(200);
    // The slow body completes and is accepted; its bytes are given back.
    socket.write(slow.body.subarray(6_000));
    expect(await answer).toMatch(/^HTTP\/1\.1 200 /);
    socket.destroy();
    expect((await post(`${h.server.url}/webhooks/cvat`, other.body, other.headers)).status).toBe(200);
    expect(await deliveries(h, 'accepted')).toBe(2);
  });

  it('refuses an oversized body before it is sent when the client asks Expect: 100-continue', async () => {
    const h = await start();
    const socket = connect(h.server.port, '127.0.0.1');
    const answer = await new Promise<string>((resolveAnswer, reject) => {
      let text = '';
      socket.on('data', (d) => (text += d.toString('latin1')));
      socket.on('close', () => resolveAnswer(text));
      socket.on('error', reject);
      socket.write(
        `POST /webhooks/cvat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${4 * 1024 * 1024}\r\nexpect: 100-continue\r\n\r\n`,
      );
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).not.toContain('100 Continue');
  });

  it('answers before onEvent finishes, however long it takes, and survives a throwing onEvent', async () => {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const h = await start({
      onEvent: async (e) => {
        calls++;
        if (e.kind === 'ping') throw new Error('handler bug');
        await gate;
      },
    });
    const { body, headers } = signed(updateJob);
    // The handler is still waiting on the gate when the answer arrives.
    expect((await post(`${h.server.url}/webhooks/cvat`, body, headers)).status).toBe(200);
    await waitFor('handler called', () => calls === 1, { timeoutMs: 2_000, intervalMs: 5 });
    release();

    const ping = signed({ event: 'ping', webhook: { id: 6 } });
    expect((await post(`${h.server.url}/webhooks/cvat`, ping.body, ping.headers)).status).toBe(200);
    await waitFor('two calls', () => calls === 2, { timeoutMs: 2_000, intervalMs: 5 });
    await waitFor('handler failure logged', () => h.logs.some((l) => l.includes('webhook event handler failed')), { timeoutMs: 2_000, intervalMs: 5 });
    expect((await get(`${h.server.url}/healthz`)).status).toBe(200);
  });

  it('answers 503 after stopAccepting (CVAT retries later)', async () => {
    const h = await start();
    h.server.stopAccepting();
    const { body, headers } = signed(updateJob);
    expect((await post(`${h.server.url}/webhooks/cvat`, body, headers)).status).toBe(503);
    expect(h.events).toHaveLength(0);
  });

  it('never logs the secret or the signature', async () => {
    const h = await start();
    const { body, headers } = signed(updateJob);
    await post(`${h.server.url}/webhooks/cvat`, body, headers);
    await post(`${h.server.url}/webhooks/cvat`, body, headers);
    await post(`${h.server.url}/webhooks/cvat`, body, { 'x-signature-256': signBody(body, 'wrong-secret-123') });
    await post(`${h.server.url}/webhooks/cvat`, Buffer.from('nope'), { 'x-signature-256': signBody('nope', SECRET) });
    const text = h.logs.join('');
    expect(h.logs.length).toBeGreaterThan(3);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(headers['x-signature-256']!.slice(7));
    expect(text).not.toContain(signBody(body, 'wrong-secret-123').slice(7));
    expect(text).not.toMatch(/sha256=[0-9a-f]/i);
  });
});

describe('slow clients', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await start({ timeouts: { headersMs: 300, requestMs: 600 } });
  });

  /** Sends `head` at once, then `filler` every 100 ms until the server hangs up. */
  const slowSocket = (head: string, filler: string) =>
    new Promise<{ text: string }>((resolveRun, reject) => {
      const socket = connect(h.server.port, '127.0.0.1');
      let text = '';
      socket.on('data', (d) => (text += d.toString('latin1')));
      socket.on('close', () => resolveRun({ text }));
      socket.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolveRun({ text }) : reject(e)));
      socket.write(head);
      const drip = setInterval(() => {
        if (socket.destroyed) {
          clearInterval(drip);
          return;
        }
        socket.write(filler);
      }, 100);
      socket.on('close', () => clearInterval(drip));
    });

  it('drops a client that never finishes its headers (slowloris)', async () => {
    // The client keeps dripping forever: that the socket closed at all is the server hanging up.
    const { text } = await slowSocket('GET /metrics HTTP/1.1\r\n', 'x-a: 1\r\n');
    expect(text).toMatch(/^(HTTP\/1\.1 408 |$)/);
    expect((await get(`${h.server.url}/healthz`)).status).toBe(200);
  });

  it('drops a client that never finishes its body', async () => {
    await slowSocket('POST /webhooks/cvat HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\nx-signature-256: sha256=00\r\n\r\n{', ' ');
    expect((await get(`${h.server.url}/healthz`)).status).toBe(200);
  });
});
