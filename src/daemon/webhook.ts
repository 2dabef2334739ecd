/**
 * CVAT webhook deliveries (cvat-facts §5, "Implications D"): signature check over the
 * raw body bytes, recognition of the few events that matter to the warden, and a
 * bounded de-duplication memory, because CVAT ≥ 2.65 retries deliveries (5 s, 5 min,
 * 30 min, …) and an admin can redeliver by hand — with no delivery id in the request.
 *
 * Everything here is pure or self-contained; the HTTP plumbing lives in http.ts.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The header CVAT sets when the webhook has a secret: `sha256=<hex HMAC-SHA256(secret, body)>`. */
export const SIGNATURE_HEADER = 'x-signature-256';

export { WEBHOOK_OUTCOMES, type WebhookOutcome } from '../domain.js';

interface EventBase {
  /** CVAT's event name as sent, e.g. `update:task` or `completed:request[create:task]`. */
  event: string;
  /** `webhook_id` of the payload, when present (which webhook in CVAT sent it). */
  webhookId?: number;
  /** `(event, resource id, updated_date | request id)`; undefined when the event is never de-duplicated (ping). */
  dedupeKey?: string;
}

/**
 * What a delivery means to the warden.
 * - `task_ready`: the task's data (segments, jobs) now exist: plan and warm it. Sent for
 *   2.73+ `completed:request[create:task]` (finished), 2.11–2.72 `update:task` whose
 *   `before_update` shows `mode`/`media_type` leaving `""`, and every `create:job` (one per
 *   job, so expect several per task). Confirm with `GET /api/tasks/{id}` (`size > 0`,
 *   `jobs.count > 0`) before warming: webhooks can arrive out of order.
 * - `task_changed`: any other `update:task` (honeypot changes `touch()` the task, so its
 *   chunks may be invalidated): re-check `chunks_updated_date` of its jobs.
 * - `task_deleted`, `job_changed` (`update:job`), `job_deleted`.
 * - `ping`: CVAT's "Ping" button; proves the secret and the route work.
 * - `ignored`: a valid event the warden does not use (issues, comments, projects, exports…).
 */
export type WebhookEvent =
  | (EventBase & { kind: 'task_ready'; taskId: number; source: 'request' | 'task_update' | 'job_create'; jobId?: number })
  | (EventBase & { kind: 'task_changed'; taskId: number })
  | (EventBase & { kind: 'task_deleted'; taskId: number })
  | (EventBase & { kind: 'job_changed'; taskId: number; jobId: number })
  | (EventBase & { kind: 'job_deleted'; taskId: number; jobId: number })
  | (EventBase & { kind: 'ping' })
  | (EventBase & { kind: 'ignored'; reason: string });

export type WebhookEventKind = WebhookEvent['kind'];

export interface VerifyOptions {
  /**
   * Also accept CVAT 2.3.x signatures, which were computed over the body plus a
   * trailing `"\n"` (fixed in 2.4.0). Off by default: it doubles the accepted forms.
   * @default false
   */
  legacyNewline?: boolean;
}

const SIGNATURE_RE = /^sha256=([0-9a-fA-F]{64})$/;

/**
 * True when `header` (`sha256=<64 hex>`) is HMAC-SHA256(secret, rawBody). Compares in
 * constant time; never throws — a missing, malformed or differently sized header is
 * simply false, as is an empty secret (CVAT does not sign without one).
 */
export function verifySignature(rawBody: Buffer, header: string | undefined, secret: string, options: VerifyOptions = {}): boolean {
  if (!secret || typeof header !== 'string') return false;
  const match = SIGNATURE_RE.exec(header.trim());
  const hex = match?.[1];
  if (!hex) return false;
  const given = Buffer.from(hex, 'hex');
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  // Lengths are equal by construction (32 bytes each), as timingSafeEqual requires.
  if (given.length === expected.length && timingSafeEqual(given, expected)) return true;
  if (options.legacyNewline) {
    const legacy = createHmac('sha256', secret).update(rawBody).update('\n').digest();
    return given.length === legacy.length && timingSafeEqual(given, legacy);
  }
  return false;
}

