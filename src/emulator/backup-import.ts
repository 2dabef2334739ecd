/**
 * CVAT's version-specific task backups and the task backup import, for the emulator.
 *
 * Export (cvat/apps/engine/backup.py `TaskExporter._write_manifest`): before 2.52.0 a
 * share task's task.json keeps `data.storage: "share"`; 2.52.0 (commit 30e252aca,
 * cvat#9972) writes `"local"`. Every version leaves context images out of a share
 * task's zip (`_write_data`'s SHARE branch writes `self._db_data.images` only, cvat#9978).
 *
 * Import (2.73; views.py TaskViewSet.import_backup → mixins.py UploadMixin.upload_data →
 * background.py BackupImporter, file field `task_file`):
 *
 *   POST /api/tasks/backup  multipart task_file=<zip>  → 202 {rq_id}
 *   GET  /api/requests/{rq_id}                         → status …, finished: result_id = new task id
 *
 * The job runs backup.py `import_task` → `TaskImporter._import_task`: `data.storage` must
 * be `local` or `cloud_storage` (2.49.0+, commit cace87718: "Unexpected storage type in
 * the backup files"); before 2.49 a `share` zip reached create_thread as a share task and
 * failed reading `<share>/manifest.jsonl`. The new task is a local task whose frames are
 * the zip's `data/` images minus its context images, which task.py
 * `_find_and_filter_related_images` (utils/dataset_manifest/utils.py
 * `_find_related_images_2D`: `dir/related_images/<name>_<ext>/*`) attaches to their frame.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import yauzl from 'yauzl';
import { canViewTask, type UserDirectory } from './auth.js';
import { cvatDate, type Clock } from './clock.js';
import { HttpError, sendJson } from './http.js';
import type { Deployment } from './model.js';

const versionOf = (version: string): [number, number] => {
  const m = /^v?(\d+)\.(\d+)/.exec(version.trim());
  return [Number(m?.[1] ?? 2), Number(m?.[2] ?? 73)];
};
const atLeast = (version: string, minor: number): boolean => {
  const [major, mi] = versionOf(version);
  return major > 2 || (major === 2 && mi >= minor);
};

/** task.json `data.storage` CVAT `version` writes for a task stored as `storage`. */
export function backupStorageField(version: string, storage: string): string {
  if (storage === 'share') return atLeast(version, 52) ? 'local' : 'share';
  return storage === 'cloud_storage' ? 'local' : storage;
}

/** The largest upload the emulator takes (a bound, not CVAT's). */
const MAX_UPLOAD_BYTES = 512 * 1024 * 1024;

export interface ImportJob {
  id: string;
  owner: { id: number; username: string };
  status: 'queued' | 'started' | 'finished' | 'failed';
  message: string;
  createdMs: number;
  finishedMs: number | null;
  resultId: number | null;
}

export interface BackupImportOptions {
  deployment: Deployment;
  users: UserDirectory;
  clock: Clock;
  version: string;
}

