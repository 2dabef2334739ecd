/**
 * doctor: the running `cvat-warden run` service, asked over its own HTTP endpoints at
 * --listen (CVAT_WARDEN_LISTEN, the address it was started with; 0.0.0.0 → 127.0.0.1).
 * It says whether webhooks are configured and when the last one was accepted, and its
 * counters say how many deliveries were refused. The usual reason none arrives: CVAT
 * sends webhooks through Smokescreen, which refuses private addresses unless
 * SMOKESCREEN_OPTS allows the warden's (installation guide, "Smokescreen"; Helm
 * `smokescreen.opts`).
 */
import { describeError } from '../errors.js';
import type { DoctorAdd } from './doctor.js';

const NAME = 'webhooks';
const TIMEOUT_MS = 3_000;
/** /status is a few hundred KiB at most (its lists are capped); refuse anything far larger. */
const MAX_BYTES = 4 * 1024 * 1024;

interface ServiceStatus {
  webhooks?: { enabled?: boolean; startedAt?: string; lastAcceptedAt?: string | null };
}

async function getText(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  const reader = response.body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BYTES) {
      await reader.cancel();
      throw new Error(`answer larger than ${MAX_BYTES} bytes`);
    }
    parts.push(value);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** The service's base URL for a listen address (a wildcard address is asked on loopback). */
export function serviceUrl(listen: { host: string; port: number }): string | undefined {
  if (!Number.isInteger(listen.port) || listen.port <= 0 || listen.port > 65_535) return undefined;
  const host = listen.host === '0.0.0.0' || listen.host === '' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`;
}

const counter = (metrics: string, outcome: string): number => {
  const match = new RegExp(`^cvat_warden_webhook_deliveries_total\\{outcome="${outcome}"\\} (\\S+)$`, 'm').exec(metrics);
  return match ? Number(match[1]) : 0;
};

export async function checkWebhooks(listen: { host: string; port: number }, add: DoctorAdd): Promise<void> {
  const base = serviceUrl(listen);
  if (!base) {
    add(NAME, 'warn', `cannot tell: CVAT_WARDEN_LISTEN is not host:port`, 'set --listen / CVAT_WARDEN_LISTEN to the address `cvat-warden run` listens on');
    return;
  }
  let status: ServiceStatus;
  let metrics: string;
  try {
    status = JSON.parse(await getText(`${base}/status`)) as ServiceStatus;
    metrics = await getText(`${base}/metrics`).catch(() => '');
  } catch (error) {
    add(
      NAME,
      'warn',
      `no cvat-warden service answered at ${base}/status (${describeError(error)}), so webhook deliveries could not be checked`,
      'run doctor where the service runs (e.g. `docker compose exec cvat_warden node /app/dist/cli.js doctor`), or point --listen at it',
    );
    return;
  }
  const hooks = status.webhooks;
  if (!hooks) {
    add(NAME, 'warn', `the service at ${base} does not report webhooks (an older cvat-warden?)`);
    return;
  }
  if (!hooks.enabled) {
    add(NAME, 'ok', `not configured on the service at ${base}: it polls CVAT for new tasks`);
    return;
  }
  const refused = counter(metrics, 'rejected_signature');
  if (hooks.lastAcceptedAt) {
    add(NAME, 'ok', `last delivery accepted at ${hooks.lastAcceptedAt}${refused ? `; ${refused} refused for a wrong signature` : ''}`);
    return;
  }
  if (refused > 0) {
    add(
      NAME,
      'fail',
      `${refused} webhook deliveries arrived with a wrong signature and none was accepted`,
      'give the webhook in CVAT the same secret as CVAT_WEBHOOK_SECRET / CVAT_WEBHOOK_SECRET_FILE',
    );
    return;
  }
  add(
    NAME,
    'warn',
    `configured, but no delivery has arrived since the service started (${hooks.startedAt ?? '?'})`,
    "press Ping on the webhook in CVAT and look at its deliveries: CVAT sends through Smokescreen, which refuses the warden's private address unless SMOKESCREEN_OPTS (Helm: smokescreen.opts) has --allow-address=<its IP>; personal-sandbox tasks send no webhooks",
  );
}
