/**
 * The CVAT REST client: one undici Agent, auth and organisation headers, paging over
 * `{count,next,results}` (bounded: paging.ts), a deadline and byte cap on every answer
 * (limits.ts), the credentials' state as CVAT last judged them, version → features,
 * and response shapes checked at the edge.
 * Callers get typed records or, for malformed list items, a `Rejected` entry naming
 * the id, so one bad task never stops a run.
 */
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import { CvatHttpError, WardenError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { redactSecrets } from '../secrets.js';
import { credentialsHeader, describeCredentialProblem, type CredentialsState, type CvatCredentials } from './auth.js';
import { featuresFor, parseCvatVersion, type CvatFeatures } from './features.js';
import { countCapped, discard, deadlineError, followSignal, readCapped, tooLargeError, type RequestKind, type RequestLimits } from './limits.js';
import { parseBaseUrl, withoutUserInfo } from './base-url.js';
import { PageWalk } from './paging.js';
import { Agent, request } from './undici-parts.js';
import { AboutSchema, DataMetaSchema, JobSchema, PageSchema, TaskSchema, summarizeIssues, type About, type DataMeta, type Job, type Task } from './shapes.js';

export interface CvatClientOptions {
  /** Base URL of CVAT, optionally with a path prefix: `https://cvat.example.com/cvat`. */
  baseUrl: string;
  credentials?: CvatCredentials | undefined;
  /** Organisation slug sent as `X-Organization` on list requests. */
  organization?: string;
  /** Page size for list endpoints. CVAT's default is 10; larger pages mean fewer round trips. */
  pageSize?: number;
  /** Hard cap on pages of one list (see paging.ts; --max-list-pages). */
  maxPages: number;
  /** Deadline and byte cap per kind of request (see limits.ts; from the configuration). */
  limits: RequestLimits;
  /** Connections kept to CVAT. */
  connections?: number;
  logger?: Logger;
  /** Called with true/false after every request that got (or failed to get) an HTTP answer in time; a failure says why. */
  onReachability?: (up: boolean, error?: string) => void;
  /** Called whenever CVAT starts or stops accepting the credentials (401 mid-run, then back). */
  onCredentials?: (state: CredentialsState) => void;
  /** Use this dispatcher instead of an own Agent (tests, proxies). Not closed by `close()`. */
  dispatcher?: Dispatcher;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; id: number | undefined; problem: string };

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Read it within the request's deadline (it is cut then); `drain` counts it with the kind's byte cap. */
  body: Dispatcher.ResponseData['body'];
  kind: RequestKind;
  path: string;
}

type Query = Record<string, string | number | undefined>;

/** A version string fit for logs, /status and a metric label: no secret, printable, bounded. */
export function sanitizeVersion(raw: string): string {
  const clean = redactSecrets(raw)
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
  return clean.length > 64 ? `${clean.slice(0, 64)}…` : clean;
}

export class CvatClient {
  readonly baseUrl: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly authorization: string | undefined;
  private readonly options: CvatClientOptions;
  private readonly limits: RequestLimits;
  private featuresPromise: Promise<CvatFeatures> | undefined;
  private closing: Promise<void> | undefined;
  private credentials: CredentialsState = { accepted: undefined, detail: 'not checked yet', since: Date.now() };
  private readonly credentialListeners = new Set<(state: CredentialsState) => void>();

  constructor(options: CvatClientOptions) {
    const parsed = parseBaseUrl(options.baseUrl);
    if (!parsed.url) throw new WardenError('CONFIG_INVALID', parsed.problem ?? 'invalid CVAT URL');
    this.baseUrl = parsed.url.toString().replace(/\/+$/, '');
    this.options = options;
    this.limits = options.limits;
    this.authorization = credentialsHeader(options.credentials);
    this.ownsDispatcher = !options.dispatcher;
    this.dispatcher = options.dispatcher ?? new Agent({ connections: options.connections ?? 8, keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000 });
  }

  /** Absolute URL for an API path such as `/api/tasks`. */
  urlFor(path: string, query?: Query): URL {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    return url;
  }

  /** Whether CVAT accepts the credentials, as last seen. */
  get credentialsState(): CredentialsState {
    return this.credentials;
  }

