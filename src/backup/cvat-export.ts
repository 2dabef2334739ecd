/**
 * Asks CVAT for its own backup of one task and downloads it (CVAT ≥ 2.16, the requests
 * API; cvat/apps/engine/mixins.py BackupMixin):
 *
 *   POST /api/tasks/{id}/backup/export → 202 {rq_id}   (409 {rq_id}: one is already running — follow it)
 *   GET  /api/requests/{rq_id}         → status queued | started | finished | failed, message, result_url
 *   GET  result_url                    → the zip (2.32+: /backup/download?rq_id=…; 2.16–2.31: the old
 *                                        GET /backup?action=download — either way we only follow result_url)
 *
 * Before 2.16 the export was `GET /api/tasks/{id}/backup` polled until 201 then `action=download`,
 * a flow we do not implement: such servers get a clear CVAT_UNSUPPORTED_VERSION error.
 * A failed export that names a missing file (CVAT: FileNotFoundError from the share) is
 * reported as `missing_file` with the share-relative path.
 */
import path from 'node:path';
import { Transform } from 'node:stream';
import { OwnedFile } from '../state/owned-file.js';
import { RequestPoll } from './request-poll.js';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import { CvatHttpError, WardenError } from '../errors.js';
import { readCapped } from '../cvat/limits.js';
import { defaultReserveBytes, diskSpace, formatBytes } from './disk-space.js';

export const BACKUP_MIN_VERSION = '2.16.0';

/** The bounds of one export; their defaults live in the options table (--backup-timeout, --backup-max-gib, --backup-min-free-mib). */
export interface ExportOptions {
  signal?: AbortSignal;
  /** Longest pause between status polls (REQUEST_POLL_CAP_MS unless set). */
  pollIntervalMs?: number;
  /** Give up on CVAT's export after this long, and again on its download. */
  timeoutMs: number;
  /** Refuse downloads larger than this (checked on Content-Length and while streaming). */
  maxBytes: number;
  /** Stop a download before the backup directory's file system has less free; default `defaultReserveBytes`. */
  minFreeBytes?: number;
}

/** The configured bounds (protection.backupLimits) as export options. */
export function exportOptionsOf(
  config: { protection: { backupLimits: { timeoutMs: number; maxBytes: number; minFreeBytes: number | undefined } } },
  signal?: AbortSignal,
): ExportOptions {
  const l = config.protection.backupLimits;
  return {
    timeoutMs: l.timeoutMs,
    maxBytes: l.maxBytes,
    ...(l.minFreeBytes !== undefined ? { minFreeBytes: l.minFreeBytes } : {}),
    ...(signal ? { signal } : {}),
  };
}

/**
 * The share-derived backup deps: `shareDir` (where context images are read from) whenever
 * --share-dir is set, and `sizeFromShare` (each task's cap from its media) unless --backup-max-gib was given.
 */
export function sizeFromShareOf(config: { shareDir: string | undefined; protection: { backupLimits: { maxBytesGiven: boolean } } }): {
  sizeFromShare?: string;
  shareDir?: string;
} {
  if (config.shareDir === undefined) return {};
  return config.protection.backupLimits.maxBytesGiven ? { shareDir: config.shareDir } : { sizeFromShare: config.shareDir, shareDir: config.shareDir };
}

/** Free space is measured again after every this many bytes written (a statfs is a few µs). */
const SPACE_CHECK_BYTES = 1024 * 1024;

export class BackupExportError extends Error {
  override name = 'BackupExportError';
  readonly kind: 'failed' | 'missing_file';
  /** Share-relative path CVAT could not read (kind missing_file). */
  readonly missingFile: string | undefined;
  constructor(kind: 'failed' | 'missing_file', message: string, missingFile?: string) {
    super(message);
    this.kind = kind;
    this.missingFile = missingFile;
  }
}

const SHARE_ROOT = '/home/django/share/';

