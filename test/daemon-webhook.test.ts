import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LruSet, WebhookReceiver, parseWebhookEvent, signBody, verifySignature } from '../src/daemon/webhook.js';
import { pythonJsonDumps } from './support/daemon-python-json.js';
import { readSharedJson, sharedCvatAvailable } from './support/shared-cvat.js';

const FIXTURES = resolve(import.meta.dirname, 'fixtures');
const goldenBody = readFileSync(resolve(FIXTURES, 'daemon-webhook-update-task.body'));
const golden = JSON.parse(readFileSync(resolve(FIXTURES, 'daemon-webhook-update-task.signature.json'), 'utf8')) as { secret: string; signature: string };

describe('verifySignature', () => {
  it('accepts the signature Python computed over the bytes CVAT sends', () => {
    expect(verifySignature(goldenBody, golden.signature, golden.secret)).toBe(true);
    expect(signBody(goldenBody, golden.secret)).toBe(golden.signature);
  });

  it('does not match a JSON.stringify re-serialisation of the same payload', () => {
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(goldenBody.toString('utf8'))));
    expect(reserialised.equals(goldenBody)).toBe(false);
    expect(verifySignature(reserialised, golden.signature, golden.secret)).toBe(false);
  });

  it('the test helper reproduces Python json.dumps byte for byte', () => {
    expect(pythonJsonDumps(JSON.parse(goldenBody.toString('utf8')))).toBe(goldenBody.toString('utf8'));
  });

  it('rejects wrong secrets, altered bodies and malformed headers without throwing', () => {
    const body = Buffer.from('{"event": "ping"}');
    const good = signBody(body, 'secret-1');
    expect(verifySignature(body, good, 'secret-1')).toBe(true);
    expect(verifySignature(body, good.toUpperCase().replace('SHA256=', 'sha256='), 'secret-1')).toBe(true); // hex case
    expect(verifySignature(body, good, 'secret-2')).toBe(false);
    expect(verifySignature(Buffer.from('{"event": "ping" }'), good, 'secret-1')).toBe(false);
    for (const header of [
      undefined,
      '',
      'sha256=',
      'sha256=zz',
      good.slice(0, -2),
      `${good}00`,
      good.replace('sha256=', 'sha1='),
      good.replace('sha256=', ''),
      'sha256=' + 'g'.repeat(64),
    ]) {
      expect(verifySignature(body, header, 'secret-1')).toBe(false);
    }
    expect(verifySignature(body, signBody(body, ''), '')).toBe(false);
  });

  it('accepts CVAT 2.3.x body+"\\n" signatures only when asked to', () => {
    const body = Buffer.from('{"event": "ping"}');
    const legacy = signBody(Buffer.concat([body, Buffer.from('\n')]), 'secret-1');
    expect(verifySignature(body, legacy, 'secret-1')).toBe(false);
    expect(verifySignature(body, legacy, 'secret-1', { legacyNewline: true })).toBe(true);
  });
});

const task = { id: 36, updated_date: '2026-05-11T17:25:43.643000Z', mode: 'interpolation', media_type: 'audio', size: 6914, jobs: { count: 2 } };
const job = { id: 65, task_id: 36, updated_date: '2026-05-11T17:25:43.641000Z', state: 'new' };

