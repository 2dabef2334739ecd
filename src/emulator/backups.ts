/**
 * CVAT's task backup flow (2.73), for the emulator:
 *
 *   POST /api/tasks/{id}/backup/export        → 202 {rq_id} (409 with the same body while one runs)
 *   GET  /api/requests/{rq_id}                → Request {status queued|started|finished|failed, message, result_url…}
 *   GET  /api/tasks/{id}/backup/download?rq_id → the zip (only via result_url)
 *
 * (cvat/apps/engine/mixins.py BackupMixin, views.py, apps/engine/backup.py.) The export
 * runs like an RQ job on the shared export workers — two, as CVAT 2.73's docker-compose.yml
 * runs `cvat_worker_export` with NUMPROCS 2 — queued beyond that. Its zip follows
 * backup.py: `task.json` (data.storage rewritten to "local"), `annotations.json`, and
 * `data/<path relative to the share>` for every image (or the video) read from the share
 * — `_write_data`'s `StorageChoice.SHARE` branch — plus `data/manifest.jsonl`. A share file
 * that is gone fails the job with FileNotFoundError, as Python's open() does.
 */
import fs from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import yazl from 'yazl';
import { canViewTask, type UserDirectory } from './auth.js';
import { cvatDate, type Clock } from './clock.js';
import { HttpError, notFound, forbidden, readJsonBody, send, sendJson } from './http.js';
import type { Deployment, EmulatedTask } from './model.js';
import { resolveInShare } from './share.js';
import { BackupImportService, backupStorageField } from './backup-import.js';
import type { CloudStorages } from './cloud.js';

export interface BackupJob {
  id: string;
  taskId: number;
  owner: { id: number; username: string };
  status: 'queued' | 'started' | 'finished' | 'failed';
  message: string;
  createdMs: number;
  startedMs: number | null;
  finishedMs: number | null;
  zip: Buffer | null;
  /**
   * `lightweight` as background.py reads it: `to_bool(query_params.get("lightweight", False))`, and only
   * possible for cloud-storage tasks (`is_lightweight_possible`) — heavyweight unless asked.
   */
  lightweight: boolean;
}

export interface BackupServiceOptions {
  deployment: Deployment;
  users: UserDirectory;
  clock: Clock;
  shareDir: string | undefined;
  /** Buckets of cloud-storage tasks (cloud.ts). */
  cloud?: CloudStorages;
  /** Time an export takes on the worker. Default 50 ms. */
  exportTimeMs?: number;
  /** Export worker processes (CVAT 2.73 compose: NUMPROCS 2). Default 2. */
  exportWorkers?: number;
  /** CVAT version emulated: decides task.json's `data.storage` and the import's checks (backup-import.ts). Default 2.73.0. */
  version?: string;
}

const ROUTES = {
  export: /^\/api\/tasks\/(\d+)\/backup\/export\/?$/,
  download: /^\/api\/tasks\/(\d+)\/backup\/download\/?$/,
  legacy: /^\/api\/tasks\/(\d+)\/backup\/?$/,
  request: /^\/api\/requests\/([^/]+)\/?$/,
};

/** Frame bytes of a local (non-share) task: what CVAT keeps in its own data directory. */
const localFrame = (task: EmulatedTask, name: string): Buffer => Buffer.from(`local frame ${task.id}/${name}\n`);

export class BackupService {
  readonly #o: BackupServiceOptions;
  readonly jobs = new Map<string, BackupJob>();
  readonly #waiting: Array<() => void> = [];
  #busyWorkers = 0;
  /** Downloads to cut short (a test's corrupt download); counts down. */
  corruptDownloads = 0;
  /** Downloads that never end (a proxy or CVAT looping): the zip, then zeros until the client goes away; counts down. */
  endlessDownloads = 0;
  /** Tasks whose export hangs in `started` and holds its worker (a worker stuck on a dead mount). */
  readonly stuckExports = new Set<number>();
  exportsRun = 0;
  /** Bytes sent in backup downloads. */
  downloadBytes = 0;