  /** Calls `listener` on every change of the credentials state; returns the unsubscribe function. */
  onCredentialsChange(listener: (state: CredentialsState) => void): () => void {
    this.credentialListeners.add(listener);
    return () => this.credentialListeners.delete(listener);
  }

  private setCredentials(accepted: boolean, detail: string): void {
    if (this.credentials.accepted === accepted) return;
    this.credentials = { accepted, detail: redactSecrets(detail), since: Date.now() };
    if (!accepted) this.options.logger?.error({ detail: this.credentials.detail }, 'CVAT refused the credentials');
    else this.options.logger?.info('CVAT accepts the credentials');
    this.options.onCredentials?.(this.credentials);
    for (const listener of this.credentialListeners) listener(this.credentials);
  }

  /**
   * Sends one request and returns status, headers and the unread body, which the
   * caller must consume (`drain`) or dump. The whole exchange, body included, runs
   * under the kind's deadline: past it the request or the body is cut with
   * CVAT_TIMEOUT. Network failures become CVAT_UNREACHABLE.
   */
  async raw(
    path: string,
    options: {
      query?: Query | undefined;
      headers?: Record<string, string>;
      signal?: AbortSignal | undefined;
      kind?: RequestKind;
      /** Overrides the kind's deadline. */
      deadlineMs?: number;
      withOrganization?: boolean;
      /** Default GET; POST for actions such as starting a backup export; POST/PATCH with `body` for a backup import. */
      method?: 'GET' | 'POST' | 'PATCH';
      body?: Dispatcher.DispatchOptions['body'];
    } = {},
  ): Promise<RawResponse> {
    if (this.closing) throw new WardenError('ABORTED', 'CVAT client is closed');
    const kind = options.kind ?? 'api';
    const url = this.urlFor(path, options.query);
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (this.authorization) headers['authorization'] = this.authorization;
    if (options.withOrganization && this.options.organization !== undefined) headers['x-organization'] = this.options.organization;
    const deadlineMs = options.deadlineMs ?? this.limits[kind].deadlineMs;
    // The error is made only when the deadline passes: capturing a stack for every request
    // cost ~20 µs each (1.0 s of a 42 s profile of `run` making ~50,000 requests).
    const deadline: { error?: WardenError } = {};
    const controller = new AbortController();
    const unfollow = followSignal(options.signal, controller);
    const timer = setTimeout(() => controller.abort((deadline.error = deadlineError(kind, path, deadlineMs))), deadlineMs);
    // The open socket keeps the process alive while it matters; a forgotten timer must not.
    timer.unref();
    const release = () => {
      clearTimeout(timer);
      unfollow();
    };
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, {
        method: options.method ?? 'GET',
        headers,
        ...(options.body !== undefined ? { body: options.body } : {}),
        dispatcher: this.dispatcher,
        signal: controller.signal,
        // The overall deadline above bounds both; these only catch a dead socket sooner.
        headersTimeout: deadlineMs,
        bodyTimeout: deadlineMs,
      });
    } catch (error) {
      release();
      if (options.signal?.aborted) throw new WardenError('ABORTED', 'request aborted', { cause: error });
      const failure =
        deadline.error && controller.signal.reason === deadline.error
          ? deadline.error
          : new WardenError('CVAT_UNREACHABLE', `cannot reach CVAT at ${this.baseUrl}: ${describeError(error)}`, { cause: error });
      this.options.onReachability?.(false, failure.message);
      throw failure;
    }
    // The deadline keeps running while the caller reads the body.
    response.body.once('close', release);
    this.options.onReachability?.(true);
    const status = response.statusCode;
    if (status === 401) this.setCredentials(false, `CVAT answered 401 for ${path}: ${describeCredentialProblem(this.options.credentials)}`);
    else if (status >= 200 && status < 300 && kind !== 'about' && this.authorization) this.setCredentials(true, `accepted (last checked with ${path})`);
    return { status, headers: response.headers, body: response.body, kind, path };
  }

  /** Reads a body to the end without keeping it, within its deadline and byte cap; returns its length. */
  async drain(response: RawResponse, signal?: AbortSignal): Promise<number> {
    return this.reading(response, signal, () =>
      countCapped(response.body, this.limits[response.kind].maxBytes, () => tooLargeError(response.kind, response.path, this.limits[response.kind].maxBytes)),
    );
  }

  /** Maps a body cut by the deadline (or by the caller) to the right error. */
  private async reading<T>(response: RawResponse, signal: AbortSignal | undefined, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof WardenError) {
        if (error.code === 'CVAT_TIMEOUT') this.options.onReachability?.(false, error.message);
        throw error;
      }
      if (signal?.aborted) throw new WardenError('ABORTED', 'request aborted', { cause: error });
      const failure = new WardenError('CVAT_UNREACHABLE', `CVAT broke off its answer to GET ${response.path}: ${describeError(error)}`, { cause: error });
      this.options.onReachability?.(false, failure.message);
      throw failure;
    }
  }

  /** GET a JSON document, mapping auth failures, oversized and non-JSON answers to clear errors. */
  async getJson(path: string, query?: Query, signal?: AbortSignal, withOrganization = false, kind: RequestKind = 'api'): Promise<unknown> {
    const response = await this.raw(path, { query, signal, withOrganization, kind });
    const { maxBytes } = this.limits[kind];
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      discard(response.body);
      throw tooLargeError(kind, path, maxBytes);
    }
    const text = (await this.reading(response, signal, () => readCapped(response.body, maxBytes, () => tooLargeError(kind, path, maxBytes)))).toString('utf8');
    if (response.status === 401) {
      throw new WardenError('CVAT_AUTH_REFUSED', `CVAT answered 401 for ${path}: ${describeCredentialProblem(this.options.credentials)}`);
    }
    if (response.status === 403) {
      throw new WardenError(
        'CVAT_FORBIDDEN',
        `CVAT answered 403 for ${path}: the account is not allowed to read it; warming needs an admin account or an organization owner/maintainer (or a personal access token of one)${this.options.organization ? ` in organization "${this.options.organization}"` : ''}`,
      );
    }
    if (response.status >= 300 && response.status < 400) {
      const location = response.headers['location'];
      const target =
        typeof location === 'string' ? ` to ${JSON.stringify(withoutUserInfo(location.split('?', 1)[0] ?? '').slice(0, 200))}` : ' without a Location';
      throw new CvatHttpError(response.status, path, `redirected${target}; set the URL CVAT is really served at (https? path prefix?)`);
    }
    if (response.status < 200 || response.status >= 300) {
      throw new CvatHttpError(response.status, path, text.slice(0, 200).replace(/\s+/g, ' ').trim());
    }
    try {
      return JSON.parse(text);
    } catch {
      const type = String(response.headers['content-type'] ?? 'unknown type');
      throw new WardenError(
        'CVAT_BAD_RESPONSE',
        `CVAT answered ${path} with something that is not JSON (${type.slice(0, 60)}); is the URL ${this.baseUrl} really a CVAT server?`,
      );
    }
  }

  /**
   * `GET /api/server/about`. Anything but a well-formed answer means the URL is not a
   * working CVAT (wrong URL, CVAT 1.x, a proxy's error page): CVAT_UNREACHABLE, exit 3.
   */
  async about(signal?: AbortSignal): Promise<About> {
    let document: unknown;
    try {
      document = await this.getJson('/api/server/about', undefined, signal, false, 'about');
    } catch (error) {
      if (error instanceof CvatHttpError && error.status === 404) {
        throw new WardenError(
          'CVAT_UNREACHABLE',
          `no CVAT API at ${this.baseUrl} (GET /api/server/about answered 404): check the URL and its path prefix; CVAT 1.x (/api/v1) is unsupported`,
        );
      }
      if (error instanceof WardenError && (error.code === 'CVAT_HTTP' || error.code === 'CVAT_BAD_RESPONSE')) {
        throw new WardenError('CVAT_UNREACHABLE', `${this.baseUrl} does not answer as a working CVAT: ${error.message}`, { cause: error });
      }
      throw error;
    }
    const parsed = AboutSchema.safeParse(document);
    if (!parsed.success)
      throw new WardenError(
        'CVAT_UNREACHABLE',
        `${this.baseUrl} does not answer as a working CVAT: unexpected /api/server/about answer: ${summarizeIssues(parsed.error)}`,
      );
    return { ...parsed.data, version: sanitizeVersion(parsed.data.version) };
  }

  /** Version-dependent behaviour, read once per client. */
  features(signal?: AbortSignal): Promise<CvatFeatures> {
    this.featuresPromise ??= this.about(signal).then((about) => featuresFor(parseCvatVersion(about.version)));
    this.featuresPromise.catch(() => (this.featuresPromise = undefined));
    return this.featuresPromise;
  }

  /** Items per page of every list request. */
  get pageSize(): number {
    return this.options.pageSize ?? 500;
  }

  /**
   * Pages through a list endpoint, yielding raw items; bounded by the rules of paging.ts,
   * with `maxPages` (`--max-list-pages`) unless the caller knows a tighter or wider bound.
   */
  async *paginate(path: string, query: Query = {}, signal?: AbortSignal, maxPages = this.options.maxPages): AsyncGenerator {
    const pageSize = this.pageSize;
    const walk = new PageWalk(path, { pageSize, maxPages });
    for (;;) {
      const document = await this.getJson(path, { ...query, page: walk.page, page_size: pageSize }, signal, true, 'list');
      const parsed = PageSchema.safeParse(document);
      if (!parsed.success) throw new WardenError('CVAT_BAD_RESPONSE', `unexpected list answer from ${path}: ${summarizeIssues(parsed.error)}`);
      const next = walk.advance(parsed.data, this.baseUrl);
      yield* parsed.data.results;
      if (next === undefined) return;
    }
  }

  async *tasks(filters: { projectId?: number; filter?: string; sort?: string } = {}, signal?: AbortSignal): AsyncGenerator<Checked<Task>> {
    for await (const item of this.paginate('/api/tasks', { project_id: filters.projectId, filter: filters.filter, sort: filters.sort }, signal)) {
      yield check(TaskSchema, item, 'task');
    }
  }

  /** Jobs, filtered; `maxPages` replaces `--max-list-pages` for a listing whose size the caller knows. */
  async *jobs(
    filters: { taskId?: number; projectId?: number; filter?: string; sort?: string; maxPages?: number } = {},
    signal?: AbortSignal,
  ): AsyncGenerator<Checked<Job>> {
    for await (const item of this.paginate(
      '/api/jobs',
      { task_id: filters.taskId, project_id: filters.projectId, filter: filters.filter, sort: filters.sort },
      signal,
      filters.maxPages,
    )) {
      yield check(JobSchema, item, 'job');
    }
  }

  async task(id: number, signal?: AbortSignal): Promise<Checked<Task>> {
    return check(TaskSchema, await this.getJson(`/api/tasks/${id}`, undefined, signal), 'task', id);
  }

  async job(id: number, signal?: AbortSignal): Promise<Checked<Job>> {
    return check(JobSchema, await this.getJson(`/api/jobs/${id}`, undefined, signal), 'job', id);
  }

  async taskMeta(id: number, signal?: AbortSignal): Promise<Checked<DataMeta>> {
    return check(DataMetaSchema, await this.getJson(`/api/tasks/${id}/data/meta`, undefined, signal), 'task meta', id);
  }

  async jobMeta(id: number, signal?: AbortSignal): Promise<Checked<DataMeta>> {
    return check(DataMetaSchema, await this.getJson(`/api/jobs/${id}/data/meta`, undefined, signal), 'job meta', id);
  }

  /** Idempotent and memoized: every caller awaits the same close of the own Agent (an injected dispatcher is left open). */
  close(): Promise<void> {
    this.closing ??= this.ownsDispatcher ? this.dispatcher.close() : Promise.resolve();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function check<T>(schema: z.ZodType<T>, item: unknown, what: string, knownId?: number): Checked<T> {
  const parsed = schema.safeParse(item);
  if (parsed.success) return { ok: true, value: parsed.data };
  const rawId = typeof item === 'object' && item !== null ? (item as { id?: unknown }).id : undefined;
  const id = knownId ?? (typeof rawId === 'number' ? rawId : undefined);
  return { ok: false, id, problem: `malformed ${what}${id !== undefined ? ` ${id}` : ''}: ${summarizeIssues(parsed.error)}` };
}
