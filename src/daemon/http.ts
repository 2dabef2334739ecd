/**
 * The daemon's HTTP surface, on node:http only:
 *
 *   GET  /metrics        Prometheus text from the warden's own Registry
 *   GET  /healthz        200 {"status":"ok"} while the process is alive (liveness)
 *   GET  /readyz         200 or 503 with the readiness checks (503 once shutdown begins)
 *   GET  /status         JSON state for humans, passed through redactSecrets
 *   POST /webhooks/cvat  CVAT webhook deliveries (only when a secret is configured)
 *
 * Webhooks: the body is read raw with a hard 1 MiB cap (Content-Length checked up front,
 * the stream cut off as soon as the cap is passed) and all bodies being read at once share
 * an overall cap (16 MiB; past it 503, which CVAT retries), the X-Signature-256 HMAC is checked
 * over those exact bytes, and the answer goes out before the event is handed on, so CVAT
 * (10 s read timeout, retries on 5xx/408/429 from 2.65) always sees a quick 2xx.
 * Headers and request timeouts are bounded so slow clients cannot pin the server.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { WardenError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { WebhookOutcome } from '../domain.js';
import type { Metrics } from '../metrics.js';
import { redactSecrets } from '../secrets.js';
import { SIGNATURE_HEADER, WebhookReceiver, type WebhookEvent, type WebhookReceipt } from './webhook.js';

/** Rejected webhook deliveries: one warn line per this long at most. */
const REJECTION_WARN_INTERVAL_MS = 60_000;

export interface ReadinessCheck {
  ok: boolean;
  detail?: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, ReadinessCheck>;
}

export interface HttpTimeouts {
  /** Time allowed to receive the request headers (slowloris guard). @default 10000 */
  headersMs?: number;
  /** Time allowed to receive the whole request, body included. @default 30000 */
  requestMs?: number;
  /** Idle time before a keep-alive connection is closed. @default 5000 */
  keepAliveMs?: number;
  /** On close(), time given to open requests before their connections are cut. @default 5000 */
  closeGraceMs?: number;
}

export interface WebhookRouteOptions {
  /** The CVAT webhook's secret; required — unsigned deliveries are always rejected. */
  secret: string;
  /**
   * Receives each accepted event once (duplicates are dropped), after the HTTP answer
   * has been sent. Throwing or rejecting is logged and otherwise ignored.
   */
  onEvent: (event: WebhookEvent) => void | Promise<void>;
  /** Accept CVAT 2.3.x signatures (over body + "\n"). @default false */
  legacyNewline?: boolean;
  /** @default 1048576 (1 MiB); CVAT payloads are a task or job JSON, a few KiB. */
  maxBodyBytes?: number;
  /** Bytes all webhook bodies being read at once may hold together; past it 503. @default 16777216 (16 MiB) */
  maxBufferedBytes?: number;
  /** @default 10000 */
  dedupeCapacity?: number;
}

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

export const WEBHOOK_PATH = '/webhooks/cvat';
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** 16 bodies at the 1 MiB cap, or thousands of CVAT's few-KiB payloads, at once. */
export const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

const ROUTES: Record<string, readonly string[]> = {
  '/metrics': ['GET', 'HEAD'],
  '/healthz': ['GET', 'HEAD'],
  '/readyz': ['GET', 'HEAD'],
  '/status': ['GET', 'HEAD'],
  [WEBHOOK_PATH]: ['POST'],
};

