/**
 * The daemon's HTTP server, on node:http only: listening, the bounds on slow clients,
 * and an orderly close. What each path answers is in http-routes.ts; webhook intake
 * (body caps, signature, hand-off) in http-webhook.ts.
 *
 * Headers and request timeouts are bounded so slow clients cannot pin the server.
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Registry } from 'prom-client';
import { HTTP_SERVER_DEFAULTS } from '../config/presets.js';
import { WardenError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { pathOf, sendJson } from './http-respond.js';
import { route, WEBHOOK_PATH, type ReadinessReport, type RouteContext } from './http-routes.js';
import { WebhookIntake, type WebhookRouteOptions } from './http-webhook.js';

export { WEBHOOK_PATH, type ReadinessCheck, type ReadinessReport } from './http-routes.js';
export { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BUFFERED_BYTES, type WebhookRouteOptions } from './http-webhook.js';

/** Overrides of HTTP_SERVER_DEFAULTS (config/presets.ts), where each is explained. */
export type HttpTimeouts = { -readonly [K in keyof typeof HTTP_SERVER_DEFAULTS]?: number };

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port (see the returned `port`). */
  port: number;
  logger: Logger;
  registry: Registry;
  /** Readiness; may be async. Throwing counts as not ready. */
  health: () => ReadinessReport | Promise<ReadinessReport>;
  /** JSON for /status; may be async. Secrets registered in secrets.ts are redacted. */
  status: () => unknown;
  /** Without it, POST /webhooks/cvat answers 404. */
  webhook?: WebhookRouteOptions;
  /** Without it (no share guard), GET /impact answers 404. */
  impact?: RouteContext['impact'];
  /** Counts webhook deliveries by outcome (`cvat_warden_webhook_deliveries_total`). */
  metrics?: Pick<Metrics, 'webhookDeliveries'>;
  timeouts?: HttpTimeouts;
}

export interface HttpServerHandle {
  /** e.g. `http://127.0.0.1:9464` */
  url: string;
  port: number;
  /** Fails readiness and answers webhooks with 503 (CVAT ≥ 2.65 retries those later); other routes keep working. */
  stopAccepting(): void;
  /** Stops listening, lets open requests finish (up to closeGraceMs), then cuts the rest. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const { logger } = options;
  const intake = options.webhook ? new WebhookIntake(options.webhook, logger, options.metrics) : undefined;
  let accepting = true;
  const context: RouteContext = {
    registry: options.registry,
    health: options.health,
    status: options.status,
    intake,
    impact: options.impact,
    accepting: () => accepting,
  };
  const server = createBoundedServer(options, context);
  await listen(server, options.host, options.port);
  server.on('error', (error) => logger.error({ err: describeError(error) }, 'HTTP server error'));

  const port = (server.address() as AddressInfo).port;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  logger.info({ url, webhooks: Boolean(intake) }, 'HTTP server listening');

  const stopAccepting = () => {
    if (accepting) logger.debug('HTTP server stops accepting webhooks; readiness now fails');
    accepting = false;
  };
  let closing: Promise<void> | undefined;
  const close = () => {
    stopAccepting();
    closing ??= closeServer(server, timeouts(options).closeGraceMs, logger);
    return closing;
  };
  return { url, port, stopAccepting, close, [Symbol.asyncDispose]: close };
}

function timeouts(options: HttpServerOptions): Record<keyof HttpTimeouts, number> {
  return { ...HTTP_SERVER_DEFAULTS, ...options.timeouts };
}

/** The server with its timeouts, the router, the 100-continue gate and answers to broken requests. */
function createBoundedServer(options: HttpServerOptions, context: RouteContext): Server {
  const { logger } = options;
  const { headersMs, requestMs, keepAliveMs } = timeouts(options);
  const server = createServer(
    {
      headersTimeout: headersMs,
      requestTimeout: Math.max(requestMs, headersMs),
      // How often node sweeps for connections over those limits (default 30 s).
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersMs / 2))),
      keepAliveTimeout: keepAliveMs,
    },
    (req, res) => {
      route(req, res, context).catch((error: unknown) => {
        logger.error({ err: describeError(error), path: pathOf(req.url) }, 'HTTP handler failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    },
  );
  // Answer `Expect: 100-continue` for oversized webhooks before the client sends the body.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (context.intake && pathOf(req.url) === WEBHOOK_PATH && context.intake.refuseBeforeContinue(req, res)) return;
    res.writeContinue();
    server.emit('request', req, res);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    logger.debug({ err: describeError(error) }, 'HTTP client error');
    if (socket.writable && !socket.destroyed) socket.end(`HTTP/1.1 ${clientErrorStatus(error)}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    socket.destroy();
  });
  return server;
}

function clientErrorStatus(error: NodeJS.ErrnoException): string {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return '408 Request Timeout';
  if (error.code === 'HPE_HEADER_OVERFLOW') return '431 Request Header Fields Too Large';
  return '400 Bad Request';
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(
        new WardenError('CONFIG_INVALID', `cannot listen on ${host}:${port}: ${error.code ?? error.message} (is another process using the port?)`, {
          cause: error,
        }),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Stops listening, lets open requests finish for `graceMs`, then cuts what is left. */
function closeServer(server: Server, graceMs: number, logger: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      logger.debug('HTTP server closed');
      resolve();
    });
    server.closeIdleConnections();
  });
}
