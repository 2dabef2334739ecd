/**
 * The CVAT REST client: one undici Agent, auth and organisation headers, paging over
 * `{count,next,results}`, version → features, and response shapes checked at the edge.
 * Callers get typed records or, for malformed list items, a `Rejected` entry naming
 * the id, so one bad task never stops a run.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { CvatHttpError, WardenError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { credentialsHeader, describeCredentialProblem, type CvatCredentials } from './auth.js';
import { featuresFor, parseCvatVersion, type CvatFeatures } from './features.js';
import {
  AboutSchema,
  DataMetaSchema,
  JobSchema,
  PageSchema,
  TaskSchema,
  summarizeIssues,
  type About,
  type DataMeta,
  type Job,
  type Task,
} from './shapes.js';

export interface CvatClientOptions {
  /** Base URL of CVAT, optionally with a path prefix: `https://cvat.example.com/cvat`. */
  baseUrl: string;
  credentials?: CvatCredentials | undefined;
  /** Organisation slug sent as `X-Organization` on list requests. */
  organization?: string;
  /** Page size for list endpoints. CVAT's default is 10; larger pages mean fewer round trips. */
  pageSize?: number;
  /** Time to wait for response headers of metadata requests. */
  requestTimeoutMs?: number;
  /** Connections kept to CVAT. */
  connections?: number;
  logger?: Logger;
  /** Called with true/false after every request that got (or failed to get) an HTTP answer. */
  onReachability?: (up: boolean) => void;
  /** Use this dispatcher instead of an own Agent (tests, proxies). Not closed by `close()`. */
  dispatcher?: Dispatcher;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; id: number | undefined; problem: string };

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

/** Normalises and validates a CVAT base URL; returns problems instead of throwing. */
export function parseBaseUrl(input: string): { url?: URL; problem?: string } {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return { problem: `CVAT URL "${input}" is not a valid URL (expected e.g. https://cvat.example.com)` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { problem: `CVAT URL must use http or https, got "${url.protocol}"` };
  }
  if (url.username || url.password) {
    return { problem: 'CVAT URL must not contain credentials; use CVAT_USERNAME/CVAT_PASSWORD or a token instead' };
  }
  if (url.search || url.hash) return { problem: 'CVAT URL must not contain a query string or fragment' };
  // Accept ".../api" as typed by people copying from the browser; the client adds it itself.
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/api$/, '');
  return { url };
}

export class CvatClient {
  readonly baseUrl: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly authorization: string | undefined;
  private readonly options: CvatClientOptions;
  private featuresPromise: Promise<CvatFeatures> | undefined;
  private closed = false;

  constructor(options: CvatClientOptions) {
    const parsed = parseBaseUrl(options.baseUrl);
    if (!parsed.url) throw new WardenError('CONFIG_INVALID', parsed.problem ?? 'invalid CVAT URL');
    this.baseUrl = parsed.url.toString().replace(/\/+$/, '');
    this.options = options;
    this.authorization = credentialsHeader(options.credentials);
    this.ownsDispatcher = !options.dispatcher;
    this.dispatcher =
      options.dispatcher ??
      new Agent({ connections: options.connections ?? 8, keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000 });
  }

  /** Absolute URL for an API path such as `/api/tasks`. */
  urlFor(path: string, query?: Record<string, string | number | undefined>): URL {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    return url;
  }

