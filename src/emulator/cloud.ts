/**
 * Cloud storages (S3-like buckets) for the emulator, as CVAT 2.73 serves them. A real directory
 * stands in for each bucket: an object key `a/b.jpg` is the file `<bucketDir>/a/b.jpg`.
 *
 * Read from CVAT's source (github:cvat-ai/cvat at v2.73.0, 7972cb4f2ad8):
 * - `cvat/apps/engine/views.py` `CloudStorageViewSet.content_v2`: `page_size` non-numeric → 400
 *   "Wrong value for page_size was found" (HttpResponseBadRequest, plain text), capped at
 *   `BUCKET_CONTENT_MAX_PAGE_SIZE` = 500 (`cvat/settings/base.py`), one leading "/" of `prefix`
 *   stripped, `next_token` passed through; any exception other than ValidationError/
 *   PermissionDenied/NotFound → 500 `"An internal error has occurred"` (a JSON string). The S3
 *   listing (`cloud_provider.py` `S3CloudStorage._list_raw_content_on_one_page`) is not wrapped by
 *   `validate_bucket_status`, so a forbidden or missing bucket answers that 500.
 * - `cloud_provider.py` `CloudStorageClient.list_files_on_one_page`: `list_objects_v2` with
 *   `Delimiter="/"` (one directory level), directories stripped of "/", names cut after the last
 *   "/" of the prefix, sorted by type ("DIR" before "REG"); `MaxKeys` counts files and directories.
 * - `views.py` `status`: `Response(get_status())` → a JSON string AVAILABLE | NOT_FOUND | FORBIDDEN.
 * - `cloud_provider.py` `validate_bucket_status` / `validate_file_status` (download_fileobj is
 *   wrapped by both, file status outermost): bucket forbidden → PermissionDenied "The resource
 *   <resource> is no longer available. Access forbidden."; bucket gone → NotFound "The resource
 *   <resource> not found. It may have been deleted."; object gone → NotFound "The file '<key>' not
 *   found on the cloud storage '<resource>'". `models.py` `Data.get_cloud_storage_client`: a task
 *   whose storage record was deleted (`Data.cloud_storage` is SET_NULL) → CloudStorageMissingError
 *   "Task is not connected to cloud storage". The chunk worker's exception is re-raised in the
 *   request (`cache.py` `_build_chunk_job_failure_exception`) and `_DataGetter.__call__` answers
 *   `Response(data=str(ex), status=ex.status_code)` (a JSON string), 409 for the missing storage.
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import type { UserDirectory } from './auth.js';
import { HttpError, send, sendJson } from './http.js';
import { paginate } from './query.js';
import { resolveInShare } from './share.js';

export type CloudStatus = 'AVAILABLE' | 'NOT_FOUND' | 'FORBIDDEN';
export const CLOUD_STATUSES: readonly CloudStatus[] = ['AVAILABLE', 'NOT_FOUND', 'FORBIDDEN'];

/** `settings.BUCKET_CONTENT_MAX_PAGE_SIZE` (cvat/settings/base.py). */
export const BUCKET_CONTENT_MAX_PAGE_SIZE = 500;

export interface CloudStorageSpec {
  id: number;
  /** The bucket name (`resource`): what CVAT's error texts name, not the display name. */
  resource: string;
  displayName?: string;
  /** The directory standing in for the bucket. A missing directory reads as a deleted bucket. */
  bucketDir: string;
  /** A status forced by the test (revoked credentials → FORBIDDEN); absent = derived from the directory. */
  status?: CloudStatus;
  /** Owner username; default: the first admin (admins see every storage). */
  owner?: string;
}

interface StorageRecord {
  spec: CloudStorageSpec;
  forced: CloudStatus | undefined;
  createdMs: number;
}

export interface ContentEntry {
  name: string;
  type: 'REG' | 'DIR';
  mime_type: string;
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff', '.webp', '.jp2', '.ppm', '.pgm', '.pbm']);

/** `media_extractors.py` `get_mime` for what the emulator serves; a zip is shown as "archive" (content_v2). */
function mimeOf(name: string): string {
  const ext = path.posix.extname(name).toLowerCase();
  if (IMAGE_EXTENSIONS.has(ext)) return 'image';
  if (ext === '.zip' || ext === '.tar' || ext === '.gz') return 'archive';
  if (ext === '.pdf') return 'pdf';
  if (ext === '.mp4' || ext === '.avi' || ext === '.mov' || ext === '.mkv') return 'video';
  return 'unknown';
}

const ROUTES = {
  list: /^\/api\/cloudstorages\/?$/,
  one: /^\/api\/cloudstorages\/(\d+)\/?$/,
  status: /^\/api\/cloudstorages\/(\d+)\/status\/?$/,
  content: /^\/api\/cloudstorages\/(\d+)\/content-v2\/?$/,
};

export class CloudStorages {
  readonly #storages = new Map<number, StorageRecord>();
  readonly #now: () => number;
  /** content-v2 calls that reached the bucket: each is one billed LIST. */
  listCalls = 0;
  /** `GET …/status` calls (each a HEAD on the bucket). */
  statusCalls = 0;
  /** Objects read by builds and backups (GETs on the bucket). */
  objectReads = 0;