const STATUS_FOR: Record<WebhookOutcome, number> = {
  accepted: 200,
  duplicate: 200,
  ignored: 200,
  rejected_signature: 401,
  rejected_size: 413,
  rejected_busy: 503,
  rejected_malformed: 400,
};

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const { logger, registry } = options;
  const headersMs = options.timeouts?.headersMs ?? 10_000;
  const requestMs = Math.max(options.timeouts?.requestMs ?? 30_000, headersMs);
  const closeGraceMs = options.timeouts?.closeGraceMs ?? 5_000;
  const webhook = options.webhook;
  const maxBodyBytes = webhook?.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  // Bytes of webhook bodies held right now, across requests: a flood of slow or large
  // bodies cannot hold more memory than this.
  const budget = new ByteBudget(webhook?.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES);
  const receiver = webhook
    ? new WebhookReceiver({
        secret: webhook.secret,
        ...(webhook.legacyNewline !== undefined ? { legacyNewline: webhook.legacyNewline } : {}),
        ...(webhook.dedupeCapacity !== undefined ? { dedupeCapacity: webhook.dedupeCapacity } : {}),
      })
    : undefined;
  let accepting = true;

  const count = (outcome: WebhookOutcome) => options.metrics?.webhookDeliveries.inc({ outcome });

  const handOn = (event: WebhookEvent) => {
    setImmediate(() => {
      const fail = (error: unknown) => logger.error({ err: describeError(error), kind: event.kind, event: event.event }, 'webhook event handler failed');
      try {
        const result = webhook?.onEvent(event);
        if (result && typeof result.then === 'function') result.then(undefined, fail);
      } catch (error) {
        fail(error);
      }
    });
  };

  // A rejected delivery is logged at warn once a minute at most, with how many were only
  // counted since (the metric has them all): a flood of forged or oversized deliveries
  // writes a few lines, not one each.
  let lastRejectionWarnAt = -Infinity;
  let rejectionsSinceWarn = 0;
  const warnRejected = (fields: Record<string, unknown>, message: string) => {
    const now = performance.now();
    if (now - lastRejectionWarnAt < REJECTION_WARN_INTERVAL_MS) {
      rejectionsSinceWarn++;
      logger.debug(fields, message);
      return;
    }
    logger.warn({ ...fields, rejectedSinceLastWarning: rejectionsSinceWarn }, message);
    lastRejectionWarnAt = now;
    rejectionsSinceWarn = 0;
  };

  const handleWebhook = async (req: IncomingMessage, res: ServerResponse) => {
    if (!receiver) {
      sendJson(res, 404, { error: 'not found' });
      return;
    }
    if (!accepting) {
      // Do not read the body; CVAT ≥ 2.65 retries 503s with its back-off schedule.
      res.setHeader('connection', 'close');
      res.setHeader('retry-after', '30');
      sendJson(res, 503, { error: 'shutting down' });
      return;
    }
    const declared = Number(req.headers['content-length']);
    let body: Buffer | 'too_large' | 'busy';
    try {
      body =
        Number.isFinite(declared) && declared > maxBodyBytes
          ? 'too_large'
          : Number.isFinite(declared) && !budget.fits(declared)
            ? 'busy'
            : await readBody(req, maxBodyBytes, budget);
    } catch (error) {
      // The client went away or the request timeout cut it off: nobody to answer.
      logger.debug({ err: describeError(error) }, 'webhook delivery aborted while reading the body');
      res.destroy();
      return;
    }
    if (body === 'too_large') {
      count('rejected_size');
      warnRejected({ limitBytes: maxBodyBytes, declaredBytes: Number.isFinite(declared) ? declared : undefined }, 'webhook delivery rejected: body too large');
      res.setHeader('connection', 'close');
      // Stop reading: the socket goes as soon as the answer is out.
      res.on('finish', () => req.socket.destroy());
      sendJson(res, 413, { error: `body larger than ${maxBodyBytes} bytes` });
      return;
    }
    if (body === 'busy') {
      count('rejected_busy');
      logger.debug({ limitBytes: budget.limit }, 'webhook delivery refused for now: the bodies being read fill their overall bound');
      res.setHeader('connection', 'close');
      res.setHeader('retry-after', '5');
      res.on('finish', () => req.socket.destroy());
      sendJson(res, 503, { error: 'too many webhook bodies at once; retry later' });
      return;
    }
    const header = req.headers[SIGNATURE_HEADER];
    let receipt: WebhookReceipt;
    try {
      receipt = receiver.receive(body, Array.isArray(header) ? header.join(',') : header);
    } finally {
      budget.give(body.length);
    }
    count(receipt.outcome);
    if (receipt.outcome === 'rejected_signature' || receipt.outcome === 'rejected_malformed') {
      warnRejected({ outcome: receipt.outcome, bytes: body.length }, `webhook delivery rejected: ${receipt.detail}`);
      sendJson(res, STATUS_FOR[receipt.outcome], { error: receipt.detail });
      return;
    }
    const { event } = receipt;
    const fields = {
      outcome: receipt.outcome,
      event: event.event,
      kind: event.kind,
      ...('taskId' in event ? { taskId: event.taskId } : {}),
      ...('jobId' in event ? { jobId: event.jobId } : {}),
    };
    // A line per delivery only at debug: a flood would bury the log; the service logs a summary.
    logger.debug(fields, `webhook delivery ${receipt.outcome}`);
    sendJson(res, STATUS_FOR[receipt.outcome], { status: receipt.outcome });
    if (receipt.outcome === 'accepted') handOn(event);
  };

  const route = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const path = pathOf(req.url);
    const allowed = path === WEBHOOK_PATH && !receiver ? undefined : ROUTES[path];
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
      case '/metrics': {
        const text = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(text);
        return;
      }
      case '/healthz': {
        sendJson(res, 200, { status: 'ok' });
        return;
      }
      case '/readyz': {
        let report: ReadinessReport;
        try {
          report = await options.health();
        } catch (error) {
          report = { ready: false, checks: { health: { ok: false, detail: describeError(error) } } };
        }
        if (!accepting) report = { ready: false, checks: { ...report.checks, shutdown: { ok: false, detail: 'shutting down' } } };
        sendText(res, report.ready ? 200 : 503, redactSecrets(JSON.stringify(report)));
        return;
      }
      case '/status': {
        const value = await options.status();
        sendText(res, 200, redactSecrets(JSON.stringify(value, jsonReplacer, 2)));
        return;
      }
      case WEBHOOK_PATH:
        return handleWebhook(req, res);
    }
  };

  const server = createServer(
    {
      headersTimeout: headersMs,
      requestTimeout: requestMs,
      // How often node sweeps for connections over those limits (default 30 s).
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersMs / 2))),
      keepAliveTimeout: options.timeouts?.keepAliveMs ?? 5_000,
    },
    (req, res) => {
      route(req, res).catch((error: unknown) => {
        logger.error({ err: describeError(error), path: pathOf(req.url) }, 'HTTP handler failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    },
  );
  // Answer `Expect: 100-continue` for oversized webhooks before the client sends the body.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers['content-length']);
    if (receiver && pathOf(req.url) === WEBHOOK_PATH && Number.isFinite(declared) && declared > maxBodyBytes) {
      count('rejected_size');
      res.setHeader('connection', 'close');
      sendJson(res, 413, { error: `body larger than ${maxBodyBytes} bytes` });
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    logger.debug({ err: describeError(error) }, 'HTTP client error');
    if (socket.writable && !socket.destroyed) {
      const status =
        error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : error.code === 'HPE_HEADER_OVERFLOW'
            ? '431 Request Header Fields Too Large'
            : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    }
    socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(
        new WardenError(
          'CONFIG_INVALID',
          `cannot listen on ${options.host}:${options.port}: ${error.code ?? error.message} (is another process using the port?)`,
          { cause: error },
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: describeError(error) }, 'HTTP server error'));

  const port = (server.address() as AddressInfo).port;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  logger.info({ url, webhooks: Boolean(receiver) }, 'HTTP server listening');

  let closing: Promise<void> | undefined;
  const stopAccepting = () => {
    if (accepting) logger.debug('HTTP server stops accepting webhooks; readiness now fails');
    accepting = false;
  };
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      stopAccepting();
      const force = setTimeout(() => server.closeAllConnections(), closeGraceMs);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        logger.debug('HTTP server closed');
        resolve();
      });
      server.closeIdleConnections();
    });
    return closing;
  };

  return { url, port, stopAccepting, close, [Symbol.asyncDispose]: close };
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** Bytes held by the webhook bodies being read, bounded across requests. */
class ByteBudget {
  readonly limit: number;
  private held = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  fits(bytes: number): boolean {
    return this.held + bytes <= this.limit;
  }

  /** Reserves `bytes`; false (nothing reserved) when they do not fit. */
  take(bytes: number): boolean {
    if (!this.fits(bytes)) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
  }
}

/**
 * Reads the whole body, or stops at the first byte past `limit` or past what `budget`
 * still holds. The bytes of a returned body stay reserved: the caller gives them back.
 * Rejects if the client goes away or the request timeout cuts the connection.
 */
function readBody(req: IncomingMessage, limit: number, budget: ByteBudget): Promise<Buffer | 'too_large' | 'busy'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const cleanup = () => {
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const stop = (outcome: 'too_large' | 'busy') => {
      cleanup();
      req.pause();
      chunks.length = 0;
      budget.give(size);
      resolve(outcome);
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > limit) {
        stop('too_large');
        return;
      }
      if (!budget.take(chunk.length)) {
        stop('busy');
        return;
      }
      size += chunk.length;
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      budget.give(size);
      reject(error);
    };
    const onClose = () => {
      if (!settled) onError(new Error('client closed the connection before the body was complete'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  if (value instanceof Error) return describeError(value);
  return value;
}

function sendText(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendText(res, status, JSON.stringify(body));
}
