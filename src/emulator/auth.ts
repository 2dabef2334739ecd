/**
 * Users, credentials and permissions (cvat-facts §6), simplified from CVAT's OPA rules:
 * - credentials: `Authorization: Token <key>` (legacy, also issued by /api/auth/login),
 *   `Authorization: Bearer <PAT>` (2.48+; older versions ignore it), HTTP Basic;
 * - reading task/job data is allowed to admins, the task owner/assignee, the job's assignee
 *   and owners/maintainers of the task's organisation (supervisors may look, not read data);
 * - lists: no org context → admins see all, others what they own or are assigned to;
 *   `?org=` (empty) → personal sandbox; `?org=<slug>` / `X-Organization` → that org.
 * Without an `auth` option every request is an anonymous admin.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError, forbidden, notFound } from './http.js';
import type { EmulatedJob, EmulatedTask } from './model.js';
import type { EmulatorAuth, OrgRole } from './spec.js';

export interface UserRecord {
  id: number;
  username: string;
  password: string | undefined;
  email: string;
  firstName: string;
  lastName: string;
  isAdmin: boolean;
  orgRoles: Record<string, OrgRole>;
}

export type OrgContext = { kind: 'none' } | { kind: 'sandbox' } | { kind: 'org'; id: number; slug: string };

const NOT_PROVIDED = 'Authentication credentials were not provided.';
const unauthorized = (detail: string): HttpError => new HttpError(401, { detail }, { 'WWW-Authenticate': 'Token' });

export class UserDirectory {
  readonly open: boolean;
  readonly #users = new Map<string, UserRecord>();
  readonly #byKey = new Map<string, UserRecord>();
  readonly #byToken = new Map<string, UserRecord>();
  readonly #accessTokens: boolean;

  constructor(auth: EmulatorAuth | undefined, opts: { accessTokens: boolean }) {
    this.open = auth === undefined;
    this.#accessTokens = opts.accessTokens;
    const users = auth?.users ?? [{ username: 'admin', isAdmin: true }];
    users.forEach((u, i) => {
      if (this.#users.has(u.username)) throw new Error(`duplicate user "${u.username}"`);
      const record: UserRecord = {
        id: u.id ?? i + 1,
        username: u.username,
        password: u.password,
        email: u.email ?? `${u.username}@cvat.example`,
        firstName: u.firstName ?? u.username,
        lastName: u.lastName ?? '',
        isAdmin: u.isAdmin ?? false,
        orgRoles: { ...(u.orgRoles ?? {}) },
      };
      this.#users.set(u.username, record);
      for (const key of u.legacyKeys ?? []) this.#byKey.set(key, record);
      for (const token of u.accessTokens ?? []) this.#byToken.set(token, record);
    });
  }

  all(): UserRecord[] {
    return [...this.#users.values()];
  }

  get(username: string): UserRecord | undefined {
    return this.#users.get(username);
  }

  /** Throws for unknown users when auth is configured; adds a plain user when it is not. */
  checkUser(username: string): void {
    if (this.#users.has(username)) return;
    if (!this.open) throw new Error(`unknown user "${username}" (add it to options.auth.users)`);
    const id = Math.max(0, ...[...this.#users.values()].map((u) => u.id)) + 1;
    this.#users.set(username, {
      id,
      username,
      password: undefined,
      email: `${username}@cvat.example`,
      firstName: username,
      lastName: '',
      isAdmin: false,
      orgRoles: {},
    });
  }

  defaultOwner(): string {
    const admin = this.all().find((u) => u.isAdmin) ?? this.all()[0];
    if (!admin) throw new Error('no users configured');
    return admin.username;
  }

  /** The REST key `POST /api/auth/login` returns: the user's first legacy key, else one derived from the name. */
  loginKey(user: UserRecord): string {
    for (const [key, u] of this.#byKey) if (u === user) return key;
    const key = createHash('sha1').update(`cvat-emulator:${user.username}`).digest('hex');
    this.#byKey.set(key, user);
    return key;
  }

  login(body: unknown): string {
    const b = (body ?? {}) as { username?: unknown; email?: unknown; password?: unknown };
    const password = typeof b.password === 'string' ? b.password : '';
    const user =
      typeof b.username === 'string' && b.username
        ? this.#users.get(b.username)
        : typeof b.email === 'string'
          ? this.all().find((u) => u.email === b.email)
          : undefined;
    if (!user || user.password === undefined || user.password !== password) {
      throw new HttpError(400, { non_field_errors: ['Unable to log in with provided credentials.'] });
    }
    return this.loginKey(user);
  }

  /** The requesting user; throws 401 like DRF. With `open`, always the first admin. */
  authenticate(req: IncomingMessage): UserRecord {
    const header = req.headers.authorization;
    if (this.open) return this.#users.get(this.defaultOwner()) as UserRecord;
    if (!header) throw unauthorized(NOT_PROVIDED);
    const [scheme = '', ...rest] = header.trim().split(/\s+/);
    const value = rest.join(' ');
    switch (scheme.toLowerCase()) {
      case 'token': {
        if (!value || rest.length !== 1) throw unauthorized('Invalid token header. No credentials provided.');
        const user = this.#byKey.get(value);
        if (!user) throw unauthorized('Invalid token.');
        return user;
      }
      case 'bearer': {
        if (!this.#accessTokens) throw unauthorized(NOT_PROVIDED); // pre-2.48: nobody handles Bearer
        const user = this.#byToken.get(value);
        if (!user) throw unauthorized('Invalid token.');
        return user;
      }
      case 'basic': {
        const decoded = Buffer.from(value, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        const user = colon > 0 ? this.#users.get(decoded.slice(0, colon)) : undefined;
        if (!user || user.password === undefined || user.password !== decoded.slice(colon + 1)) {
          throw unauthorized('Invalid username/password.');
        }
        return user;
      }
      default:
        throw unauthorized(NOT_PROVIDED);
    }
  }
}

/** `?org=`, `?org_id=`, `X-Organization` (cvat/apps/iam/middleware.py). */
export function resolveOrgContext(
  req: IncomingMessage,
  query: URLSearchParams,
  orgs: ReadonlyArray<{ id: number; slug: string }>,
  user: UserRecord,
): OrgContext {
  const header = req.headers['x-organization'];
  const headerSlug = Array.isArray(header) ? header[0] : header;
  const querySlug = query.get('org');
  const orgId = query.get('org_id');
  if (orgId !== null && (querySlug !== null || headerSlug !== undefined)) {
    throw new HttpError(400, ['You cannot specify "org_id" query parameter with "org" query parameter or "X-Organization" HTTP header at the same time.']);
  }
  if (querySlug !== null && headerSlug !== undefined && querySlug !== headerSlug) {
    throw new HttpError(400, ['You cannot specify "org" query parameter and "X-Organization" HTTP header with different values.']);
  }
  let org: { id: number; slug: string } | undefined;
  if (orgId !== null) {
    org = orgs.find((o) => String(o.id) === orgId);
    if (!org) throw notFound();
  } else {
    const slug = querySlug ?? headerSlug;
    if (slug === undefined) return { kind: 'none' };
    if (slug === '') return { kind: 'sandbox' };
    org = orgs.find((o) => o.slug === slug);
    if (!org) throw notFound();
  }
  if (!user.isAdmin && !user.orgRoles[org.slug]) throw forbidden();
  return { kind: 'org', id: org.id, slug: org.slug };
}

function roleOf(user: UserRecord, task: EmulatedTask): OrgRole | undefined {
  return task.organization ? user.orgRoles[task.organization.slug] : undefined;
}

function isTaskStaff(user: UserRecord, task: EmulatedTask): boolean {
  return task.owner === user.username || task.assignee === user.username;
}

function assignedToAnyJob(user: UserRecord, task: EmulatedTask): boolean {
  return task.jobs.some((j) => j.assignee === user.username);
}

/** List visibility under an org context, given whether the user is staff of the object ("own"). */
function visibleInList(user: UserRecord, task: EmulatedTask, own: boolean, ctx: OrgContext): boolean {
  if (ctx.kind === 'sandbox') return task.organization === null && (user.isAdmin || own);
  if (ctx.kind === 'org') {
    if (task.organization?.id !== ctx.id) return false;
    const role = roleOf(user, task);
    return user.isAdmin || role === 'owner' || role === 'maintainer' || role === 'supervisor' || own;
  }
  return user.isAdmin || own;
}

/** Task visible in a list under the given org context. */
export function taskInList(user: UserRecord, task: EmulatedTask, ctx: OrgContext): boolean {
  return visibleInList(user, task, isTaskStaff(user, task) || assignedToAnyJob(user, task), ctx);
}

export function jobInList(user: UserRecord, task: EmulatedTask, job: EmulatedJob, ctx: OrgContext): boolean {
  return visibleInList(user, task, isTaskStaff(user, task) || job.assignee === user.username, ctx);
}

/** `view` on a task detail endpoint (the org comes from the object). */
export function canViewTask(user: UserRecord, task: EmulatedTask): boolean {
  const role = roleOf(user, task);
  return user.isAdmin || isTaskStaff(user, task) || assignedToAnyJob(user, task) || role === 'owner' || role === 'maintainer' || role === 'supervisor';
}

export function canViewJob(user: UserRecord, task: EmulatedTask, job: EmulatedJob): boolean {
  const role = roleOf(user, task);
  return user.isAdmin || isTaskStaff(user, task) || job.assignee === user.username || role === 'owner' || role === 'maintainer' || role === 'supervisor';
}

/** `view:data`: admins, task staff, the job's assignee, org owners/maintainers. */
export function canReadData(user: UserRecord, task: EmulatedTask, job?: EmulatedJob): boolean {
  const role = roleOf(user, task);
  return user.isAdmin || isTaskStaff(user, task) || (job !== undefined && job.assignee === user.username) || role === 'owner' || role === 'maintainer';
}