  /**
   * Sends one request and returns status, headers and the unread body. The caller
   * must consume or dump the body. Network failures become CVAT_UNREACHABLE.
   */
  async raw(
    path: string,
    options: {
      query?: Record<string, string | number | undefined> | undefined;
      headers?: Record<string, string>;
      signal?: AbortSignal | undefined;
      headersTimeoutMs?: number;
      withOrganization?: boolean;
    } = {},
  ): Promise<RawResponse> {
    if (this.closed) throw new WardenError('ABORTED', 'CVAT client is closed');
    const url = this.urlFor(path, options.query);
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (this.authorization) headers['authorization'] = this.authorization;
    if (options.withOrganization && this.options.organization !== undefined) headers['x-organization'] = this.options.organization;
    try {
      const response = await request(url, {
        method: 'GET',
        headers,
        dispatcher: this.dispatcher,
        signal: options.signal,
        headersTimeout: options.headersTimeoutMs ?? this.options.requestTimeoutMs ?? 30_000,
        bodyTimeout: options.headersTimeoutMs ?? this.options.requestTimeoutMs ?? 30_000,
      });
      this.options.onReachability?.(true);
      return { status: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      if (options.signal?.aborted) throw new WardenError('ABORTED', 'request aborted', { cause: error });
      this.options.onReachability?.(false);
      throw new WardenError('CVAT_UNREACHABLE', `cannot reach CVAT at ${this.baseUrl}: ${describeError(error)}`, { cause: error });
    }
  }

  /** GET a JSON document, mapping auth failures and non-JSON answers to clear errors. */
  async getJson(path: string, query?: Record<string, string | number | undefined>, signal?: AbortSignal, withOrganization = false): Promise<unknown> {
    const response = await this.raw(path, { query, signal, withOrganization });
    const text = await response.body.text();
    if (response.status === 401) {
      throw new WardenError('CVAT_AUTH_REFUSED', `CVAT answered 401 for ${path}: ${describeCredentialProblem(this.options.credentials)}`);
    }
    if (response.status === 403) {
      throw new WardenError(
        'CVAT_FORBIDDEN',
        `CVAT answered 403 for ${path}: the account is not allowed to read it; warming needs an admin account or an organization owner/maintainer (or a personal access token of one)${this.options.organization ? ` in organization "${this.options.organization}"` : ''}`,
      );
    }
    if (response.status < 200 || response.status >= 300) {
      throw new CvatHttpError(response.status, path, text.slice(0, 200).replace(/\s+/g, ' ').trim());
    }
    try {
      return JSON.parse(text);
    } catch {
      const type = String(response.headers['content-type'] ?? 'unknown type');
      throw new WardenError('CVAT_BAD_RESPONSE', `CVAT answered ${path} with something that is not JSON (${type}); is the URL ${this.baseUrl} really a CVAT server?`);
    }
  }

  /** `GET /api/server/about`; a 404 there usually means the URL is not CVAT or CVAT 1.x. */
  async about(signal?: AbortSignal): Promise<About> {
    let document: unknown;
    try {
      document = await this.getJson('/api/server/about', undefined, signal);
    } catch (error) {
      if (error instanceof CvatHttpError && error.status === 404) {
        throw new WardenError(
          'CVAT_UNREACHABLE',
          `no CVAT API at ${this.baseUrl} (GET /api/server/about answered 404): check the URL and its path prefix; CVAT 1.x (/api/v1) is unsupported`,
        );
      }
      throw error;
    }
    const parsed = AboutSchema.safeParse(document);
    if (!parsed.success) throw new WardenError('CVAT_BAD_RESPONSE', `unexpected /api/server/about answer: ${summarizeIssues(parsed.error)}`);
    return parsed.data;
  }

  /** Version-dependent behaviour, read once per client. */
  features(signal?: AbortSignal): Promise<CvatFeatures> {
    this.featuresPromise ??= this.about(signal).then((about) => featuresFor(parseCvatVersion(about.version)));
    this.featuresPromise.catch(() => (this.featuresPromise = undefined));
    return this.featuresPromise;
  }

  /** Pages through a list endpoint, yielding raw items. */
  async *paginate(path: string, query: Record<string, string | number | undefined> = {}, signal?: AbortSignal): AsyncGenerator<unknown> {
    let page = 1;
    for (;;) {
      const document = await this.getJson(path, { ...query, page, page_size: this.options.pageSize ?? 500 }, signal, true);
      const parsed = PageSchema.safeParse(document);
      if (!parsed.success) throw new WardenError('CVAT_BAD_RESPONSE', `unexpected list answer from ${path}: ${summarizeIssues(parsed.error)}`);
      yield* parsed.data.results;
      if (!parsed.data.next || parsed.data.results.length === 0) return;
      // Follow the page number, not the absolute `next` URL: behind a proxy CVAT may
      // report its internal host name there.
      const nextPage = Number(new URL(parsed.data.next, this.baseUrl).searchParams.get('page'));
      page = Number.isInteger(nextPage) && nextPage > page ? nextPage : page + 1;
    }
  }

  async *tasks(filters: { projectId?: number; filter?: string; sort?: string } = {}, signal?: AbortSignal): AsyncGenerator<Checked<Task>> {
    for await (const item of this.paginate('/api/tasks', { project_id: filters.projectId, filter: filters.filter, sort: filters.sort }, signal)) {
      yield check(TaskSchema, item, 'task');
    }
  }

  async *jobs(filters: { taskId?: number; projectId?: number } = {}, signal?: AbortSignal): AsyncGenerator<Checked<Job>> {
    for await (const item of this.paginate('/api/jobs', { task_id: filters.taskId, project_id: filters.projectId }, signal)) {
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

  /** Idempotent; closes the own Agent (open keep-alive sockets) but not an injected dispatcher. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsDispatcher) await this.dispatcher.close();
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
