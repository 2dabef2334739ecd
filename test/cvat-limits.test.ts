/**
 * The bounds of src/cvat/limits.ts, paging.ts and the client, and the defaults that
 * issue 8's "done when" asks for: a list walk stops within 60 s at ≤ 100 pages, a
 * dripping list gives up within 150 s, a Retry-After of 99999999 holds a slot minutes,
 * not hours; one abort listener per run however many requests wait.
 */
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, defaultCvatBounds } from '../src/config/index.js';
import { parseBaseUrl } from '../src/cvat/base-url.js';
import { CvatClient } from '../src/cvat/client.js';
import { nextPageNumber } from '../src/cvat/paging.js';
import { WardenError } from '../src/errors.js';
import { safeLabelValue } from '../src/metrics.js';
import { clearSecretsForTests, registerSecret } from '../src/secrets.js';
import { DEFAULT_RETRY_POLICY, judge, type AttemptCounts } from '../src/warm/policy.js';
import { Sleeper } from '../src/warm/sleeper.js';
import { sendJson, startServer, type TestServer } from './support/http.js';
import { startHostileCvat, type HostileCvat } from './support/hostile-cvat.js';
import { waitFor } from './support/wait.js';

let server: TestServer | undefined;
let cvat: HostileCvat | undefined;
let client: CvatClient | undefined;
afterEach(async () => {
  await client?.close();
  await server?.close();
  await cvat?.close();
  client = server = cvat = undefined;
  clearSecretsForTests();
});

async function failure(promise: Promise<unknown>): Promise<WardenError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(WardenError);
    return error as WardenError;
  }
  throw new Error('expected a rejection');
}

describe('defaults meet issue 8', () => {
  it('the configured defaults are the client defaults, and bound a hostile list walk', () => {
    const config = loadConfig('warm', ['--all', '--url', 'http://cvat.example'], { CVAT_ACCESS_TOKEN: 'pat-0123456789' });
    expect(config.cvat).toMatchObject(defaultCvatBounds());
    // Endless next: at most 100 pages. A dripping list: one request, cut at its deadline (lists are not retried).
    expect(config.cvat.maxPages).toBeLessThanOrEqual(100);
    expect(config.cvat.limits.list.deadlineMs).toBeLessThanOrEqual(150_000);
    expect(config.cvat.limits.about.deadlineMs).toBeLessThanOrEqual(30_000);
    // A chunk request leaves room for CVAT's own 50 s build wait (CVAT_CHUNK_CREATE_TIMEOUT) plus transfer.
    expect(config.cvat.limits.chunk.deadlineMs).toBeGreaterThanOrEqual(100_000);
    expect(config.cvat.limits.list.maxBytes).toBeLessThan(700 * 1024 * 1024);
  });

  it('rejects deadlines, page caps and sizes out of bounds', () => {
    const env = { CVAT_ACCESS_TOKEN: 'pat-0123456789' };
    expect(() =>
      loadConfig(
        'warm',
        ['--all', '--url', 'http://c', '--request-timeout', '0s', '--chunk-timeout', '2h', '--max-list-pages', '0', '--max-response-mib', '99999'],
        env,
      ),
    ).toThrow(
      /request-timeout: expected 100ms to 1h[\s\S]*chunk-timeout: expected 100ms to 1h[\s\S]*max-list-pages: expected 1 to 100000[\s\S]*max-response-mib: expected 1 to 4096/,
    );
  });

  it('holds a slot at most 60 s per Retry-After and 300 s per chunk, whatever the server says', () => {
    const counts: Required<AttemptCounts> = { retryAfter: 0, retryAfterWaitedMs: 0, unavailable: 0, serverError: 0, timeouts: 0 };
    let held = 0;
    for (let attempt = 0; attempt < 100; attempt++) {
      counts.retryAfter++;
      const verdict = judge(429, '99999999', counts, DEFAULT_RETRY_POLICY);
      if (verdict.action !== 'retry') {
        expect(verdict).toMatchObject({ action: 'give_up', state: 'stuck' });
        break;
      }
      expect(verdict.delayMs).toBeLessThanOrEqual(60_000);
      counts.retryAfterWaitedMs += verdict.delayMs;
      held += verdict.delayMs;
    }
    expect(held).toBeLessThanOrEqual(300_000);
    expect(held).toBeGreaterThan(0);
  });
});