  /** POST /api/tasks/backup and its requests (backup-import.ts). */
  readonly imports: BackupImportService;

  constructor(o: BackupServiceOptions) {
    this.#o = o;
    this.imports = new BackupImportService({ deployment: o.deployment, users: o.users, clock: o.clock, version: o.version ?? '2.73.0' });
  }

  /** Handles the backup and request routes; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, base: string): boolean {
    const method = req.method ?? 'GET';
    if (this.imports.handle(req, res, path)) return true;
    const patchMatch = method === 'PATCH' ? /^\/api\/tasks\/(\d+)\/?$/.exec(path) : null;
    if (patchMatch) {
      void this.#patchProject(req, res, Number(patchMatch[1]));
      return true;
    }
    const exportMatch = ROUTES.export.exec(path);
    const downloadMatch = ROUTES.download.exec(path);
    const requestMatch = ROUTES.request.exec(path);
    const legacyMatch = ROUTES.legacy.exec(path);
    if (!exportMatch && !downloadMatch && !requestMatch && !legacyMatch) return false;
    const user = this.#o.users.authenticate(req);
    if (requestMatch) {
      if (method !== 'GET') throw new HttpError(405, { detail: `Method "${method}" not allowed.` });
      const imported = this.imports.requestJson(decodeURIComponent(requestMatch[1] ?? ''), user);
      if (imported) {
        sendJson(req, res, 200, imported);
        return true;
      }
      const job = this.jobs.get(decodeURIComponent(requestMatch[1] ?? ''));
      if (!job || (!user.isAdmin && job.owner.id !== user.id)) throw notFound();
      sendJson(req, res, 200, this.requestJson(job, base));
      return true;
    }
    const task = this.#o.deployment.tasks.get(Number((exportMatch ?? downloadMatch ?? legacyMatch)?.[1]));
    if (!task) throw notFound();
    if (!canViewTask(user, task)) throw forbidden();
    if (legacyMatch) {
      // 2.32+: the GET flow is gone (cvat#9075); views.py answers 410 pointing at backup/export.
      throw new HttpError(410, {
        detail: 'This endpoint is no longer supported. Use POST /api/tasks/{id}/backup/export and GET /api/requests/{rq_id} instead.',
      });
    }
    if (exportMatch) {
      if (method !== 'POST') throw new HttpError(405, { detail: `Method "${method}" not allowed.` });
      if (task.dataId === null) throw new HttpError(400, ['Backup of a task without data is not allowed']);
      const id = `action=export&target=task&target_id=${task.id}&subresource=backup&user_id=${user.id}`;
      const running = this.jobs.get(id);
      if (running && (running.status === 'queued' || running.status === 'started')) {
        sendJson(req, res, 409, { rq_id: id });
        return true;
      }
      const job: BackupJob = {
        id,
        taskId: task.id,
        owner: { id: user.id, username: user.username },
        status: 'queued',
        message: '',
        createdMs: this.#o.clock.now(),
        startedMs: null,
        finishedMs: null,
        zip: null,
        lightweight: toBool(query.get('lightweight')) && task.storage === 'cloud_storage',
      };
      this.jobs.set(id, job);
      void this.#onWorker(() => this.#run(job, task));
      sendJson(req, res, 202, { rq_id: id });
      return true;
    }
    if (method !== 'GET') throw new HttpError(405, { detail: `Method "${method}" not allowed.` });
    const job = this.jobs.get(query.get('rq_id') ?? '');
    if (!job || job.taskId !== task.id || job.status !== 'finished' || !job.zip) throw new HttpError(400, ['Unknown export request id']);
    let body = job.zip;
    if (this.endlessDownloads > 0) {
      this.endlessDownloads--;
      this.#endless(res, body);
      return true;
    }
    this.downloadBytes += body.length;
    if (this.corruptDownloads > 0) {
      this.corruptDownloads--;
      body = Buffer.concat([body.subarray(0, Math.floor(body.length / 2)), Buffer.alloc(64, 0x5a)]);
    }
    send(res, 200, body, { 'Content-Type': 'application/zip', 'Content-Disposition': `attachment; filename="task_${task.id}_backup.zip"` });
    return true;
  }

  /** PATCH /api/tasks/{id} with {project_id}: the one task update the emulator knows (restore --project). */
  async #patchProject(req: IncomingMessage, res: ServerResponse, taskId: number): Promise<void> {
    try {
      const user = this.#o.users.authenticate(req);
      const body = (await readJsonBody(req)) as { project_id?: unknown };
      if (typeof body.project_id !== 'number' || !Number.isInteger(body.project_id) || body.project_id < 1)
        throw new HttpError(400, { project_id: ['A valid integer is required.'] });
      this.imports.moveToProject(taskId, body.project_id, user);
      sendJson(req, res, 200, { id: taskId, project_id: body.project_id });
    } catch (error) {
      if (!res.headersSent) sendJson(req, res, error instanceof HttpError ? error.status : 500, error instanceof HttpError ? error.body : { detail: 'error' });
    }
  }

  requestJson(job: BackupJob, base: string): Record<string, unknown> {
    const task = this.#o.deployment.tasks.get(job.taskId);
    return {
      id: job.id,
      status: job.status,
      message: job.message,
      operation: {
        type: 'export:backup',
        target: 'task',
        project_id: task?.projectId ?? null,
        task_id: job.taskId,
        job_id: null,
        org_id: task?.organization?.id ?? null,
        format: null,
        function_id: null,
        lightweight: job.lightweight,
      },
      progress: job.status === 'finished' ? 1 : job.status === 'started' ? 0.5 : null,
      created_date: cvatDate(job.createdMs),
      started_date: job.startedMs === null ? null : cvatDate(job.startedMs),
      finished_date: job.finishedMs === null ? null : cvatDate(job.finishedMs),
      expiry_date: job.finishedMs === null ? null : cvatDate(job.finishedMs + 24 * 3600_000),
      owner: job.owner,
      result_url: job.status === 'finished' ? `${base}/api/tasks/${job.taskId}/backup/download?rq_id=${encodeURIComponent(job.id)}` : null,
      result_id: null,
    };
  }

  /** Runs `work` when an export worker is free; a stuck export never frees its worker. */
  async #onWorker(work: () => Promise<boolean>): Promise<void> {
    if (this.#busyWorkers >= (this.#o.exportWorkers ?? 2)) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#busyWorkers++;
    if (!(await work())) return;
    this.#busyWorkers--;
    this.#waiting.shift()?.();
  }

  /** Headers without a length, the zip, then zeros for as long as the client reads (paced by backpressure). */
  #endless(res: ServerResponse, zip: Buffer): void {
    res.writeHead(200, { 'Content-Type': 'application/zip' });
    const zeros = Buffer.alloc(256 * 1024);
    let first = true;
    const pump = () => {
      while (!res.destroyed) {
        const chunk = first ? zip : zeros;
        first = false;
        this.downloadBytes += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  }

  /** One export on a worker; false when it hangs (the worker stays taken). */
  async #run(job: BackupJob, task: EmulatedTask): Promise<boolean> {
    job.status = 'started';
    job.startedMs = this.#o.clock.now();
    this.exportsRun++;
    if (this.stuckExports.has(task.id)) return false;
    await new Promise((r) => setTimeout(r, this.#o.exportTimeMs ?? 50));
    try {
      job.zip = await this.#zip(task, job.lightweight);
      job.status = 'finished';
    } catch (error) {
      job.status = 'failed';
      job.message = (error as Error).message;
    }
    job.finishedMs = this.#o.clock.now();
    return true;
  }

  /** Media names as backup.py writes them: relative to the share root for share tasks. */
  #mediaNames(task: EmulatedTask): string[] {
    if (task.video) return [task.video.path];
    return [...new Set(task.frames.map((f) => f.name))];
  }

  async #zip(task: EmulatedTask, lightweight: boolean): Promise<Buffer> {
    const zip = new yazl.ZipFile();
    const names = this.#mediaNames(task);
    // backup.py `_write_data`: a lightweight cloud backup holds only the manifest; a heavyweight one
    // downloads every image and related file (`_write_data_from_cloud_storage`).
    const media = lightweight ? [] : task.storage === 'cloud_storage' ? [...names, ...new Set(task.frames.flatMap((f) => f.relatedPaths))] : names;
    for (const name of media) {
      let bytes: Buffer;
      if (task.storage === 'cloud_storage') {
        if (!this.#o.cloud) throw new Error('Task is not connected to cloud storage');
        bytes = await this.#o.cloud.objectBytes(task.cloudStorageId, name).catch((error: unknown) => {
          throw new Error(error instanceof Error ? error.message.replace(/^HTTP \d+: /, '') : String(error));
        });
      } else if (task.storage === 'share') {
        const abs = this.#o.shareDir ? resolveInShare(this.#o.shareDir, name) : null;
        try {
          if (!abs) throw Object.assign(new Error('outside'), { code: 'ENOENT' });
          bytes = await fs.readFile(abs);
        } catch {
          throw new Error(`FileNotFoundError: [Errno 2] No such file or directory: '/home/django/share/${name}'`);
        }
      } else bytes = localFrame(task, name);
      zip.addBuffer(bytes, `data/${name.replace(/^\/+/, '')}`, { mtime: new Date(this.#o.clock.now()) });
    }
    const manifest = [
      JSON.stringify({ version: '1.1' }),
      JSON.stringify({ type: task.video ? 'video' : 'images' }),
      ...names.map((name) => JSON.stringify({ name: name.replace(/\.[^./]+$/, ''), extension: name.slice(name.lastIndexOf('.')) })),
    ];
    zip.addBuffer(Buffer.from(`${manifest.join('\n')}\n`), 'data/manifest.jsonl');
    const jobs = task.jobs.map((j) => {
      const seg = this.#o.deployment.segments.get(j.segmentId);
      return { status: j.stage, type: j.type, start_frame: seg?.startFrame ?? 0, stop_frame: seg?.stopFrame ?? 0 };
    });
    const taskJson = {
      name: task.name,
      bug_tracker: '',
      status: 'annotation',
      subset: task.subset,
      labels: [],
      version: '1.0',
      data: {
        chunk_size: task.chunkSize,
        image_quality: task.imageQuality,
        start_frame: task.geometry.start,
        stop_frame: task.geometry.stop,
        storage_method: 'cache',
        chunk_type: task.video ? 'video' : 'imageset',
        // backup.py `_write_manifest`: a lightweight cloud backup keeps `cloud_storage`; otherwise as CVAT's version writes it.
        storage: lightweight ? 'cloud_storage' : backupStorageField(this.#o.version ?? '2.73.0', task.storage),
      },
      jobs,
    };
    zip.addBuffer(Buffer.from(JSON.stringify(taskJson)), 'task.json');
    zip.addBuffer(Buffer.from(JSON.stringify(task.jobs.map(() => ({ version: 0, tags: [], shapes: [], tracks: [] })))), 'annotations.json');
    zip.end();
    const chunks: Buffer[] = [];
    for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
}

/** `attrs.converters.to_bool` (background.py) for a query parameter: "true", "t", "yes", "y", "on", "1" → true. */
function toBool(value: string | null): boolean {
  return value !== null && ['true', 't', 'yes', 'y', 'on', '1'].includes(value.toLowerCase());
}
