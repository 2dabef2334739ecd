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
import { getServiceText, serviceUrl } from './service-client.js';

const NAME = 'webhooks';
const TIMEOUT_MS = 3_000;
/** /status is a few hundred KiB at most (its lists are capped); refuse anything far larger. */
const MAX_BYTES = 4 * 1024 * 1024;

interface ServiceStatus {
  webhooks?: { enabled?: boolean; startedAt?: string; lastAcceptedAt?: string | null };
}

const getText = (url: string) => getServiceText(url, { timeoutMs: TIMEOUT_MS, maxBytes: MAX_BYTES });

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
