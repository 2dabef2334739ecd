/**
 * The request pipeline: prefix → request kind → injected faults → authentication →
 * CVAT route (or the `/__emulator/` control API) → response, recorded in the state.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { canReadData, canViewJob, canViewTask, jobInList, resolveOrgContext, taskInList, type UserDirectory, type UserRecord } from './auth.js';
import type { BackupService } from './backups.js';
import type { CloudStorages } from './cloud.js';
import type { DataService } from './data.js';
import type { FaultDecision, FaultInjector } from './faults.js';
import { forbidden, HttpError, notFound, readJsonBody, send, sendEmpty, sendJson, sendServerError, setBodyFault } from './http.js';
import { control } from './control.js';
import { jobListSpec, taskListSpec } from './lists.js';
import { applyListQuery, paginate } from './query.js';
import { aboutJson, jobJson, jobMetaJson, organizationJson, taskJson, taskMetaJson, userJson, type SerializeContext } from './serialize.js';
import { InvalidShareDirectory, listShare } from './share.js';
import type { EmulatorState, RequestKind } from './state.js';

export interface ControlHooks {
  advanceClock(ms: number): number | null;
  touchSegment(jobId: number): void;
  deleteShareFile(path: string): Promise<'deleted' | 'missing' | 'refused'>;
}

export interface ServerDeps {
  prefix: string;
  users: UserDirectory;
  serialize: Omit<SerializeContext, 'base'>;
  organizations: ReadonlyArray<{ id: number; slug: string; name?: string; owner?: string }>;
  data: DataService;
  state: EmulatorState;
  faults: FaultInjector;
  shareDir: string | undefined;
  control: ControlHooks;
  /** Added before answering every CVAT request (not the control API): a remote CVAT's round trip. */
  latencyMs?: number;
  /** Task backups and the requests API (backups.ts). */
  backups?: BackupService;
  /** `/api/cloudstorages…` (cloud.ts). */
  cloud?: CloudStorages;
}

