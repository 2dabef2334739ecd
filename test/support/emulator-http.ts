/** Tiny HTTP client for emulator tests (undici `request`; bodies fully read). */
import { request } from 'undici';

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  text: string;
  json: () => unknown;
}

export async function http(url: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}): Promise<Reply> {
  const res = await request(url, {
    method: (init.method ?? 'GET') as 'GET',
    headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.headers ?? {}) },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  const text = body.toString('utf8');
  return { status: res.statusCode, headers, body, text, json: (): unknown => JSON.parse(text) };
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<unknown> {
  const r = await http(url, { headers });
  if (r.status !== 200) throw new Error(`GET ${url} → ${r.status}: ${r.text.slice(0, 200)}`);
  return r.json();
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
