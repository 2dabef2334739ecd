/**
 * Asking the running `cvat-warden run` over its own HTTP endpoints, at --listen
 * (CVAT_WARDEN_LISTEN, the address it was started with; a wildcard address is asked on
 * loopback). Every answer is bounded in time and size: whatever listens there may be
 * something else.
 */

/** The service's base URL for a listen address (a wildcard address is asked on loopback). */
export function serviceUrl(listen: { host: string; port: number }): string | undefined {
  if (!Number.isInteger(listen.port) || listen.port <= 0 || listen.port > 65_535) return undefined;
  const host = listen.host === '0.0.0.0' || listen.host === '' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`;
}

export class ServiceAnswerError extends Error {
  override name = 'ServiceAnswerError';
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

/** GET `url` as text: 2xx only, within `timeoutMs` and `maxBytes`, no redirects. The body of a non-2xx answer is its message. */
export async function getServiceText(url: string, limits: { timeoutMs: number; maxBytes: number }): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(limits.timeoutMs), redirect: 'error' });
  const body = response.body ? await readBounded(response.body, limits.maxBytes) : '';
  if (!response.ok) throw new ServiceAnswerError(`HTTP ${response.status}${body ? `: ${body.slice(0, 300)}` : ''}`, response.status);
  return body;
}

async function readBounded(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<string> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new ServiceAnswerError(`answer larger than ${maxBytes} bytes`);
    }
    parts.push(value);
  }
  return Buffer.concat(parts).toString('utf8');
}