const PROXY_HTML = (status: number, text: string): string =>
  `<html>\r\n<head><title>${status} ${text}</title></head>\r\n<body>\r\n<center><h1>${status} ${text}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
const PROXY_TEXT: Record<number, string> = { 502: 'Bad Gateway', 503: 'Service Temporarily Unavailable', 504: 'Gateway Time-out' };

const ID = '(\\d+)';
const routes: Array<{ re: RegExp; kind: RequestKind | 'data' }> = [
  { re: /^\/api\/server\/about\/?$/, kind: 'about' },
  { re: /^\/api\/auth\/login\/?$/, kind: 'login' },
  { re: /^\/api\/users\/self\/?$/, kind: 'user_self' },
  { re: /^\/api\/organizations\/?$/, kind: 'organizations' },
  { re: /^\/api\/server\/share\/?$/, kind: 'share' },
  { re: /^\/api\/tasks\/?$/, kind: 'tasks_list' },
  { re: new RegExp(`^/api/tasks/${ID}/?$`), kind: 'task' },
  { re: new RegExp(`^/api/tasks/${ID}/data/meta/?$`), kind: 'task_meta' },
  { re: new RegExp(`^/api/tasks/${ID}/data/?$`), kind: 'data' },
  { re: new RegExp(`^/api/tasks/${ID}/preview/?$`), kind: 'task_preview' },
  { re: /^\/api\/jobs\/?$/, kind: 'jobs_list' },
  { re: new RegExp(`^/api/jobs/${ID}/?$`), kind: 'job' },
  { re: new RegExp(`^/api/jobs/${ID}/data/meta/?$`), kind: 'job_meta' },
  { re: new RegExp(`^/api/jobs/${ID}/data/?$`), kind: 'data' },
  { re: new RegExp(`^/api/jobs/${ID}/preview/?$`), kind: 'job_preview' },
];

function classify(path: string, query: URLSearchParams): { kind: RequestKind; id: number | null } {
  if (path.startsWith('/__emulator/')) return { kind: 'control', id: null };
  for (const route of routes) {
    const m = route.re.exec(path);
    if (!m) continue;
    const id = m[1] === undefined ? null : Number(m[1]);
    if (route.kind !== 'data') return { kind: route.kind, id };
    const owner = path.startsWith('/api/jobs/') ? 'job' : 'task';
    const type = query.get('type');
    const suffix =
      type === 'chunk' ? 'chunk' : type === 'context_image' ? 'context_image' : type === 'frame' ? 'frame' : type === 'preview' ? 'preview' : 'data_other';
    return { kind: `${owner}_${suffix}` as RequestKind, id };
  }
  return { kind: 'other', id: null };
}

export function createRequestHandler(deps: ServerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = performance.now();
    const at = deps.state.clock.now();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    } catch {
      send(res, 400, Buffer.from('<h1>Bad Request (400)</h1>'), { 'Content-Type': 'text/html' });
      return;
    }
    const path = apiPath(url.pathname, deps.prefix);
    const { kind, id } = classify(path, url.searchParams);
    const fault = deps.faults.decide(kind, `${url.pathname}${url.search}`);
    recordWhenDone(deps, req, res, { at, started, path, query: url.search, kind, ...(fault ? { fault: fault.label } : {}) });
    if (fault && injectFault(req, res, fault) === 'answered') return;
    const base = `http://${url.host}${deps.prefix}`;
    const info: RouteInfo = { path, kind, id, query: url.searchParams, base, absoluteUrl: new URL(`${base}${path}${url.search}`) };
    const latency = kind === 'control' ? 0 : (deps.latencyMs ?? 0);
    const routed = latency > 0 ? new Promise((resolve) => setTimeout(resolve, latency)).then(() => route(deps, req, res, info)) : route(deps, req, res, info);
    routed.catch((error: unknown) => answerError(req, res, error));
  };
}

/** The path below the emulator's prefix; outside it only the control API answers. */
function apiPath(pathname: string, prefix: string): string {
  if (prefix === '') return pathname;
  if (pathname === prefix || pathname.startsWith(`${prefix}/`)) return pathname.slice(prefix.length) || '/';
  return pathname.startsWith('/__emulator/') ? pathname : '/__outside_prefix__';
}

/** Records the request once its answer is handed to the OS ('finish') or the connection ends ('close': resets). */
function recordWhenDone(
  deps: ServerDeps,
  req: IncomingMessage,
  res: ServerResponse,
  seen: { at: number; started: number; path: string; query: string; kind: RequestKind; fault?: string },
): void {
  let recorded = false;
  const record = (): void => {
    if (recorded) return;
    recorded = true;
    deps.state.recordRequest({
      at: seen.at,
      method: req.method ?? 'GET',
      path: seen.path,
      query: seen.query,
      kind: seen.kind,
      status: res.headersSent ? res.statusCode : 0,
      durationMs: performance.now() - seen.started,
      ...(seen.fault ? { fault: seen.fault } : {}),
    });
  };
  res.once('finish', record);
  res.once('close', record);
}

/** A fault that answers in place of CVAT (reset, status), or one that mangles the real answer's body. */
function injectFault(req: IncomingMessage, res: ServerResponse, fault: FaultDecision): 'answered' | 'body' {
  if (fault.kind === 'reset') {
    const timer = setTimeout(() => req.socket.destroy(), fault.delayMs);
    timer.unref();
    return 'answered';
  }
  if (fault.kind === 'status') {
    const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {};
    if (fault.status === 429) sendEmpty(res, 429, headers);
    else if (fault.status === 500) sendServerError(res);
    else send(res, fault.status, Buffer.from(PROXY_HTML(fault.status, PROXY_TEXT[fault.status] ?? 'Error')), { 'Content-Type': 'text/html', ...headers });
    return 'answered';
  }
  setBodyFault(res, fault.kind === 'slowBody' ? { kind: 'slowBody', delayMs: fault.delayMs } : { kind: 'truncate', at: fault.at });
  return 'body';
}

