/**
 * CVAT version → the behaviours the warden depends on. Boundaries come from
 * cvat-facts.md ("Key version boundaries"), each verified against CVAT's source.
 */
import { WardenError } from '../errors.js';

/**
 * CVAT_CHUNK_CACHE_TTL (a constant in cvat/settings/base.py since 2.6.2): a cached chunk
 * disappears this long after it was built; reading it does not extend that.
 */
export const CHUNK_CACHE_TTL_MS = 24 * 3_600_000;

/**
 * How a version's media cache lets a chunk go (cvat-facts "Key version boundaries", §4):
 * - `none`: 2.0–2.6.1 diskcache, no expiry (a chunk stays until evicted past 1 TB);
 * - `ttl-lfu`: 2.6.2–2.10.0 KeyDB, 24 h TTL and `allkeys-lfu` eviction under `maxmemory 5G`,
 *   so a chunk may go earlier than its TTL says;
 * - `ttl`: 2.10.1+ Kvrocks on disk, 24 h TTL from the build, no eviction.
 */
export type ChunkExpiry = { kind: 'none' } | { kind: 'ttl-lfu'; ttlMs: number } | { kind: 'ttl'; ttlMs: number };

export function chunkExpiryFor(version: CvatVersion): ChunkExpiry {
  if (!atLeast(version, 2, 6, 2)) return { kind: 'none' };
  if (!atLeast(version, 2, 10, 1)) return { kind: 'ttl-lfu', ttlMs: CHUNK_CACHE_TTL_MS };
  return { kind: 'ttl', ttlMs: CHUNK_CACHE_TTL_MS };
}

/**
 * When a chunk built at `builtAt` leaves the cache: a date only where the version makes
 * it one (`ttl`); otherwise what is true instead of an invented date.
 */
export function forecastExpiry(model: ChunkExpiry, builtAt: number): { at: number; bound: 'exact' | 'latest' } | { at: null; reason: string } {
  if (model.kind === 'none') return { at: null, reason: 'never expires (diskcache, CVAT ≤ 2.6.1)' };
  if (model.kind === 'ttl-lfu') return { at: builtAt + model.ttlMs, bound: 'latest' };
  return { at: builtAt + model.ttlMs, bound: 'exact' };
}

export interface CvatVersion {
  major: number;
  minor: number;
  patch: number;
  raw: string;
}

export interface CvatFeatures {
  version: CvatVersion;
  /** 2.20: per-job chunks addressed by `index`; the UI reads these. Before: task chunk `number`. */
  indexChunks: boolean;
  /** 2.21: `X-Checksum` / `X-Updated-Date` headers and `chunks_updated_date` in meta. */
  checksumHeaders: boolean;
  /** 2.23: chunk builds in an RQ queue; the server waits ≤50 s then answers 429 + Retry-After. */
  retryAfter429: boolean;
  /** 2.44: `storage` (local/share/cloud_storage) in data/meta. */
  storageInMeta: boolean;
  /** 2.48: personal access tokens (`Authorization: Bearer`). */
  accessTokens: boolean;
  /** 2.66: chunk endpoint honours `Range` (206). */
  rangeRequests: boolean;
  /** 2.73: webhook `completed:request[create:task]`. */
  requestCompletedWebhook: boolean;
  /** 2.4.7: ground-truth jobs with `included_frames`. */
  groundTruthJobs: boolean;
  /** 2.67: previews honour `Prefer: handling=empty` (204 instead of a rendered placeholder for 3D, audio). */
  emptyPreviews: boolean;
  /** How cached chunks expire on this version. */
  chunkExpiry: ChunkExpiry;
}

export function parseCvatVersion(raw: string): CvatVersion {
  const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(raw.trim());
  if (!match) throw new WardenError('CVAT_BAD_RESPONSE', `cannot read a CVAT version from "${raw.slice(0, 40)}"`);
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3] ?? 0), raw };
}

function atLeast(v: CvatVersion, major: number, minor: number, patch = 0): boolean {
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.patch >= patch;
}

export function featuresFor(version: CvatVersion): CvatFeatures {
  if (version.major < 2) {
    throw new WardenError(
      'CVAT_UNSUPPORTED_VERSION',
      `unsupported CVAT version ${version.raw}: cvat-warden needs CVAT 2.0 or later (1.x has no job data endpoint and no expiring cache)`,
    );
  }
  return {
    version,
    indexChunks: atLeast(version, 2, 20),
    checksumHeaders: atLeast(version, 2, 21),
    retryAfter429: atLeast(version, 2, 23),
    storageInMeta: atLeast(version, 2, 44),
    accessTokens: atLeast(version, 2, 48),
    rangeRequests: atLeast(version, 2, 66),
    requestCompletedWebhook: atLeast(version, 2, 73),
    groundTruthJobs: atLeast(version, 2, 4, 7),
    emptyPreviews: atLeast(version, 2, 67),
    chunkExpiry: chunkExpiryFor(version),
  };
}
