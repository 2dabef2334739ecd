/**
 * The two parts of undici the client uses, its Agent and `request`, loaded from their own
 * modules instead of undici's index, which loads fetch, WebSocket, the cache stores, the
 * mocks and, through them, Node's own copy of undici as well: 165 ms of every CLI start
 * against 46 ms for these two (measured on a 2-vCPU VM; a CLI command is ~0.45 s of CPU
 * before it does anything). undici has no `exports` map, so the paths are reachable;
 * test/cvat-undici-parts.test.ts holds them to the index's own exports and fails on an
 * undici release that moves them.
 */
import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';

const requireUndici = createRequire(import.meta.url);

/** Where the parts live in the undici package (the test loads them from here too). */
export const UNDICI_PARTS = { agent: 'undici/lib/dispatcher/agent.js', api: 'undici/lib/api/index.js' } as const;

/** undici's Agent (the class the index exports as `Agent`). */
export const Agent = requireUndici(UNDICI_PARTS.agent) as typeof UndiciAgent;

type RequestMethod = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
const api = requireUndici(UNDICI_PARTS.api) as { request: RequestMethod };

/** What `undici.request(url, { dispatcher, … })` does for a URL: the origin and path split as its index splits them. */
export function request(url: URL, options: { dispatcher: Dispatcher } & Omit<Dispatcher.RequestOptions, 'origin' | 'path'>): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  return api.request.call(dispatcher, { ...rest, origin: url.origin, path: url.search ? `${url.pathname}${url.search}` : url.pathname });
}
