/**
 * Webhook intake for POST /webhooks/cvat: the body is read raw with a hard cap per
 * delivery (Content-Length checked up front, the stream cut off as soon as the cap is
 * passed) and all bodies being read at once share an overall cap (past it 503, which CVAT
 * retries); the X-Signature-256 HMAC is checked over those exact bytes, and the answer
 * goes out before the event is handed on, so CVAT (10 s read timeout, retries on
 * 5xx/408/429 from 2.65) always sees a quick 2xx.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebhookOutcome } from '../domain.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { sendJson } from './http-respond.js';
import { SIGNATURE_HEADER, WebhookReceiver, type WebhookEvent, type WebhookReceipt } from './webhook.js';

/** Rejected webhook deliveries: one warn line per this long at most. */
const REJECTION_WARN_INTERVAL_MS = 60_000;

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** 16 bodies at the 1 MiB cap, or thousands of CVAT's few-KiB payloads, at once. */
export const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

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

const STATUS_FOR: Record<WebhookOutcome, number> = {
  accepted: 200,
  duplicate: 200,
  ignored: 200,
  rejected_signature: 401,
  rejected_size: 413,
  rejected_busy: 503,
  rejected_malformed: 400,
};

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
 * A flood of forged or oversized deliveries writes a few lines, not one each: a rejection
 * is logged at warn once a minute at most, with how many were only counted since (the
 * metric has them all).
 */
class RejectionLog {
  private lastWarnAt = -Infinity;
  private since = 0;
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  warn(fields: Record<string, unknown>, message: string): void {
    const now = performance.now();
    if (now - this.lastWarnAt < REJECTION_WARN_INTERVAL_MS) {
      this.since++;
      this.logger.debug(fields, message);
      return;
    }
    this.logger.warn({ ...fields, rejectedSinceLastWarning: this.since }, message);
    this.lastWarnAt = now;
    this.since = 0;
  }
}

export class WebhookIntake {
  readonly maxBodyBytes: number;
  private readonly receiver: WebhookReceiver;
  // Bytes of webhook bodies held right now, across requests: a flood of slow or large
  // bodies cannot hold more memory than this.
  private readonly budget: ByteBudget;
  private readonly rejections: RejectionLog;
  private readonly options: WebhookRouteOptions;
  private readonly logger: Logger;
  private readonly metrics: Pick<Metrics, 'webhookDeliveries'> | undefined;

  constructor(options: WebhookRouteOptions, logger: Logger, metrics: Pick<Metrics, 'webhookDeliveries'> | undefined) {
    this.options = options;
    this.logger = logger;
    this.metrics = metrics;
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.budget = new ByteBudget(options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES);
    this.rejections = new RejectionLog(logger);
    this.receiver = new WebhookReceiver({
      secret: options.secret,
      ...(options.legacyNewline !== undefined ? { legacyNewline: options.legacyNewline } : {}),
      ...(options.dedupeCapacity !== undefined ? { dedupeCapacity: options.dedupeCapacity } : {}),
    });
  }

  count(outcome: WebhookOutcome): void {
    this.metrics?.webhookDeliveries.inc({ outcome });
  }

  /** For `Expect: 100-continue`: refuses a declared oversized body before the client sends it. True when answered. */
  refuseBeforeContinue(req: IncomingMessage, res: ServerResponse): boolean {
    const declared = Number(req.headers['content-length']);
    if (!(Number.isFinite(declared) && declared > this.maxBodyBytes)) return false;
    this.count('rejected_size');
    res.setHeader('connection', 'close');
    sendJson(res, 413, { error: `body larger than ${this.maxBodyBytes} bytes` });
    return true;
  }

  /** Answers a delivery; `accepting` false (shutting down) answers 503 without reading the body. */
  async handle(req: IncomingMessage, res: ServerResponse, accepting: boolean): Promise<void> {
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
        Number.isFinite(declared) && declared > this.maxBodyBytes
          ? 'too_large'
          : Number.isFinite(declared) && !this.budget.fits(declared)
            ? 'busy'
            : await readBody(req, this.maxBodyBytes, this.budget);
    } catch (error) {
      // The client went away or the request timeout cut it off: nobody to answer.
      this.logger.debug({ err: describeError(error) }, 'webhook delivery aborted while reading the body');
      res.destroy();
      return;
    }
    if (body === 'too_large' || body === 'busy') {
      this.refuse(req, res, body, Number.isFinite(declared) ? declared : undefined);
      return;
    }
    this.answer(res, body, req.headers[SIGNATURE_HEADER]);
  }

  private refuse(req: IncomingMessage, res: ServerResponse, why: 'too_large' | 'busy', declaredBytes: number | undefined): void {
    res.setHeader('connection', 'close');
    // Stop reading: the socket goes as soon as the answer is out.
    res.on('finish', () => req.socket.destroy());
    if (why === 'too_large') {
      this.count('rejected_size');
      this.rejections.warn({ limitBytes: this.maxBodyBytes, declaredBytes }, 'webhook delivery rejected: body too large');
      sendJson(res, 413, { error: `body larger than ${this.maxBodyBytes} bytes` });
      return;
    }
    this.count('rejected_busy');
    this.logger.debug({ limitBytes: this.budget.limit }, 'webhook delivery refused for now: the bodies being read fill their overall bound');
    res.setHeader('retry-after', '5');
    sendJson(res, 503, { error: 'too many webhook bodies at once; retry later' });
  }

  private answer(res: ServerResponse, body: Buffer, header: string | string[] | undefined): void {
    let receipt: WebhookReceipt;
    try {
      receipt = this.receiver.receive(body, Array.isArray(header) ? header.join(',') : header);
    } finally {
      this.budget.give(body.length);
    }
    this.count(receipt.outcome);
    if (receipt.outcome === 'rejected_signature' || receipt.outcome === 'rejected_malformed') {
      this.rejections.warn({ outcome: receipt.outcome, bytes: body.length }, `webhook delivery rejected: ${receipt.detail}`);
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
    this.logger.debug(fields, `webhook delivery ${receipt.outcome}`);
    sendJson(res, STATUS_FOR[receipt.outcome], { status: receipt.outcome });
    if (receipt.outcome === 'accepted') this.handOn(event);
  }

  /** After the answer: the handler's failures are logged, never thrown back at HTTP. */
  private handOn(event: WebhookEvent): void {
    setImmediate(() => {
      const fail = (error: unknown) => this.logger.error({ err: describeError(error), kind: event.kind, event: event.event }, 'webhook event handler failed');
      try {
        const result = this.options.onEvent(event);
        if (result && typeof result.then === 'function') result.then(undefined, fail);
      } catch (error) {
        fail(error);
      }
    });
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