/** The value CVAT would put in X-Signature-256 for `rawBody` (for tests and the emulator). */
export function signBody(rawBody: Buffer | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** `before_update` (all versions) or `changes` (2.73+) says `field` had the value `""` before this update. */
function changedFromEmpty(payload: Json, field: string): boolean {
  const before = payload['before_update'];
  if (isObject(before) && before[field] === '') return true;
  const changes = payload['changes'];
  if (isObject(changes)) {
    const change = changes[field];
    if (isObject(change) && change['from'] === '' && typeof change['to'] === 'string' && change['to'] !== '') return true;
  }
  return false;
}

/**
 * Maps a parsed webhook payload to a WebhookEvent. Returns undefined when the payload is
 * not a CVAT webhook at all (not an object, no `event` string) or an event the warden
 * uses lacks the ids it needs (e.g. `update:task` without `task.id`) — the receiver
 * answers those with 400. Unknown but well-formed events come back as `ignored`.
 */
export function parseWebhookEvent(json: unknown): WebhookEvent | undefined {
  if (!isObject(json)) return undefined;
  const event = text(json['event']);
  if (!event) return undefined;
  const webhookId = positiveInt(json['webhook_id']);
  const base: EventBase = webhookId === undefined ? { event } : { event, webhookId };

  if (event === 'ping') return { ...base, kind: 'ping' };

  if (event.startsWith('completed:request[')) {
    const request = json['request'];
    if (!isObject(request)) return undefined;
    const operation = isObject(request['operation']) ? request['operation'] : undefined;
    const isTaskCreation = event === 'completed:request[create:task]' || text(operation?.['type']) === 'create:task';
    if (!isTaskCreation) return { ...base, kind: 'ignored', reason: 'request other than task data creation' };
    const status = text(request['status']);
    if (status !== 'finished') return { ...base, kind: 'ignored', reason: `task data creation ${status ?? 'without status'}` };
    const taskId = positiveInt(operation?.['task_id']);
    if (taskId === undefined) return undefined;
    const requestId = text(request['id']) ?? String(taskId);
    return { ...base, kind: 'task_ready', taskId, source: 'request', dedupeKey: `${event}|request:${requestId}|${text(request['finished_date']) ?? ''}` };
  }

  const [action, resource] = event.split(':', 2);
  if (resource === 'task' && (action === 'update' || action === 'delete' || action === 'create')) {
    const task = json['task'];
    const taskId = isObject(task) ? positiveInt(task['id']) : undefined;
    if (taskId === undefined || !isObject(task)) return undefined;
    const dedupeKey = `${event}|task:${taskId}|${text(task['updated_date']) ?? ''}`;
    // create:task fires before any data exists (cvat-facts §5): nothing to warm yet.
    if (action === 'create') return { ...base, kind: 'ignored', reason: 'task created without data yet', dedupeKey };
    if (action === 'delete') return { ...base, kind: 'task_deleted', taskId, dedupeKey };
    if (changedFromEmpty(json, 'mode') || changedFromEmpty(json, 'media_type')) {
      return { ...base, kind: 'task_ready', taskId, source: 'task_update', dedupeKey };
    }
    return { ...base, kind: 'task_changed', taskId, dedupeKey };
  }

  if (resource === 'job' && (action === 'update' || action === 'delete' || action === 'create')) {
    const job = json['job'];
    if (!isObject(job)) return undefined;
    const jobId = positiveInt(job['id']);
    const taskId = positiveInt(job['task_id']);
    if (jobId === undefined || taskId === undefined) return undefined;
    const dedupeKey = `${event}|job:${jobId}|${text(job['updated_date']) ?? ''}`;
    if (action === 'create') return { ...base, kind: 'task_ready', taskId, jobId, source: 'job_create', dedupeKey };
    if (action === 'delete') return { ...base, kind: 'job_deleted', taskId, jobId, dedupeKey };
    return { ...base, kind: 'job_changed', taskId, jobId, dedupeKey };
  }

  return { ...base, kind: 'ignored', reason: 'event not used by the warden' };
}

/** A bounded set with least-recently-used eviction (Map keeps insertion order). */
export class LruSet {
  private readonly keys = new Map<string, true>();
  readonly capacity: number;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`Expected \`capacity\` to be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  /** Adds `key`; returns false (and refreshes it) if it was already present. */
  add(key: string): boolean {
    if (this.keys.has(key)) {
      this.keys.delete(key);
      this.keys.set(key, true);
      return false;
    }
    this.keys.set(key, true);
    if (this.keys.size > this.capacity) {
      const oldest = this.keys.keys().next();
      if (!oldest.done) this.keys.delete(oldest.value);
    }
    return true;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  get size(): number {
    return this.keys.size;
  }
}

export interface WebhookReceiverOptions {
  /** The webhook's secret as configured in CVAT. Must not be empty: unsigned deliveries are rejected. */
  secret: string;
  /** @default false — see VerifyOptions.legacyNewline. */
  legacyNewline?: boolean;
  /**
   * De-duplication keys remembered (in memory: a restart forgets them, and a repeat is
   * then handed on once more — harmless, since consumers confirm with the CVAT API).
   * CVAT ≥ 2.65 retries only after a non-2xx answer or a timeout, and admins can
   * redeliver by hand; 10,000 keys is hours of events on a busy instance. @default 10000
   */
  dedupeCapacity?: number;
}

export type WebhookReceipt =
  | { outcome: 'accepted'; event: WebhookEvent }
  | { outcome: 'duplicate'; event: WebhookEvent }
  | { outcome: 'ignored'; event: WebhookEvent }
  | { outcome: 'rejected_signature'; detail: string }
  | { outcome: 'rejected_malformed'; detail: string };

/** Verifies, parses and de-duplicates one delivery; knows nothing about HTTP. */
export class WebhookReceiver {
  private readonly secret: string;
  private readonly legacyNewline: boolean;
  private readonly seen: LruSet;

  constructor(options: WebhookReceiverOptions) {
    if (!options.secret) throw new RangeError('a webhook secret is required: CVAT only signs deliveries of webhooks that have one');
    this.secret = options.secret;
    this.legacyNewline = options.legacyNewline ?? false;
    this.seen = new LruSet(options.dedupeCapacity ?? 10_000);
  }

  receive(rawBody: Buffer, signatureHeader: string | undefined): WebhookReceipt {
    if (signatureHeader === undefined) return { outcome: 'rejected_signature', detail: 'missing X-Signature-256 header (set a secret on the CVAT webhook)' };
    if (!verifySignature(rawBody, signatureHeader, this.secret, { legacyNewline: this.legacyNewline })) {
      return { outcome: 'rejected_signature', detail: 'X-Signature-256 does not match the body (wrong secret?)' };
    }
    let json: unknown;
    try {
      json = JSON.parse(rawBody.toString('utf8'));
    } catch {
      return { outcome: 'rejected_malformed', detail: 'body is not JSON' };
    }
    const event = parseWebhookEvent(json);
    if (!event) return { outcome: 'rejected_malformed', detail: 'body is not a CVAT webhook payload the warden understands' };
    if (event.kind === 'ignored') return { outcome: 'ignored', event };
    if (event.kind !== 'ping') {
      // Without a date or request id the key would merge distinct updates: fall back to
      // the body digest, which still matches CVAT's retries (they resend the same bytes).
      const key =
        event.dedupeKey === undefined || event.dedupeKey.endsWith('|')
          ? `${event.dedupeKey ?? event.event}|sha256:${createHash('sha256').update(rawBody).digest('hex')}`
          : event.dedupeKey;
      if (!this.seen.add(key)) return { outcome: 'duplicate', event };
    }
    return { outcome: 'accepted', event };
  }
}