describe('client bounds', () => {
  it('cuts a dripping task meta (api request) at its deadline, naming the path without its query', async () => {
    cvat = await startHostileCvat({ drip: { kinds: ['api'], intervalMs: 100 } });
    client = new CvatClient({
      ...defaultCvatBounds(),
      baseUrl: cvat.url,
      limits: { ...defaultCvatBounds().limits, api: { deadlineMs: 300, maxBytes: 1024 * 1024 } },
    });
    // The deadline, not the end of the drip, ended it: the error says which (no wall-clock bound here).
    const error = await failure(client.taskMeta(1));
    expect(error.code).toBe('CVAT_TIMEOUT');
    expect(error.message).toMatch(/GET \/api\/tasks\/1\/data\/meta \(api request\) within 300 ms/);
  });

  it('refuses an answer whose Content-Length is over the cap without reading it', async () => {
    server = await startServer((_req, res) => sendJson(res, 200, { count: 1, next: null, results: ['x'.repeat(5000)] }));
    client = new CvatClient({
      ...defaultCvatBounds(),
      baseUrl: server.url,
      limits: { ...defaultCvatBounds().limits, list: { deadlineMs: 5_000, maxBytes: 1000 } },
    });
    const items: unknown[] = [];
    const error = await failure(
      (async () => {
        for await (const item of client.paginate('/api/tasks')) items.push(item);
      })(),
    );
    expect(items).toEqual([]);
    expect(error.message).toMatch(/answer to GET \/api\/tasks \(list request\) is larger than 1000 bytes/);
  });

  it('reads an answer sent in one piece or in many (split inside a multi-byte character), and caps the pieces together', async () => {
    const meta = { size: 3, start_frame: 0, stop_frame: 2, frames: ['日本.jpg', 'b.jpg', 'c.jpg'].map((name) => ({ name, related_files: 0 })) };
    const bytes = Buffer.from(JSON.stringify(meta), 'utf8');
    const cut = bytes.indexOf(Buffer.from('本', 'utf8')) + 1; // inside the character's three bytes
    let split = false;
    server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (!split) return void res.end(bytes);
      // Pieces apart in time, so they reach the client as separate chunks.
      res.write(bytes.subarray(0, cut));
      setTimeout(() => res.write(bytes.subarray(cut, cut + 10)), 30);
      setTimeout(() => res.end(bytes.subarray(cut + 10)), 60);
    });
    client = new CvatClient({ ...defaultCvatBounds(), baseUrl: server.url });
    expect(await client.taskMeta(1)).toMatchObject({ ok: true, value: meta });
    split = true;
    expect(await client.taskMeta(1)).toMatchObject({ ok: true, value: meta });
    await client.close();

    // Chunked, no Content-Length: only the pieces' sum can go over the cap.
    client = new CvatClient({
      ...defaultCvatBounds(),
      baseUrl: server.url,
      limits: { ...defaultCvatBounds().limits, api: { deadlineMs: 5_000, maxBytes: cut + 5 } },
    });
    expect((await failure(client.taskMeta(1))).message).toMatch(/larger than \d+ bytes/);
  });

  it('puts one abort listener on a caller signal however many requests are in flight, and aborts them all', async () => {
    cvat = await startHostileCvat({ drip: { kinds: ['api'], intervalMs: 1000 } });
    client = new CvatClient({ ...defaultCvatBounds(), baseUrl: cvat.url, connections: 32 });
    const stop = new AbortController();
    const pending = Array.from({ length: 20 }, () =>
      client!.taskMeta(1, stop.signal).then(
        () => 'done',
        (e: unknown) => (e instanceof WardenError ? e.code : 'other'),
      ),
    );
    await waitFor('all 20 requests at the server', () => cvat!.counts.api >= 20);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(1);
    stop.abort();
    expect(new Set(await Promise.all(pending))).toEqual(new Set(['ABORTED']));
  });

  it('Sleeper wakes every pending sleep from one listener', async () => {
    const stop = new AbortController();
    const sleeper = new Sleeper(stop.signal);
    const sleeps = Array.from({ length: 50 }, () => sleeper.sleep(60_000));
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(1);
    stop.abort();
    await Promise.all(sleeps);
    await sleeper.sleep(60_000); // after the stop: at once
  });

  it('close() is memoized and later requests are refused', async () => {
    server = await startServer((_req, res) => sendJson(res, 200, { version: '2.73.0' }));
    client = new CvatClient({ ...defaultCvatBounds(), baseUrl: server.url });
    await client.about();
    const first = client.close();
    expect(client.close()).toBe(first);
    await first;
    expect((await failure(client.about())).code).toBe('ABORTED');
  });
});

describe('messages never echo secrets', () => {
  it('an unparseable --url is shown without its password', () => {
    const { problem } = parseBaseUrl('https://admin:s3cret-pw@cvat example.com');
    expect(problem).toMatch(/not a valid URL/);
    expect(problem).not.toContain('s3cret-pw');
    expect(problem).toContain('[REDACTED]@');
  });

  it('metric label values are scrubbed of secrets and bounded', () => {
    registerSecret('tok-abcdef-123456');
    expect(safeLabelValue('2.73.0 Bearer tok-abcdef-123456 and a very long tail of headers')).toBe('2.73.0_Bearer__REDACTED__and_a_v');
    expect(safeLabelValue('2.73.0')).toBe('2.73.0');
  });

  it('a next link without a page number or with a huge one yields no page', () => {
    expect(nextPageNumber('http://[::1/api/tasks?page=2', 'http://c')).toBeUndefined();
    expect(nextPageNumber('/api/tasks?page=abc', 'http://c')).toBeUndefined();
    expect(nextPageNumber('/api/tasks?page=99999999999', 'http://c')).toBeUndefined();
    expect(nextPageNumber('http://internal:8080/api/tasks?page=3&page_size=500', 'http://c')).toBe(3);
  });
});