  constructor(specs: readonly CloudStorageSpec[], now: () => number) {
    this.#now = now;
    for (const spec of specs) this.add(spec);
  }

  add(spec: CloudStorageSpec): void {
    if (!Number.isInteger(spec.id) || spec.id < 1) throw new Error(`cloud storage id must be a positive integer, got ${spec.id}`);
    if (this.#storages.has(spec.id)) throw new Error(`cloud storage ${spec.id} already exists`);
    this.#storages.set(spec.id, { spec, forced: spec.status, createdMs: this.#now() });
  }

  has(id: number): boolean {
    return this.#storages.has(id);
  }

  /** Deletes the storage record: tasks on it keep `storage: cloud_storage` with `cloud_storage_id: null` (SET_NULL) and answer 409. */
  remove(id: number): void {
    this.#storages.delete(id);
  }

  /** Forces a status (FORBIDDEN: credentials revoked; NOT_FOUND: bucket deleted); undefined → derived from the directory again. */
  setStatus(id: number, status: CloudStatus | undefined): void {
    const record = this.#storages.get(id);
    if (!record) throw new Error(`cloud storage ${id} does not exist`);
    record.forced = status;
  }

  /** What `get_status()` answers (a HEAD on the bucket). */
  status(id: number): CloudStatus {
    const record = this.#storages.get(id);
    if (!record) throw new Error(`cloud storage ${id} does not exist`);
    if (record.forced) return record.forced;
    try {
      return fs.statSync(record.spec.bucketDir).isDirectory() ? 'AVAILABLE' : 'NOT_FOUND';
    } catch {
      return 'NOT_FOUND';
    }
  }

  /**
   * Reads one object for a chunk, context-image or backup build of a task on storage `id`
   * (null: the storage record was deleted). Returns a `key:size:crc` fingerprint; throws the
   * HttpError CVAT's request would answer with.
   */
  async readObject(id: number | null, key: string): Promise<string> {
    const record = id === null ? undefined : this.#storages.get(id);
    if (!record) throw new HttpError(409, 'Task is not connected to cloud storage');
    const resource = record.spec.resource;
    const status = this.status(record.spec.id);
    if (status === 'FORBIDDEN') throw new HttpError(403, `The resource ${resource} is no longer available. Access forbidden.`);
    if (status === 'NOT_FOUND') throw new HttpError(404, `The resource ${resource} not found. It may have been deleted.`);
    this.objectReads++;
    const abs = resolveInShare(record.spec.bucketDir, key);
    const missing = (): HttpError => new HttpError(404, `The file '${key}' not found on the cloud storage '${resource}'`);
    if (!abs || key.endsWith('/')) throw missing();
    let handle: fs.promises.FileHandle | undefined;
    try {
      handle = await fs.promises.open(abs, 'r');
      const stat = await handle.stat();
      if (!stat.isFile()) throw missing();
      const head = Buffer.alloc(Math.min(4096, stat.size));
      await handle.read(head, 0, head.length, 0);
      return `${key}:${stat.size}:${zlib.crc32(head)}`;
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw missing();
    } finally {
      await handle?.close();
    }
  }

  /** Whole object bytes for a heavyweight backup (same errors as readObject). */
  async objectBytes(id: number | null, key: string): Promise<Buffer> {
    await this.readObject(id, key);
    const record = this.#storages.get(id ?? -1);
    const abs = record ? resolveInShare(record.spec.bucketDir, key) : null;
    if (!abs) throw new HttpError(404, `The file '${key}' not found on the cloud storage '${record?.spec.resource ?? ''}'`);
    return fs.promises.readFile(abs);
  }

  /**
   * One page of `list_objects_v2(Prefix=prefix, Delimiter="/", MaxKeys=pageSize, ContinuationToken=token)`
   * reshaped by `list_files_on_one_page(_use_sort=True)`. The token is opaque to callers
   * (here: the last raw key or common prefix returned, base64url).
   */
  async listPage(id: number, prefix: string, nextToken: string | null, pageSize: number): Promise<{ content: ContentEntry[]; next: string | null }> {
    const record = this.#storages.get(id);
    if (!record) throw new Error(`cloud storage ${id} does not exist`);
    this.listCalls++;
    if (this.status(id) !== 'AVAILABLE') throw new HttpError(500, 'An internal error has occurred');
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash + 1) : '';
    const dirAbs = resolveInShare(record.spec.bucketDir, dirKey);
    let raw: string[] = [];
    if (dirAbs) {
      try {
        const entries = await fs.promises.readdir(dirAbs, { withFileTypes: true });
        for (const entry of entries) {
          const key = dirKey + entry.name;
          if (!key.startsWith(prefix)) continue;
          if (entry.isDirectory()) raw.push(`${key}/`);
          else if (entry.isFile()) raw.push(key);
        }
      } catch {
        raw = []; // no such "directory": S3 lists nothing under an unused prefix
      }
    }
    // S3 returns keys and common prefixes in UTF-8 binary order.
    raw.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    let after: string | null = null;
    if (nextToken !== null) {
      after = Buffer.from(nextToken, 'base64url').toString('utf8');
      raw = raw.filter((k) => Buffer.compare(Buffer.from(k), Buffer.from(after ?? '')) > 0);
    }
    const page = raw.slice(0, Math.max(0, pageSize));
    const last = page[page.length - 1];
    const next = raw.length > page.length && last !== undefined ? Buffer.from(last, 'utf8').toString('base64url') : null;
    const cut = slash >= 0 ? slash + 1 : 0;
    const files = page.filter((k) => !k.endsWith('/')).map((k) => k.slice(cut));
    const dirs = page.filter((k) => k.endsWith('/')).map((k) => k.slice(cut).replace(/\/+$/, ''));
    const content: ContentEntry[] = [
      ...dirs.map((name) => ({ name, type: 'DIR' as const, mime_type: 'DIR' })),
      ...files.map((name) => ({ name, type: 'REG' as const, mime_type: mimeOf(name) })),
    ];
    return { content, next };
  }

