/**
 * The container's HEALTHCHECK (Dockerfile): asks /healthz of the service on the address
 * it listens on — CVAT_WARDEN_LISTEN, or --listen's default — so the check follows a
 * changed listen address (0.0.0.0 and :: are asked on loopback). Exit 0 when it answers
 * 200 within the time limit, 1 otherwise. A file of its own, not a CLI command: it loads
 * nothing but this, so a check every 30 s costs one short node start.
 */
import { serviceUrl } from './commands/service-client.js';
import { parseListen } from './config/index.js';
import { defaultLabel, optionSpec } from './config/options.js';

const TIMEOUT_MS = 4_000;

export async function healthcheck(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const listen = parseListen(env['CVAT_WARDEN_LISTEN'] ?? defaultLabel(optionSpec('listen')) ?? '');
  const base = listen.valid ? serviceUrl(listen) : undefined;
  if (!base) {
    process.stderr.write(`healthcheck: CVAT_WARDEN_LISTEN is not host:port\n`);
    return 1;
  }
  try {
    const response = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
    await response.body?.cancel();
    if (response.status === 200) return 0;
    process.stderr.write(`healthcheck: ${base}/healthz answered ${response.status}\n`);
  } catch (error) {
    process.stderr.write(`healthcheck: ${base}/healthz: ${(error as Error).message}\n`);
  }
  return 1;
}

process.exitCode = await healthcheck();
