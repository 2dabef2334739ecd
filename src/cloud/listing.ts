/**
 * Presence through CVAT's API: `GET /api/cloudstorages/{id}/content-v2?prefix=<dir>&page_size=500
 * &next_token=…` lists ONE directory level per call (S3 `list_objects_v2` with `Delimiter="/"`),
 * at most 500 entries a page (`BUCKET_CONTENT_MAX_PAGE_SIZE`), names relative to the prefix's
 * last "/" (cvat/apps/engine/views.py `content_v2`, cloud_provider.py `list_files_on_one_page`,
 * CVAT 2.73). Each page is a billed LIST on the bucket. It gives no size, ETag or mtime: a
 * modified object cannot be told from the original (CVAT itself only logs an md5 mismatch when it
 * builds a chunk from one). A forbidden or missing bucket answers 500 here; ask `…/status`.
 * `status` answers a JSON string AVAILABLE | NOT_FOUND | FORBIDDEN.
 */
import { z } from 'zod';
import type { CvatClient } from '../cvat/client.js';
import type { CloudStorageStatus } from '../domain.js';
import { WardenError, describeError } from '../errors.js';

export const CONTENT_PAGE_SIZE = 500;
/** Pages of one directory before giving up (5,000,000 objects): a `next` that never ends must not spin. */
export const MAX_PAGES_PER_DIRECTORY = 10_000;

const ContentSchema = z
  .object({
    next: z.string().nullable().optional(),
    content: z.array(z.object({ name: z.string(), type: z.string() }).loose()),
  })
  .loose();

export interface DirectoryListing {
  /** Object names (relative to the directory) seen. */
  files: Set<string>;
  /** Whether every page was read (false: the budget ran out or a page failed). */
  complete: boolean;
  calls: number;
  problem?: string;
}

export interface ListOptions {
  take: () => boolean;
  onCall?: () => void;
  signal?: AbortSignal;
}

export async function listDirectory(client: CvatClient, storageId: number, dir: string, options: ListOptions): Promise<DirectoryListing> {
  const files = new Set<string>();
  const seenTokens = new Set<string>();
  let next: string | undefined;
  let calls = 0;
  for (let page = 0; page < MAX_PAGES_PER_DIRECTORY; page++) {
    if (!options.take()) return { files, complete: false, calls };
    calls++;
    options.onCall?.();
    let document: unknown;
    try {
      document = await client.getJson(
        `/api/cloudstorages/${storageId}/content-v2`,
        { prefix: dir, page_size: CONTENT_PAGE_SIZE, ...(next !== undefined ? { next_token: next } : {}) },
        options.signal,
      );
    } catch (error) {
      if (error instanceof WardenError && ['CVAT_UNREACHABLE', 'CVAT_AUTH_REFUSED', 'ABORTED'].includes(error.code)) throw error;
      return { files, complete: false, calls, problem: describeError(error) };
    }
    const parsed = ContentSchema.safeParse(document);
    if (!parsed.success) return { files, complete: false, calls, problem: 'unexpected content-v2 answer' };
    for (const entry of parsed.data.content) if (entry.type === 'REG') files.add(entry.name);
    const token = parsed.data.next ?? undefined;
    if (token === undefined || token === '') return { files, complete: true, calls };
    if (seenTokens.has(token)) return { files, complete: false, calls, problem: 'content-v2 offered the same next_token twice' };
    seenTokens.add(token);
    next = token;
  }
  return { files, complete: false, calls, problem: `more than ${MAX_PAGES_PER_DIRECTORY} pages` };
}

export async function storageStatus(client: CvatClient, storageId: number, signal?: AbortSignal): Promise<{ status: CloudStorageStatus; problem?: string }> {
  try {
    const answer = await client.getJson(`/api/cloudstorages/${storageId}/status`, undefined, signal);
    if (answer === 'AVAILABLE' || answer === 'NOT_FOUND' || answer === 'FORBIDDEN') return { status: answer };
    return { status: 'unknown', problem: 'unexpected status answer' };
  } catch (error) {
    if (error instanceof WardenError && ['CVAT_UNREACHABLE', 'CVAT_AUTH_REFUSED', 'ABORTED'].includes(error.code)) throw error;
    return { status: 'unknown', problem: describeError(error) };
  }
}