/** An HttpError as CVAT answers it (empty, HTML or JSON); anything else is Django's bare 500. */
function answerError(req: IncomingMessage, res: ServerResponse, error: unknown): void {
  if (res.headersSent || res.destroyed) return;
  if (!(error instanceof HttpError)) {
    sendServerError(res);
    return;
  }
  if (error.body === null) sendEmpty(res, error.status, error.headers);
  else if (error.headers['Content-Type']?.startsWith('text/html')) {
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- text/html error bodies are built as strings; String() only guards the type
    send(res, error.status, Buffer.from(String(error.body)), error.headers);
  } else sendJson(req, res, error.status, error.body, error.headers);
}

interface RouteInfo {
  path: string;
  kind: RequestKind;
  id: number | null;
  query: URLSearchParams;
  base: string;
  absoluteUrl: URL;
}

/** What answers before (or without) authentication: control API, backups, cloud storages, login, about. */
async function routeOpen(deps: ServerDeps, req: IncomingMessage, res: ServerResponse, r: RouteInfo): Promise<boolean> {
  const method = req.method ?? 'GET';
  if (r.kind === 'control') {
    await control(deps, req, res, r.path);
    return true;
  }
  // PATCH /api/tasks/{id} (a restored backup moved into a project) is the backup service's too.
  if ((r.kind === 'other' || (r.kind === 'task' && method === 'PATCH')) && deps.backups && deps.backups.handle(req, res, r.path, r.query, r.base)) return true;
  if (r.kind === 'other' && deps.cloud) {
    const handled = deps.cloud.handle(req, res, r.path, r.query, deps.users, r.absoluteUrl);
    if (handled !== false) {
      if (handled !== true) await handled;
      return true;
    }
  }
  if (r.kind === 'other') throw notFound();
  if (r.kind === 'login') {
    if (method !== 'POST') throw new HttpError(405, { detail: `Method "${method}" not allowed.` });
    const key = deps.users.login(await readJsonBody(req));
    sendJson(req, res, 200, { key });
    return true;
  }
  if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, { detail: `Method "${method}" not allowed.` });
  if (r.kind === 'about') {
    sendJson(req, res, 200, aboutJson({ ...deps.serialize, base: r.base }));
    return true;
  }
  return false;
}

async function route(deps: ServerDeps, req: IncomingMessage, res: ServerResponse, r: RouteInfo): Promise<void> {
  if (await routeOpen(deps, req, res, r)) return;
  const user = deps.users.authenticate(req);
  if (await routeLists(deps, req, res, r, user)) return;
  if (r.kind.startsWith('task')) return routeTask(deps, req, res, r, user);
  return routeJob(deps, req, res, r, user);
}