describe('parseWebhookEvent', () => {
  it('2.73 completed:request[create:task] finished → task_ready', () => {
    const event = parseWebhookEvent({
      event: 'completed:request[create:task]',
      request: {
        id: 'create:task-36',
        status: 'finished',
        operation: { type: 'create:task', target: 'task', task_id: 36 },
        finished_date: '2026-05-11T17:25:44Z',
      },
      webhook_id: 6,
    });
    expect(event).toMatchObject({ kind: 'task_ready', taskId: 36, source: 'request', webhookId: 6 });
    expect(
      parseWebhookEvent({ event: 'completed:request[create:task]', request: { id: 'x', status: 'failed', operation: { type: 'create:task', task_id: 36 } } }),
    ).toMatchObject({ kind: 'ignored' });
    expect(
      parseWebhookEvent({
        event: 'completed:request[export:dataset]',
        request: { id: 'x', status: 'finished', operation: { type: 'export:dataset', task_id: 36 } },
      }),
    ).toMatchObject({ kind: 'ignored' });
    expect(
      parseWebhookEvent({ event: 'completed:request[create:task]', request: { id: 'x', status: 'finished', operation: { type: 'create:task' } } }),
    ).toBeUndefined();
  });

  it('update:task whose mode or media_type leaves "" → task_ready; other updates → task_changed', () => {
    expect(parseWebhookEvent({ event: 'update:task', task, before_update: { mode: '' } })).toMatchObject({
      kind: 'task_ready',
      taskId: 36,
      source: 'task_update',
    });
    expect(parseWebhookEvent({ event: 'update:task', task, before_update: { media_type: '' } })).toMatchObject({ kind: 'task_ready' });
    expect(parseWebhookEvent({ event: 'update:task', task, before_update: {}, changes: { mode: { from: '', to: 'annotation' } } })).toMatchObject({
      kind: 'task_ready',
    });
    expect(parseWebhookEvent({ event: 'update:task', task, before_update: { data: null } })).toMatchObject({ kind: 'task_changed', taskId: 36 });
    expect(parseWebhookEvent({ event: 'update:task', task, before_update: { mode: 'annotation' } })).toMatchObject({ kind: 'task_changed' });
    expect(parseWebhookEvent({ event: 'update:task', task })).toMatchObject({ kind: 'task_changed' });
  });

  it('maps job and delete events, and ping', () => {
    expect(parseWebhookEvent({ event: 'create:job', job })).toMatchObject({ kind: 'task_ready', taskId: 36, jobId: 65, source: 'job_create' });
    expect(parseWebhookEvent({ event: 'update:job', job })).toMatchObject({ kind: 'job_changed', taskId: 36, jobId: 65 });
    expect(parseWebhookEvent({ event: 'delete:job', job })).toMatchObject({ kind: 'job_deleted', taskId: 36, jobId: 65 });
    expect(parseWebhookEvent({ event: 'delete:task', task })).toMatchObject({ kind: 'task_deleted', taskId: 36 });
    expect(parseWebhookEvent({ event: 'ping', webhook: { id: 6 } })).toMatchObject({ kind: 'ping' });
  });

  it('ignores events the warden does not use, including create:task (no data yet)', () => {
    for (const event of ['create:task', 'create:issue', 'update:project', 'delete:comment', 'update:organization', 'create:invitation']) {
      const payload = { event, task, issue: { id: 1 }, project: { id: 1 } };
      expect(parseWebhookEvent(payload)?.kind, event).toBe('ignored');
    }
  });

  it('returns undefined for payloads that are not CVAT webhooks or lack the ids it needs', () => {
    for (const json of [
      null,
      42,
      'update:task',
      [],
      {},
      { event: 5 },
      { event: 'update:task' },
      { event: 'update:task', task: { id: 'x' } },
      { event: 'update:job', job: { id: 65 } },
      { event: 'completed:request[create:task]' },
    ]) {
      expect(parseWebhookEvent(json), JSON.stringify(json)).toBeUndefined();
    }
  });

  it.runIf(sharedCvatAvailable())('understands every real task and job of the CVAT 2.73 / 2.14 / 2.5 fixtures', () => {
    for (const version of ['v2.73.0', 'v2.14.4', 'v2.5.0']) {
      const tasks = (readSharedJson(`${version}/tests/python/shared/assets/tasks.json`) as { results: Array<{ id: number }> }).results;
      const jobs = (readSharedJson(`${version}/tests/python/shared/assets/jobs.json`) as { results: Array<{ id: number; task_id: number }> }).results;
      for (const t of tasks) {
        expect(parseWebhookEvent({ event: 'update:task', task: t, before_update: { mode: '' }, webhook_id: 1 })).toMatchObject({
          kind: 'task_ready',
          taskId: t.id,
        });
        expect(parseWebhookEvent({ event: 'delete:task', task: t })).toMatchObject({ kind: 'task_deleted', taskId: t.id });
      }
      for (const j of jobs) expect(parseWebhookEvent({ event: 'update:job', job: j })).toMatchObject({ kind: 'job_changed', taskId: j.task_id, jobId: j.id });
    }
  });
});

describe('WebhookReceiver', () => {
  const secret = 'receiver-secret';
  const deliver = (receiver: WebhookReceiver, payload: unknown) => {
    const body = Buffer.from(pythonJsonDumps(payload));
    return receiver.receive(body, signBody(body, secret));
  };

  it('accepts once, then reports the retry as a duplicate', () => {
    const receiver = new WebhookReceiver({ secret });
    expect(deliver(receiver, { event: 'update:job', job }).outcome).toBe('accepted');
    expect(deliver(receiver, { event: 'update:job', job }).outcome).toBe('duplicate');
    // A later update of the same job is new.
    expect(deliver(receiver, { event: 'update:job', job: { ...job, updated_date: '2026-05-12T00:00:00Z' } }).outcome).toBe('accepted');
  });

  it('falls back to the body digest when a payload has no updated_date', () => {
    const receiver = new WebhookReceiver({ secret });
    const bare = { id: 7, task_id: 3 };
    expect(deliver(receiver, { event: 'update:job', job: bare }).outcome).toBe('accepted');
    expect(deliver(receiver, { event: 'update:job', job: bare }).outcome).toBe('duplicate');
    expect(deliver(receiver, { event: 'update:job', job: { ...bare, state: 'completed' } }).outcome).toBe('accepted');
  });

  it('never de-duplicates pings; reports ignored events; rejects unsigned, wrong and malformed', () => {
    const receiver = new WebhookReceiver({ secret });
    expect(deliver(receiver, { event: 'ping' }).outcome).toBe('accepted');
    expect(deliver(receiver, { event: 'ping' }).outcome).toBe('accepted');
    expect(deliver(receiver, { event: 'create:comment', comment: { id: 1 } }).outcome).toBe('ignored');
    const body = Buffer.from('{"event": "ping"}');
    expect(receiver.receive(body, undefined).outcome).toBe('rejected_signature');
    expect(receiver.receive(body, signBody(body, 'other')).outcome).toBe('rejected_signature');
    const notJson = Buffer.from('{"event": ');
    expect(receiver.receive(notJson, signBody(notJson, secret)).outcome).toBe('rejected_malformed');
    const wrongShape = Buffer.from('[1, 2]');
    expect(receiver.receive(wrongShape, signBody(wrongShape, secret)).outcome).toBe('rejected_malformed');
  });

  it('requires a secret', () => {
    expect(() => new WebhookReceiver({ secret: '' })).toThrow(/secret/);
  });
});

describe('LruSet', () => {
  it('evicts the least recently used key beyond its capacity', () => {
    const set = new LruSet(3);
    expect([set.add('a'), set.add('b'), set.add('c')]).toEqual([true, true, true]);
    expect(set.add('a')).toBe(false); // refreshes a
    set.add('d'); // evicts b
    expect(set.has('b')).toBe(false);
    expect(set.has('a')).toBe(true);
    expect(set.size).toBe(3);
    expect(() => new LruSet(0)).toThrow(RangeError);
  });
});