  #json(record: StorageRecord): Record<string, unknown> {
    const s = record.spec;
    const created = new Date(record.createdMs).toISOString();
    return {
      id: s.id,
      provider_type: 'AWS_S3_BUCKET',
      resource: s.resource,
      display_name: s.displayName ?? s.resource,
      owner: null,
      credentials_type: 'KEY_SECRET_KEY_PAIR',
      specific_attributes: '',
      description: '',
      manifests: [],
      created_date: created,
      updated_date: created,
      organization: null,
    };
  }

  /** Handles `/api/cloudstorages…`; false for any other path. */
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    routePath: string,
    query: URLSearchParams,
    users: UserDirectory,
    absoluteUrl: URL,
  ): boolean | Promise<void> {
    const list = ROUTES.list.exec(routePath);
    const one = ROUTES.one.exec(routePath);
    const status = ROUTES.status.exec(routePath);
    const content = ROUTES.content.exec(routePath);
    if (!list && !one && !status && !content) return false;
    const user = users.authenticate(req);
    if ((req.method ?? 'GET') !== 'GET') throw new HttpError(405, { detail: `Method "${req.method ?? ''}" not allowed.` });
    const visible = (r: StorageRecord): boolean => user.isAdmin || r.spec.owner === user.username;
    if (list) {
      const records = [...this.#storages.values()].filter(visible).sort((a, b) => b.spec.id - a.spec.id);
      sendJson(
        req,
        res,
        200,
        paginate(records, query, absoluteUrl, (r) => this.#json(r)),
      );
      return true;
    }
    const id = Number((one ?? status ?? content)?.[1]);
    const record = this.#storages.get(id);
    // DRF's get_object() → Http404 before the view's own try block.
    if (!record || !visible(record)) throw new HttpError(404, { detail: 'No CloudStorage matches the given query.' });
    if (one) {
      sendJson(req, res, 200, this.#json(record));
      return true;
    }
    if (status) {
      this.statusCalls++;
      sendJson(req, res, 200, this.status(id));
      return true;
    }
    const pageSizeRaw = query.get('page_size') ?? String(BUCKET_CONTENT_MAX_PAGE_SIZE);
    if (!/^[0-9]+$/.test(pageSizeRaw)) {
      send(res, 400, Buffer.from('Wrong value for page_size was found'), { 'Content-Type': 'text/html; charset=utf-8' });
      return true;
    }
    const pageSize = Math.min(Number(pageSizeRaw), BUCKET_CONTENT_MAX_PAGE_SIZE);
    const prefix = (query.get('prefix') ?? '').replace(/^\//, '');
    return this.listPage(id, prefix, query.get('next_token'), pageSize).then((page) => sendJson(req, res, 200, page));
  }
}