/** The user itself and the lists (organizations, share, tasks, jobs), each filtered to what the user may see. */
async function routeLists(deps: ServerDeps, req: IncomingMessage, res: ServerResponse, r: RouteInfo, user: UserRecord): Promise<boolean> {
  const ser: SerializeContext = { ...deps.serialize, base: r.base };
  const deployment = deps.serialize.deployment;
  switch (r.kind) {
    case 'user_self':
      sendJson(req, res, 200, userJson(ser, user));
      return true;
    case 'organizations': {
      const orgs = deps.organizations.filter((o) => user.isAdmin || user.orgRoles[o.slug]);
      const sorted = [...orgs].sort((a, b) => b.id - a.id);
      sendJson(
        req,
        res,
        200,
        paginate(sorted, r.query, r.absoluteUrl, (o) => organizationJson(ser, o)),
      );
      return true;
    }
    case 'share':
      await share(deps, req, res, r.query);
      return true;
    case 'tasks_list': {
      const ctx = resolveOrgContext(req, r.query, deps.organizations, user);
      const visible = [...deployment.tasks.values()].filter((t) => taskInList(user, t, ctx));
      const listed = applyListQuery(visible, r.query, taskListSpec());
      sendJson(
        req,
        res,
        200,
        paginate(listed, r.query, r.absoluteUrl, (t) => taskJson(ser, t)),
      );
      return true;
    }
    case 'jobs_list': {
      const ctx = resolveOrgContext(req, r.query, deps.organizations, user);
      // task_id narrows the scan to that task's jobs, as CVAT's database index does (applyListQuery still applies the filter).
      const taskId = r.query.get('task_id');
      const candidates = taskId !== null && /^\d+$/.test(taskId) ? (deployment.tasks.get(Number(taskId))?.jobs ?? []) : deployment.jobs.values();
      const visible = [...candidates].filter((j) => jobInList(user, deployment.taskOf(j), j, ctx));
      const listed = applyListQuery(visible, r.query, jobListSpec(deployment));
      sendJson(
        req,
        res,
        200,
        paginate(listed, r.query, r.absoluteUrl, (j) => jobJson(ser, deployment.taskOf(j), j)),
      );
      return true;
    }
    default:
      return false;
  }
}

/** /api/tasks/{id} and below: the task, its meta, its data and preview. */
async function routeTask(deps: ServerDeps, req: IncomingMessage, res: ServerResponse, r: RouteInfo, user: UserRecord): Promise<void> {
  const ser: SerializeContext = { ...deps.serialize, base: r.base };
  const task = deps.serialize.deployment.tasks.get(r.id ?? -1);
  if (!task) throw notFound();
  if (!canViewTask(user, task)) throw forbidden();
  if (r.kind === 'task') {
    sendJson(req, res, 200, taskJson(ser, task));
    return;
  }
  if (r.kind === 'task_meta') {
    if (task.dataId === null) throw new Error("'NoneType' object has no attribute 'images'");
    sendJson(req, res, 200, taskMetaJson(ser, task));
    return;
  }
  if (!canReadData(user, task)) throw forbidden();
  if (r.kind === 'task_preview' && r.path.endsWith('/preview')) return deps.data.preview(res, task);
  return deps.data.task(req, res, r.query, task);
}

/** /api/jobs/{id} and below: the job, its meta, its data and preview. */
async function routeJob(deps: ServerDeps, req: IncomingMessage, res: ServerResponse, r: RouteInfo, user: UserRecord): Promise<void> {
  const ser: SerializeContext = { ...deps.serialize, base: r.base };
  const deployment = deps.serialize.deployment;
  const job = deployment.jobs.get(r.id ?? -1);
  if (!job) throw notFound();
  const task = deployment.taskOf(job);
  if (!canViewJob(user, task, job)) throw forbidden();
  if (r.kind === 'job') {
    sendJson(req, res, 200, jobJson(ser, task, job));
    return;
  }
  if (r.kind === 'job_meta') {
    sendJson(req, res, 200, jobMetaJson(ser, task, job));
    return;
  }
  if (!canReadData(user, task, job)) throw forbidden();
  if (r.kind === 'job_preview' && r.path.endsWith('/preview')) return deps.data.preview(res, task, job);
  return deps.data.job(req, res, r.query, task, job);
}

async function share(deps: ServerDeps, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const directory = query.get('directory');
  if (!deps.shareDir) {
    if (directory === null || directory === '/' || directory === '') {
      sendJson(req, res, 200, []);
      return;
    }
    throw new HttpError(400, `${directory.replace(/^\//, '')} is an invalid directory`);
  }
  try {
    sendJson(req, res, 200, await listShare(deps.shareDir, directory, query.get('search')));
    return;
  } catch (error) {
    if (error instanceof InvalidShareDirectory) throw new HttpError(400, error.message);
    throw error;
  }
}
