/** Small answer helpers shared by the daemon's HTTP modules. */
import type { ServerResponse } from 'node:http';
import { describeError } from '../errors.js';

/** The request path without its query, and without a trailing slash (except for "/"). */
export function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** JSON.stringify replacer for /status: Maps, Sets, bigints and errors as plain JSON. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  if (value instanceof Error) return describeError(value);
  return value;
}

export function sendBody(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

export function sendText(res: ServerResponse, status: number, body: string): void {
  sendBody(res, status, 'application/json; charset=utf-8', body);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendText(res, status, JSON.stringify(body));
}
