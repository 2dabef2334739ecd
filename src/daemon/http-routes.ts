/**
 * What each path of the daemon's HTTP surface answers:
 *
 *   GET  /               a short plain-text page naming the other endpoints
 *   GET  /metrics        Prometheus text from the warden's own Registry
 *   GET  /healthz        200 {"status":"ok"} while the process is alive (liveness)
 *   GET  /readyz         200 or 503 with the readiness checks (503 once shutdown begins)
 *   GET  /status         JSON state for humans (schemas/status.schema.json), passed through redactSecrets
 *   GET  /impact         what reads some share paths, from the guard's index (impact-route.ts; only with a guard)
 *   POST /webhooks/cvat  CVAT webhook deliveries (only when a secret is configured)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { describeError } from '../errors.js';
import { redactSecrets } from '../secrets.js';
import { jsonReplacer, pathOf, sendBody, sendJson, sendText } from './http-respond.js';
import type { WebhookIntake } from './http-webhook.js';
import { parseImpactQuery, type ImpactQuery, type ImpactReply } from './impact-route.js';

export const WEBHOOK_PATH = '/webhooks/cvat';

export interface ReadinessCheck {
  ok: boolean;
  detail?: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, ReadinessCheck>;
}

export interface RouteContext {
  registry: Registry;
  /** Readiness; may be async. Throwing counts as not ready. */
  health: () => ReadinessReport | Promise<ReadinessReport>;
  /** JSON for /status; may be async. Secrets registered in secrets.ts are redacted. */
  status: () => unknown;
  /** Absent: POST /webhooks/cvat answers 404. */
  intake: WebhookIntake | undefined;
  /** Absent (no share guard): GET /impact answers 404. */
  impact?: ((query: ImpactQuery) => ImpactReply) | undefined;
  /** False once shutdown begins: readiness fails, webhooks get 503. */
  accepting: () => boolean;
}

const ROUTES: Record<string, readonly string[]> = {
  '/': ['GET', 'HEAD'],
  '/metrics': ['GET', 'HEAD'],
  '/healthz': ['GET', 'HEAD'],
  '/readyz': ['GET', 'HEAD'],
  '/status': ['GET', 'HEAD'],
  '/impact': ['GET'],
  [WEBHOOK_PATH]: ['POST'],
};

const INDEX_PAGE = [
  'cvat-warden',
  '',
  '/metrics   Prometheus metrics',
  '/status    what the service knows, as JSON (schemas/status.schema.json)',
  '/healthz   liveness: 200 while the process answers',
  '/impact    ?path=<share-relative>&task=<id>: what reads those share files (cvat-warden impact asks here)',
  '/readyz    readiness: 503 before the first discovery, while CVAT is unreachable (past a short grace),',
  '           the credentials are refused or the share is unavailable, and once the service stops',
  '',
].join('\n');

export async function route(req: IncomingMessage, res: ServerResponse, context: RouteContext): Promise<void> {
  const method = req.method ?? 'GET';
  const path = pathOf(req.url);
  const absent = (path === WEBHOOK_PATH && !context.intake) || (path === '/impact' && !context.impact);
  const allowed = absent ? undefined : ROUTES[path];
  if (!allowed) {
    sendJson(res, 404, { error: 'not found' });
    return;
  }
  if (!allowed.includes(method)) {
    res.setHeader('allow', allowed.join(', '));
    sendJson(res, 405, { error: `method ${method} not allowed; use ${allowed.join(' or ')}` });
    return;
  }
  switch (path) {
    case '/':
      sendBody(res, 200, 'text/plain; charset=utf-8', INDEX_PAGE);
      return;
    case '/metrics': {
      const text = await context.registry.metrics();
      sendBody(res, 200, context.registry.contentType, text);
      return;
    }
    case '/healthz':
      sendJson(res, 200, { status: 'ok' });
      return;
    case '/readyz':
      return readyz(res, context);
    case '/status': {
      const value = await context.status();
      sendText(res, 200, redactSecrets(JSON.stringify(value, jsonReplacer, 2)));
      return;
    }
    case '/impact': {
      const query = parseImpactQuery(req.url);
      const reply: ImpactReply = 'errors' in query ? { status: 400, body: { error: query.errors.join('; ') } } : context.impact!(query);
      sendText(res, reply.status, redactSecrets(JSON.stringify(reply.body, jsonReplacer)));
      return;
    }
    case WEBHOOK_PATH:
      return context.intake?.handle(req, res, context.accepting());
  }
}

async function readyz(res: ServerResponse, context: RouteContext): Promise<void> {
  let report: ReadinessReport;
  try {
    report = await context.health();
  } catch (error) {
    report = { ready: false, checks: { health: { ok: false, detail: describeError(error) } } };
  }
  if (!context.accepting()) report = { ready: false, checks: { ...report.checks, shutdown: { ok: false, detail: 'shutting down' } } };
  sendText(res, report.ready ? 200 : 503, redactSecrets(JSON.stringify(report)));
}
