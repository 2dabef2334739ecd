/**
 * Which CVAT behaviours the emulated version has (boundaries from cvat-facts.md). Kept
 * separate from src/cvat/features.ts on purpose: the emulator checks the client, so it
 * must not share the client's idea of the versions.
 */
export interface EmulatorFeatures {
  version: string;
  /** < 2.20: task-chunk `number` numbering, `{data_id}_{N}_Quality.X` keys, v2.14.4 shapes. */
  legacy: boolean;
  /** 2.21: X-Checksum / X-Updated-Date, `chunks_updated_date`, stale-item 429. */
  checksumHeaders: boolean;
  /** 2.23: builds in the `chunks` queue with dedup; wait, then 429 + Retry-After. */
  queue429: boolean;
  /** 2.23: previews live 7 days. */
  longPreviewTtl: boolean;
  /** 2.44: `storage` / `cloud_storage_id` in data/meta. */
  storageInMeta: boolean;
  /** 2.48: personal access tokens. */
  accessTokens: boolean;
  /** 2.52: `chapters` in data/meta. */
  chapters: boolean;
  /** 2.66: Range on chunks (206/416), Accept-Ranges. */
  rangeRequests: boolean;
  /** Consensus replica jobs (2.26+; absent from 2.14). */
  consensus: boolean;
}

export function emulatorFeatures(version: string): EmulatorFeatures {
  const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!match) throw new Error(`cannot read a CVAT version from "${version}"`);
  const v = [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)] as const;
  if (v[0] !== 2) throw new Error(`the emulator speaks CVAT 2.x only, not ${version}`);
  const atLeast = (minor: number): boolean => v[1] >= minor;
  return {
    version,
    legacy: !atLeast(20),
    checksumHeaders: atLeast(21),
    queue429: atLeast(23),
    longPreviewTtl: atLeast(23),
    storageInMeta: atLeast(44),
    accessTokens: atLeast(48),
    chapters: atLeast(52),
    rangeRequests: atLeast(66),
    consensus: atLeast(26),
  };
}