/** The file a FileNotFoundError names, relative to CVAT's share root when it lies there. */
export function missingFileOf(message: string): string | undefined {
  const match = /(?:FileNotFoundError|No such file or directory)[^']*'([^']+)'/.exec(message);
  const file = match?.[1];
  if (file === undefined) return undefined;
  return file.startsWith(SHARE_ROOT) ? file.slice(SHARE_ROOT.length) : file;
}

export function supportsBackupExport(features: CvatFeatures): boolean {
  const v = features.version;
  return v.major > 2 || (v.major === 2 && v.minor >= 16);
}

async function readJson(
  client: CvatClient,
  path: string,
  method: 'GET' | 'POST',
  signal: AbortSignal | undefined,
  query?: Record<string, string>,
): Promise<{ status: number; body: unknown }> {
  const response = await client.raw(path, { method, signal, ...(query ? { query } : {}) });
  // Status answers are small: 1 MiB is far above any real one, and bounds a hostile server.
  const text = (await readCapped(response.body, 1024 * 1024, () => new BackupExportError('failed', `CVAT's answer to ${path} is larger than 1 MiB`))).toString(
    'utf8',
  );
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Kept as text for the error message.
  }
  if (response.status === 401 || response.status === 403)
    throw new WardenError(
      response.status === 401 ? 'CVAT_AUTH_REFUSED' : 'CVAT_FORBIDDEN',
      `CVAT answered ${response.status} for ${path}: the account may not back this task up`,
    );
  return { status: response.status, body };
}

const field = (value: unknown, key: string): unknown => (value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined);

/** Runs one export to its end and streams the zip to `dest`. */
export function requireBackupSupport(features: CvatFeatures): void {
  if (!supportsBackupExport(features)) {
    throw new WardenError(
      'CVAT_UNSUPPORTED_VERSION',
      `CVAT ${features.version.raw} is too old for task backups: cvat-warden supports CVAT's requests API (POST /api/tasks/{id}/backup/export, GET /api/requests/{id}), CVAT ${BACKUP_MIN_VERSION} or later`,
    );
  }
}

export async function exportTaskBackup(
  client: CvatClient,
  features: CvatFeatures,
  taskId: number,
  dest: string,
  o: ExportOptions,
): Promise<{ bytes: number; requestId: string; file: OwnedFile }> {
  requireBackupSupport(features);
  const signal = o.signal;
  // Heavyweight, said explicitly: CVAT 2.73's export reads `lightweight` with a False default
  // (background.py) while its OpenAPI schema (mixins.py) says true. For a cloud-storage task a
  // lightweight zip holds only the manifest and restores pointing at the same bucket — no copy of
  // the media at all (backup.py `_write_data`). Other storages ignore the parameter.
  const started = await readJson(client, `/api/tasks/${taskId}/backup/export`, 'POST', signal, { lightweight: 'false' });
  const rqId = field(started.body, 'rq_id');
  if ((started.status !== 202 && started.status !== 409) || typeof rqId !== 'string' || rqId.length > 1024) {
    throw new CvatHttpError(
      started.status,
      `/api/tasks/${taskId}/backup/export`,
      (typeof started.body === 'string' ? started.body : JSON.stringify(started.body)).slice(0, 200),
    );
  }
  const deadline = Date.now() + o.timeoutMs;
  let resultUrl: string | undefined;
  // Small backups finish in well under a second: poll soon, then back off to the interval.
  const poll = new RequestPoll(deadline, o.pollIntervalMs, signal);
  for (;;) {
    const polled = await readJson(client, `/api/requests/${encodeURIComponent(rqId)}`, 'GET', signal);
    if (polled.status !== 200) throw new CvatHttpError(polled.status, '/api/requests/{rq_id}', '');
    const status = field(polled.body, 'status');
    if (status === 'finished') {
      const url = field(polled.body, 'result_url');
      if (typeof url !== 'string') throw new BackupExportError('failed', `CVAT finished the backup of task ${taskId} but gave no result_url`);
      resultUrl = url;
      break;
    }
    if (status === 'failed') {
      const raw = field(polled.body, 'message');
      const message = typeof raw === 'string' ? raw.slice(0, 2000) : '';
      const missing = missingFileOf(message);
      if (missing !== undefined)
        throw new BackupExportError('missing_file', `CVAT could not back up task ${taskId}: share file ${missing} is missing`, missing);
      throw new BackupExportError('failed', `CVAT's backup export of task ${taskId} failed: ${message || 'no message'}`);
    }
    if (Date.now() > deadline)
      throw new BackupExportError(
        'failed',
        `CVAT's backup export of task ${taskId} did not finish within ${formatMs(o.timeoutMs)} (--backup-timeout; status ${String(status).slice(0, 40)})`,
      );
    await poll.wait();
  }
  return { ...(await download(client, resultUrl, dest, o)), requestId: rqId };
}

const formatMs = (ms: number): string => (ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/**
 * Streams result_url into `dest`, created exclusively (src/state/owned-file.ts), within the
 * size cap and the free-space reserve. After a failure the partial file is gone — and
 * anything that was at `dest` before is left as it was.
 */
async function download(client: CvatClient, resultUrl: string, dest: string, o: ExportOptions): Promise<{ bytes: number; file: OwnedFile }> {
  try {
    return await streamTo(client, resultUrl, dest, o);
  } catch (error) {
    if (error instanceof WardenError && error.code === 'CVAT_TIMEOUT')
      throw new BackupExportError('failed', `the backup download did not finish within ${formatMs(o.timeoutMs)} (--backup-timeout)`);
    throw error;
  }
}

async function streamTo(client: CvatClient, resultUrl: string, dest: string, o: ExportOptions): Promise<{ bytes: number; file: OwnedFile }> {
  // Credentials go only to CVAT itself: result_url must point under the configured base URL.
  const base = new URL(client.baseUrl);
  let target: URL;
  try {
    target = new URL(resultUrl, base);
  } catch {
    throw new BackupExportError('failed', 'CVAT gave a result_url that is not a URL');
  }
  const basePath = base.pathname.replace(/\/+$/, '');
  if (target.origin !== base.origin || !target.pathname.startsWith(`${basePath}/api/`)) {
    throw new BackupExportError('failed', `CVAT's result_url points outside ${client.baseUrl}: not following it with our credentials`);
  }
  const dir = path.dirname(dest);
  const before = await diskSpace(dir);
  const reserve = o.minFreeBytes ?? defaultReserveBytes(before.total);
  // The next check comes up to SPACE_CHECK_BYTES (plus a chunk in flight) later: stop with that much to spare.
  const margin = 2 * SPACE_CHECK_BYTES;
  const noSpace = (available: number, what: string) =>
    new BackupExportError(
      'failed',
      `the backup directory's file system has ${formatBytes(available)} free ${what}, and ${formatBytes(reserve)} must stay free (--backup-min-free-mib): download stopped`,
    );
  const tooLarge = (what: string) =>
    new BackupExportError('failed', `the backup is larger than ${formatBytes(o.maxBytes)} (${what}; --backup-max-gib): download stopped`);
  if (before.available < reserve + margin) throw noSpace(before.available, 'before the download');
  const response = await client.raw(`${target.pathname.slice(basePath.length)}${target.search}`, {
    ...(o.signal ? { signal: o.signal } : {}),
    headers: { accept: 'application/zip, application/octet-stream' },
    deadlineMs: o.timeoutMs,
  });
  if (response.status !== 200) {
    await response.body.dump();
    throw new CvatHttpError(response.status, 'result_url', '');
  }
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > o.maxBytes) {
    response.body.destroy();
    throw tooLarge(`CVAT declares ${formatBytes(declared)}`);
  }
  if (Number.isFinite(declared) && before.available - declared < reserve) {
    response.body.destroy();
    throw noSpace(before.available, `and CVAT declares ${formatBytes(declared)}`);
  }
  const file = await OwnedFile.create(dest).catch((error: unknown) => {
    response.body.destroy();
    throw error;
  });
  try {
    const through = [freeSpaceGuard(dir, reserve + margin, (available, bytes) => noSpace(available, `after ${formatBytes(bytes)} of the download`))];
    const bytes = await file.fill(response.body, { maxBytes: o.maxBytes, tooLarge: (n) => tooLarge(`${formatBytes(n)} received`), through });
    return { bytes, file };
  } catch (error) {
    await file.discard();
    throw error;
  }
}

/** Passes bytes through, checking every SPACE_CHECK_BYTES that `dir`'s file system keeps `keepFree` bytes free. */
function freeSpaceGuard(dir: string, keepFree: number, noSpace: (available: number, bytesBefore: number) => Error): Transform {
  let bytes = 0;
  let sinceCheck = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      sinceCheck += chunk.length;
      if (sinceCheck < SPACE_CHECK_BYTES) {
        done(null, chunk);
        return;
      }
      sinceCheck = 0;
      diskSpace(dir).then(
        (now) => done(now.available < keepFree ? noSpace(now.available, bytes - chunk.length) : null, chunk),
        (error: unknown) => done(error as Error),
      );
    },
  });
}
