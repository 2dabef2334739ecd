// The client loads undici's Agent and `request` from their own modules, not from undici's
// index (src/cvat/undici-parts.ts). These tests hold the parts to what the index exports,
// so an undici release that moves or changes them fails here, and check that a CLI start
// no longer loads the index.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request, UNDICI_PARTS } from '../src/cvat/undici-parts.js';
import { startServer, type TestServer } from './support/http.js';

const requireHere = createRequire(import.meta.url);
let server: TestServer | undefined;
let agent: InstanceType<typeof Agent> | undefined;
afterEach(async () => {
  await agent?.close();
  await server?.close();
  agent = server = undefined;
});

describe('undici parts', () => {
  it('are the Agent and request method undici’s index exports', () => {
    const undici = requireHere('undici') as { Agent: unknown; Dispatcher: { prototype: { request: unknown } } };
    expect(Agent).toBe(undici.Agent);
    // The index puts the api's methods on Dispatcher.prototype: the same function.
    expect((requireHere(UNDICI_PARTS.api) as { request: unknown }).request).toBe(undici.Dispatcher.prototype.request);
  });

  it('request sends the method, path, query and headers of a URL and reads the answer', async () => {
    server = await startServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, auth: req.headers['authorization'] }));
    });
    agent = new Agent({ connections: 1 });
    const url = new URL(`${server.url}/cvat/api/tasks?page=2&name=a%20b`);
    const response = await request(url, { dispatcher: agent, method: 'GET', headers: { authorization: 'Token x' } });
    expect(response.statusCode).toBe(200);
    expect(await response.body.json()).toEqual({ method: 'GET', url: '/cvat/api/tasks?page=2&name=a%20b', auth: 'Token x' });
    const bare = await request(new URL(`${server.url}/api/server/about`), { dispatcher: agent, method: 'GET' });
    expect(((await bare.body.json()) as { url: string }).url).toBe('/api/server/about');
  });

  it('a CLI process that loads the CVAT client does not load undici’s index', async () => {
    const script = [
      "const { createRequire } = await import('node:module');",
      "await import('./dist/cvat/client.js');",
      'const loaded = Object.keys(createRequire(import.meta.url).cache);',
      'console.log(JSON.stringify({ index: loaded.some((k) => /undici[\\\\/]index\\.js$/.test(k)), agent: loaded.some((k) => /undici[\\\\/]lib[\\\\/]dispatcher[\\\\/]agent\\.js$/.test(k)) }));',
    ].join('\n');
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    expect(JSON.parse(stdout)).toEqual({ index: false, agent: true });
  });
});