function zipEntries(buffer: Buffer, maxEntries: number): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buffer, { lazyEntries: true, strictFileNames: true, validateEntrySizes: true }, (err, zip) => {
      if (err) {
        reject(err);
        return;
      }
      if (zip.entryCount > maxEntries) {
        reject(new Error('too many entries'));
        return;
      }
      const out = new Map<string, Buffer>();
      let total = 0;
      zip.on('error', reject);
      zip.on('end', () => resolve(out));
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName.endsWith('/')) {
          zip.readEntry();
          return;
        }
        total += entry.uncompressedSize;
        if (total > MAX_UPLOAD_BYTES * 4) {
          reject(new Error('zip too large'));
          return;
        }
        zip.openReadStream(entry, (e, stream) => {
          if (e) {
            reject(e);
            return;
          }
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => {
            out.set(entry.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

/** `dir/related_images/<stem>_<ext>/file` → `dir/<stem>.<ext>` (`_find_related_images_2D`). */
function frameOfRelated(name: string): string | undefined {
  const parts = name.split('/');
  if (parts.length < 3 || parts[parts.length - 3] !== 'related_images') return undefined;
  const folder = parts[parts.length - 2] ?? '';
  const cut = folder.lastIndexOf('_');
  if (cut <= 0) return undefined;
  return [...parts.slice(0, -3), `${folder.slice(0, cut)}.${folder.slice(cut + 1)}`].join('/');
}

export class BackupImportService {
  readonly #o: BackupImportOptions;
  readonly jobs = new Map<string, ImportJob>();
  /** The last zip each imported task came from, by new task id (tests read frames back). */
  readonly imported = new Map<number, { frames: string[]; related: Map<string, string[]>; projectId: number | null }>();

  constructor(o: BackupImportOptions) {
    this.#o = o;
  }

  /** POST /api/tasks/backup; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (!/^\/api\/tasks\/backup\/?$/.test(path)) return false;
    const user = this.#o.users.authenticate(req);
    if (req.method !== 'POST') throw new HttpError(405, { detail: `Method "${req.method ?? ''}" not allowed.` });
    const type = req.headers['content-type'] ?? '';
    if (!type.startsWith('multipart/form-data')) throw new HttpError(400, { task_file: ['No file was submitted.'] });
    void this.#accept(req, res, user, type).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 400;
      if (!res.headersSent) sendJson(req, res, status, error instanceof HttpError ? error.body : { detail: (error as Error).message });
    });
    return true;
  }

  async #accept(req: IncomingMessage, res: ServerResponse, user: { id: number; username: string }, type: string): Promise<void> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const part of req as AsyncIterable<Buffer>) {
      size += part.length;
      if (size > MAX_UPLOAD_BYTES) throw new HttpError(413, { detail: 'Request body too large.' });
      parts.push(part);
    }
    // undici's multipart parser (Node's Response.formData), as Django's MultiPartParser reads the form. Deprecated for
    // servers because it buffers the body; this is the emulator, and the body is already bounded and buffered above.
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    const form = await new Response(Buffer.concat(parts), { headers: { 'content-type': type } }).formData();
    const file = form.get('task_file');
    if (!file || typeof file === 'string') throw new HttpError(400, { task_file: ['No file was submitted.'] });
    const zip = Buffer.from(await file.arrayBuffer());
    const job: ImportJob = {
      id: `action=import&target=task&id=${randomUUID()}&subresource=backup`,
      owner: { id: user.id, username: user.username },
      status: 'queued',
      message: '',
      createdMs: this.#o.clock.now(),
      finishedMs: null,
      resultId: null,
    };
    this.jobs.set(job.id, job);
    sendJson(req, res, 202, { rq_id: job.id });
    try {
      job.status = 'started';
      job.resultId = await this.#import(zip);
      job.status = 'finished';
    } catch (error) {
      job.status = 'failed';
      job.message = (error as Error).message;
    }
    job.finishedMs = this.#o.clock.now();
  }

  async #import(zip: Buffer): Promise<number> {
    const entries = await zipEntries(zip, 200_000);
    const taskJson = entries.get('task.json');
    if (!taskJson) throw new Error('KeyError: "There is no item named \'task.json\' in the archive"');
    const manifest = JSON.parse(taskJson.toString('utf8')) as { name?: string; data?: { storage?: string; chunk_size?: number }; jobs?: unknown[] };
    const storage = manifest.data?.storage;
    if (storage !== 'local' && storage !== 'cloud_storage') {
      if (atLeast(this.#o.version, 49)) throw new Error('ValidationError: Unexpected storage type in the backup files');
      throw new Error("FileNotFoundError: [Errno 2] No such file or directory: '/home/django/share/manifest.jsonl'");
    }
    const frames: string[] = [];
    const related = new Map<string, string[]>();
    for (const name of [...entries.keys()].sort()) {
      if (!name.startsWith('data/') || name === 'data/manifest.jsonl' || name === 'data/index.json') continue;
      const rel = name.slice('data/'.length);
      const owner = frameOfRelated(rel);
      if (owner !== undefined) related.set(owner, [...(related.get(owner) ?? []), rel]);
      else frames.push(rel);
    }
    if (frames.length === 0) throw new Error('ValidationError: No media data found');
    const video = frames.length === 1 && /\.(mp4|avi|mov|mkv|webm)$/i.test(frames[0] ?? '');
    const task = this.#o.deployment.addTask({
      name: manifest.name ?? 'restored task',
      storage: 'local',
      ...(video ? { mediaType: 'video' as const, video: frames[0] ?? '' } : { frames, relatedFiles: frames.map((f) => related.get(f)?.length ?? 0) }),
      ...(manifest.data?.chunk_size ? { chunkSize: manifest.data.chunk_size } : {}),
    });
    this.imported.set(task.id, { frames, related, projectId: null });
    return task.id;
  }

  /** GET /api/requests/{id} for an import job; undefined when the id is not one. */
  requestJson(id: string, user: { id: number; isAdmin: boolean }): Record<string, unknown> | undefined {
    const job = this.jobs.get(id);
    if (!job || (!user.isAdmin && job.owner.id !== user.id)) return undefined;
    return {
      id: job.id,
      status: job.status,
      message: job.message,
      operation: { type: 'import:backup', target: 'task', project_id: null, task_id: null, job_id: null, org_id: null, format: null, function_id: null },
      progress: job.status === 'finished' ? 1 : null,
      created_date: cvatDate(job.createdMs),
      started_date: cvatDate(job.createdMs),
      finished_date: job.finishedMs === null ? null : cvatDate(job.finishedMs),
      expiry_date: null,
      owner: job.owner,
      result_url: null,
      result_id: job.resultId,
    };
  }

  /** PATCH /api/tasks/{id} {project_id}: moves a task into a project (serializers.py TaskWriteSerializer.update_project). */
  moveToProject(taskId: number, projectId: number, user: Parameters<typeof canViewTask>[0]): void {
    const task = this.#o.deployment.tasks.get(taskId);
    if (!task) throw new HttpError(404, { detail: 'Not found.' });
    if (!canViewTask(user, task)) throw new HttpError(403, { detail: 'You do not have permission to perform this action.' });
    task.projectId = projectId;
    const seen = this.imported.get(taskId);
    if (seen) seen.projectId = projectId;
  }
}
