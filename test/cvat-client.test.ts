/** The CVAT client against a real node:http server: auth, orgs, paging, bad answers. */
import { defaultCvatBounds } from '../src/config/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { CvatClient } from '../src/cvat/client.js';
import { WardenError } from '../src/errors.js';
import { clearSecretsForTests } from '../src/secrets.js';
import { sendJson, startServer, type TestServer } from './support/http.js';

let server: TestServer | undefined;
let client: CvatClient | undefined;
afterEach(async () => {
  await client?.close();
  await server?.close();
  client = server = undefined;
  clearSecretsForTests();
});

const TOKEN = 'pat-secret-0123456789';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(WardenError);
    expect((error as Error).message).not.toContain(TOKEN);
    return (error as WardenError).code;
  }
  throw new Error('expected a rejection');
}

describe('CVAT client', () => {
  it('sends each kind of credential as CVAT expects, and the organization on lists', async () => {
    server = await startServer((req, res) => {
      if (req.url?.startsWith('/prefix/api/server/about')) {
        sendJson(res, 200, { name: 'Computer Vision Annotation Tool', version: '2.73.0' });
        return;
      }
      if (req.url?.startsWith('/prefix/api/tasks')) {
        sendJson(res, 200, { count: 0, next: null, previous: null, results: [] });
        return;
      }
      sendJson(res, 404, { detail: 'Not found.' });
    });
    const variants = [
      [{ kind: 'token', token: TOKEN }, `Bearer ${TOKEN}`],
      [{ kind: 'apiKey', key: 'legacy-key-123' }, 'Token legacy-key-123'],
      [{ kind: 'basic', username: 'admin', password: 'pw-123456' }, `Basic ${Buffer.from('admin:pw-123456').toString('base64')}`],
    ] as const;
    for (const [credentials, header] of variants) {
      client = new CvatClient({ ...defaultCvatBounds(), baseUrl: `${server.url}/prefix/`, credentials, organization: 'lab' });
      const features = await client.features();
      expect(features.indexChunks).toBe(true);
      expect(features.rangeRequests).toBe(true);
      for await (const _ of client.tasks()) {
        // drain the iterator
      }
      await client.close();
      const [about, list] = server.requests.slice(-2);
      expect(about!.headers.authorization).toBe(header);
      expect(about!.headers['x-organization']).toBeUndefined();
      expect(list!.headers['x-organization']).toBe('lab');
    }
  });

  it('pages by page number even when CVAT reports another host in next, and skips malformed items with their id', async () => {
    const pages: Record<string, unknown> = {
      '1': {
        count: 3,
        next: 'http://internal-cvat:8080/api/tasks?page=2&page_size=2',
        results: [
          { id: 1, size: 10, data: 1 },
          { id: 2, size: 'ten' },
        ],
      },
      '2': { count: 3, next: null, results: [{ id: 3, size: 5, data: 3 }] },
    };
    server = await startServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      sendJson(res, 200, pages[url.searchParams.get('page') ?? '1']);
    });
    client = new CvatClient({ ...defaultCvatBounds(), baseUrl: server.url, pageSize: 2 });
    const seen = [];
    for await (const item of client.tasks()) seen.push(item.ok ? item.value.id : `bad ${item.id}: ${item.problem}`);
    expect(seen).toEqual([1, expect.stringMatching(/^bad 2: malformed task 2: size/), 3]);
    expect(server.requests.map((r) => new URL(r.url, 'http://x').searchParams.get('page'))).toEqual(['1', '2']);
  });

  it('explains wrong URLs, refused credentials, missing permissions and unreachable servers', async () => {
    server = await startServer((req, res) => {
      if (req.url?.startsWith('/html/')) {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>hello</html>');
        return;
      }
      if (req.url?.startsWith('/denied/')) {
        sendJson(res, 401, { detail: 'Invalid token.' });
        return;
      }
      if (req.url?.startsWith('/forbidden/')) {
        sendJson(res, 403, { detail: 'You do not have permission.' });
        return;
      }
      if (req.url?.startsWith('/old/api/server/about')) {
        sendJson(res, 200, { version: '1.7.0' });
        return;
      }
      sendJson(res, 404, { detail: 'Not found.' });
    });
    const credentials = { kind: 'token', token: TOKEN } as const;
    const make = (path: string) => new CvatClient({ ...defaultCvatBounds(), baseUrl: `${server!.url}${path}`, credentials });
    // An HTML page where /api/server/about should be: not a working CVAT, exit 3 (issue 8).
    expect(await codeOf(make('/html').about())).toBe('CVAT_UNREACHABLE');
    expect(await codeOf(make('/nothing').about())).toBe('CVAT_UNREACHABLE');
    expect(await codeOf(make('/denied').about())).toBe('CVAT_AUTH_REFUSED');
    expect(await codeOf(make('/forbidden').about())).toBe('CVAT_FORBIDDEN');
    expect(await codeOf(make('/old').features())).toBe('CVAT_UNSUPPORTED_VERSION');
    const closedPort = server.url.replace(/:\d+$/, ':1');
    expect(await codeOf(new CvatClient({ ...defaultCvatBounds(), baseUrl: closedPort, credentials }).about())).toBe('CVAT_UNREACHABLE');
    try {
      await make('/denied').about();
    } catch (error) {
      expect((error as Error).message).toMatch(/personal access token was refused/);
    }
  });

  it('rejects base URLs that carry credentials or are not http(s)', () => {
    expect(() => new CvatClient({ ...defaultCvatBounds(), baseUrl: 'https://admin:pw@cvat' })).toThrow(/must not contain credentials/);
    expect(() => new CvatClient({ ...defaultCvatBounds(), baseUrl: 'file:///etc/passwd' })).toThrow(/http or https/);
    expect(() => new CvatClient({ ...defaultCvatBounds(), baseUrl: 'not a url' })).toThrow(/not a valid URL/);
  });
});
