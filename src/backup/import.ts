/**
 * Imports a kept backup into CVAT through its backup-import API (2.73; views.py
 * TaskViewSet.import_backup → mixins.py UploadMixin.upload_data: a POST without Upload-*
 * headers is the one-request upload → background.py BackupImporter, file field `task_file`):
 *
 *   POST /api/tasks/backup   multipart/form-data task_file=<zip>  → 202 {rq_id}
 *   GET  /api/requests/{rq_id}                                    → finished: result_id = the new task
 *
 * `--project`: 2.73's task import takes no project (backup.py `import_task(filename, user,
 * org_id)`), so the task is moved after: PATCH /api/tasks/{id} {project_id}
 * (serializers.py TaskWriteSerializer.update_project: the project must have the task's labels).
 *
 * The zip is streamed from disk; a zip this CVAT refuses but CVAT's code proves imports
 * once repaired (restorability.ts) is repaired into the store's temp directory first, and
 * that temp file is removed afterwards.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { RequestPoll } from './request-poll.js';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import { readCapped } from '../cvat/limits.js';
import { CvatHttpError, WardenError } from '../errors.js';
import { restorabilityOf } from './restorability.js';
import { rewriteBackup } from './rewrite.js';
import type { OwnedFile } from '../state/owned-file.js';
import type { BackupStore } from './store.js';
import { verifyBackup } from './verify.js';

/** The backup cannot be restored, or CVAT refused it: exit 1 with this message. */
export class BackupRestoreError extends Error {
  override name = 'BackupRestoreError';
}

export interface ImportOptions {
  projectId?: number;
  timeoutMs: number;
  pollIntervalMs?: number;
  signal?: AbortSignal;
}

export interface ImportResult {
  taskId: number;
  repaired: boolean;
  projectId: number | null;
}

async function json(client: CvatClient, path: string, init: Parameters<CvatClient['raw']>[1]): Promise<{ status: number; body: unknown }> {
  const response = await client.raw(path, init);
  const text = (
    await readCapped(response.body, 1024 * 1024, () => new WardenError('CVAT_BAD_RESPONSE', `CVAT's answer to ${path} is larger than 1 MiB`))
  ).toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // kept as text
  }
  if (response.status === 401 || response.status === 403)
    throw new WardenError(
      response.status === 401 ? 'CVAT_AUTH_REFUSED' : 'CVAT_FORBIDDEN',
      `CVAT answered ${response.status} for ${path}: the account may not import tasks`,
    );
  return { status: response.status, body };
}

const field = (v: unknown, k: string): unknown => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined);
const short = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v)).slice(0, 300);

/** The multipart body, streamed: header, the zip, trailer (RFC 7578). */
function multipart(file: string, size: number): { body: Readable; headers: Record<string, string> } {
  const boundary = `----cvat-warden-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="task_file"; filename="backup.zip"\r\nContent-Type: application/zip\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  async function* parts() {
    yield head;
    yield* createReadStream(file);
    yield tail;
  }
  return {
    body: Readable.from(parts()),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + size + tail.length) },
  };
}

/** Checks the zip, repairs it when that is proven to import, uploads it and waits for the new task id. */
export async function importBackup(client: CvatClient, features: CvatFeatures, store: BackupStore, file: string, o: ImportOptions): Promise<ImportResult> {
  const verdict = await verifyBackup(file, []);
  if (!verdict.ok || !verdict.facts) throw new BackupRestoreError(`${file} is not a good CVAT task backup: ${verdict.problem ?? 'unreadable'}`);
  const r = restorabilityOf(verdict.facts, features.version);
  if (!r.restorable && !r.repairable) throw new BackupRestoreError(`${file}: ${r.reason ?? 'not restorable'}`);
  let upload = file;
  let repaired: OwnedFile | undefined;
  try {
    if (r.repairable) {
      repaired = (await rewriteBackup(file, await store.tempFile(), { patchData: (d) => ({ ...d, storage: 'local' }), maxAddedBytes: 0 })).file;
      upload = repaired.path;
    }
    const size = (await fs.stat(upload)).size;
    const { body, headers } = multipart(upload, size);
    const started = await json(client, '/api/tasks/backup', {
      method: 'POST',
      body,
      headers,
      withOrganization: true,
      deadlineMs: o.timeoutMs,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const rqId = field(started.body, 'rq_id');
    if (started.status !== 202 || typeof rqId !== 'string' || rqId.length > 1024)
      throw new CvatHttpError(started.status, '/api/tasks/backup', short(started.body));
    const deadline = Date.now() + o.timeoutMs;
    const poll = new RequestPoll(deadline, o.pollIntervalMs, o.signal);
    let taskId: number | undefined;
    for (;;) {
      const polled = await json(client, `/api/requests/${encodeURIComponent(rqId)}`, o.signal ? { signal: o.signal } : {});
      if (polled.status !== 200) throw new CvatHttpError(polled.status, '/api/requests/{rq_id}', short(polled.body));
      const status = field(polled.body, 'status');
      if (status === 'finished') {
        const id = field(polled.body, 'result_id');
        if (typeof id !== 'number' || !Number.isInteger(id)) throw new WardenError('CVAT_BAD_RESPONSE', 'CVAT finished the import but gave no result_id');
        taskId = id;
        break;
      }
      if (status === 'failed') throw new BackupRestoreError(`CVAT could not import ${file}: ${short(field(polled.body, 'message') ?? 'no message')}`);
      if (Date.now() > deadline) throw new WardenError('CVAT_TIMEOUT', `CVAT's import of ${file} did not finish within ${o.timeoutMs} ms (--backup-timeout)`);
      await poll.wait();
    }
    if (o.projectId !== undefined) {
      const moved = await json(client, `/api/tasks/${taskId}`, {
        method: 'PATCH',
        body: JSON.stringify({ project_id: o.projectId }),
        headers: { 'content-type': 'application/json' },
        withOrganization: true,
        ...(o.signal ? { signal: o.signal } : {}),
      });
      if (moved.status !== 200)
        throw new BackupRestoreError(`task ${taskId} was created, but CVAT refused to move it into project ${o.projectId}: ${short(moved.body)}`);
    }
    return { taskId, repaired: r.repairable, projectId: o.projectId ?? null };
  } finally {
    await repaired?.discard();
  }
}
