/**
 * Store URLs (`redis://user:password@host:6666/0`, `postgres://root@cvat_db/cvat`) carry
 * passwords: each password (raw and percent-decoded) is registered for redaction the moment
 * the URL is read, and everything the warden shows names a store by its `safeLabel`
 * (scheme, host, port, path — never the user info).
 */
import { registerSecret } from '../secrets.js';

export interface StoreUrl {
  url: URL;
  /** `redis://host:6666/0`: what logs, /status, metrics and doctor show. */
  safeLabel: string;
}

const SCHEMES: Record<'redis' | 'postgres', readonly string[]> = {
  redis: ['redis:', 'rediss:'],
  postgres: ['postgres:', 'postgresql:'],
};

/** Parses a store URL or says what is wrong with it (without echoing it: it may hold a password). */
export function parseStoreUrl(text: string, kind: 'redis' | 'postgres', what: string): StoreUrl | { problem: string } {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return {
      problem: `${what} is not a URL (expected ${kind === 'redis' ? 'redis://[:password@]host:port[/db]' : 'postgres://user[:password]@host[:port]/database'})`,
    };
  }
  if (url.password) {
    registerSecret(url.password);
    try {
      registerSecret(decodeURIComponent(url.password));
    } catch {
      // a malformed escape: the raw form is registered
    }
  }
  if (!SCHEMES[kind].includes(url.protocol)) return { problem: `${what} must start with ${SCHEMES[kind].join('// or ')}//, got ${url.protocol}//…` };
  if (!url.hostname) return { problem: `${what} names no host` };
  return { url, safeLabel: safeLabel(url) };
}

export function safeLabel(url: URL): string {
  const port = url.port ? `:${url.port}` : '';
  return `${url.protocol}//${url.hostname}${port}${url.pathname === '/' ? '' : url.pathname}`;
}
