/**
 * Credentials (Token key from /api/auth/login, Bearer PAT, Basic), 401 texts, the data
 * permission (403 for users who may look but not read data), and organisation context
 * on lists (X-Organization / ?org= / sandbox).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../src/emulator/index.js';
import { http } from './support/emulator-http.js';

let emu: Emulator;
const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const ADMIN = { authorization: 'Bearer admin-pat' };
const OWNER = { authorization: basic('olga', 'olga-pw') };
const MAINT = { authorization: basic('max', 'max-pw') };
const SUPER = { authorization: basic('sue', 'sue-pw') };
const WORKER = { authorization: basic('will', 'will-pw') };
const OUTSIDER = { authorization: basic('otto', 'otto-pw') };

beforeAll(async () => {
  emu = await startEmulator({
    buildTimeMs: 1,
    chunkBytes: 1024,
    organizations: [
      { id: 1, slug: 'acme' },
      { id: 2, slug: 'other' },
    ],
    auth: {
      users: [
        { username: 'root', password: 'root-pw', isAdmin: true, accessTokens: ['admin-pat'], legacyKeys: ['root-key'] },
        { username: 'olga', password: 'olga-pw', orgRoles: { acme: 'owner' } },
        { username: 'max', password: 'max-pw', orgRoles: { acme: 'maintainer' } },
        { username: 'sue', password: 'sue-pw', orgRoles: { acme: 'supervisor' } },
        { username: 'will', password: 'will-pw', orgRoles: { acme: 'worker' } },
        { username: 'otto', password: 'otto-pw', orgRoles: { other: 'worker' } },
      ],
    },
    tasks: [
      { id: 1, name: 'acme task', size: 10, chunkSize: 5, segmentSize: 5, organization: 'acme', owner: 'root', jobAssignees: [null, 'will'] },
      { id: 2, name: 'otto sandbox', size: 4, owner: 'otto' },
      { id: 3, name: 'other org', size: 4, organization: 'other', owner: 'root' },
    ],
  });
});
afterAll(async () => emu.close());

const ids = async (path: string, headers: Record<string, string>): Promise<number[]> => {
  const r = await http(`${emu.url}${path}`, { headers });
  expect(r.status).toBe(200);
  return (r.json() as { results: Array<{ id: number }> }).results.map((x) => x.id);
};

describe('authentication', () => {
  it('about is public; everything else needs credentials', async () => {
    expect((await http(`${emu.url}/api/server/about`)).status).toBe(200);
    const none = await http(`${emu.url}/api/tasks`);
    expect([none.status, none.json()]).toEqual([401, { detail: 'Authentication credentials were not provided.' }]);
    expect(none.headers['www-authenticate']).toBe('Token');
  });

  it('rejects bad credentials with DRF texts', async () => {
    const cases: Array<[string, string]> = [
      ['Token nope', 'Invalid token.'],
      ['Bearer nope', 'Invalid token.'],
      [basic('root', 'wrong'), 'Invalid username/password.'],
      ['Token', 'Invalid token header. No credentials provided.'],
    ];
    for (const [authorization, detail] of cases) {
      const r = await http(`${emu.url}/api/users/self`, { headers: { authorization } });
      expect([r.status, r.json()]).toEqual([401, { detail }]);
    }
  });

  it('login returns a key usable as Authorization: Token', async () => {
    const bad = await http(`${emu.url}/api/auth/login`, { method: 'POST', body: { username: 'root', password: 'x' } });
    expect([bad.status, bad.json()]).toEqual([400, { non_field_errors: ['Unable to log in with provided credentials.'] }]);
    const ok = await http(`${emu.url}/api/auth/login`, { method: 'POST', body: { username: 'olga', password: 'olga-pw' } });
    const { key } = ok.json() as { key: string };
    expect(key).toMatch(/^[0-9a-f]{40}$/);
    const self = await http(`${emu.url}/api/users/self`, { headers: { authorization: `Token ${key}` } });
    expect(self.json()).toMatchObject({ username: 'olga', is_superuser: false, groups: ['user'] });
    const byEmail = await http(`${emu.url}/api/auth/login`, { method: 'POST', body: { email: 'root@cvat.example', password: 'root-pw' } });
    expect(byEmail.json()).toEqual({ key: 'root-key' });
  });

  it('accepts PATs (Bearer), legacy keys and Basic', async () => {
    for (const headers of [ADMIN, { authorization: 'Token root-key' }, { authorization: basic('root', 'root-pw') }]) {
      const r = await http(`${emu.url}/api/users/self`, { headers });
      expect(r.json()).toMatchObject({ username: 'root', is_superuser: true });
    }
  });
});

describe('permissions', () => {
  const chunk = (job: number): string => `${emu.url}/api/jobs/${job}/data?type=chunk&quality=compressed&index=0`;

  it('admins, org owners/maintainers and the assignee read data; supervisors and others get 403', async () => {
    expect((await http(chunk(1), { headers: ADMIN })).status).toBe(200);
    expect((await http(chunk(1), { headers: OWNER })).status).toBe(200);
    expect((await http(chunk(1), { headers: MAINT })).status).toBe(200);
    const sup = await http(chunk(1), { headers: SUPER });
    expect([sup.status, sup.json()]).toEqual([403, { detail: 'You do not have permission to perform this action.' }]);
    expect((await http(`${emu.url}/api/jobs/1`, { headers: SUPER })).status).toBe(200);
    expect((await http(`${emu.url}/api/jobs/1/data/meta`, { headers: SUPER })).status).toBe(200);
    expect((await http(chunk(2), { headers: WORKER })).status).toBe(200); // assigned
    expect((await http(chunk(1), { headers: WORKER })).status).toBe(403);
    expect((await http(`${emu.url}/api/tasks/1/data?type=chunk&number=0`, { headers: WORKER })).status).toBe(403);
    expect((await http(chunk(1), { headers: OUTSIDER })).status).toBe(403);
    expect((await http(`${emu.url}/api/tasks/2/data?type=chunk&number=0`, { headers: OUTSIDER })).status).toBe(200); // own task
    expect((await http(`${emu.url}/api/jobs/999/data?type=chunk&index=0`, { headers: OUTSIDER })).status).toBe(404);
  });

  it('lists follow the organisation context', async () => {
    expect(await ids('/api/tasks', ADMIN)).toEqual([3, 2, 1]);
    expect(await ids('/api/tasks?org=acme', ADMIN)).toEqual([1]);
    expect(await ids('/api/tasks', { ...ADMIN, 'X-Organization': 'other' })).toEqual([3]);
    expect(await ids('/api/tasks?org=', ADMIN)).toEqual([2]);
    expect(await ids('/api/tasks?org_id=1', ADMIN)).toEqual([1]);
    expect(await ids('/api/tasks', OWNER)).toEqual([]); // no org: only own/assigned
    expect(await ids('/api/tasks?org=acme', OWNER)).toEqual([1]);
    expect(await ids('/api/tasks?org=acme', SUPER)).toEqual([1]);
    expect(await ids('/api/tasks?org=acme', WORKER)).toEqual([1]); // assigned to one job
    expect(await ids('/api/jobs?org=acme', WORKER)).toEqual([2]);
    expect(await ids('/api/jobs?org=acme', OWNER)).toEqual([2, 1]);
    expect(await ids('/api/tasks', OUTSIDER)).toEqual([2]);
    expect(await ids('/api/organizations', OWNER)).toEqual([1]);
    expect(await ids('/api/organizations', ADMIN)).toEqual([2, 1]);
  });

  it('refuses foreign or unknown organisations and conflicting org parameters', async () => {
    expect((await http(`${emu.url}/api/tasks?org=acme`, { headers: OUTSIDER })).status).toBe(403);
    expect((await http(`${emu.url}/api/tasks?org=nope`, { headers: ADMIN })).status).toBe(404);
    expect((await http(`${emu.url}/api/tasks?org=acme`, { headers: { ...ADMIN, 'X-Organization': 'other' } })).status).toBe(400);
  });
});
