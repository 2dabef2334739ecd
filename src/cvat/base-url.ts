/**
 * The CVAT base URL as configured: validated and normalised without loading the HTTP
 * client (undici, zod), so config errors and `--help` stay fast.
 */

/** `user:password@` in anything URL-like, so an unparseable URL is never echoed with its password. */
export function withoutUserInfo(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/?#@\s]*@/i, (_m, scheme: string | undefined) => `${scheme ?? ''}[REDACTED]@`);
}

/** Normalises and validates a CVAT base URL; returns problems instead of throwing. */
export function parseBaseUrl(input: string): { url?: URL; problem?: string } {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    const shown = withoutUserInfo(input.length > 200 ? `${input.slice(0, 200)}…` : input);
    return { problem: `CVAT URL "${shown}" is not a valid URL (expected e.g. https://cvat.example.com)` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { problem: `CVAT URL must use http or https, got "${url.protocol}"` };
  }
  if (url.username || url.password) {
    return { problem: 'CVAT URL must not contain credentials; use CVAT_USERNAME/CVAT_PASSWORD or a token instead' };
  }
  if (url.search || url.hash) return { problem: 'CVAT URL must not contain a query string or fragment' };
  // Accept ".../api" as typed by people copying from the browser; the client adds it itself.
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/api$/, '');
  return { url };
}
