/**
 * The /status document: one versioned shape (schemas/status.schema.json, tested against
 * real output), with every time an ISO 8601 string and every duration a whole number of
 * milliseconds. The parts keep their own units inside (epoch ms, performance.now()
 * fractions); this is the one place they are turned into what a human or a script reads.
 * Bump STATUS_SCHEMA_VERSION when a field is removed, renamed or changes meaning.
 */
import type { CacheTruthStatus } from './cache-truth.js';
import type { ProtectionStatus } from './protection.js';
import type { AdaptiveState } from './adaptive.js';
import type { ReachabilitySnapshot } from './reachability.js';
import type { CredentialsState } from '../cvat/auth.js';
import type { InventoryIssue } from '../cvat/inventory.js';
import type { CloudGuardStatus, OpenProblem, ShareGuardStatus } from '../guard/index.js';
import type { StateDamage } from '../state/damage.js';
import type { ChunkFailure } from '../warm/engine.js';
import type { LedgerStats } from '../warm/ledger.js';

export const STATUS_SCHEMA_VERSION = 1;

export interface StatusParts {
  cvat: { url: string; version: string | null; reachability: ReachabilitySnapshot; credentials: CredentialsState };
  discovery: { done: boolean; tasks: number; jobs: number };
  warm: {
    passes: number;
    evaluations: number;
    running: boolean;
    lastPassEndedAt: number | undefined;
    chunks: { total: number; warm: number; failed: number; stuck: number } | null;
    failures: readonly ChunkFailure[];
    concurrency: AdaptiveState | null;
    ledger: LedgerStats | null;
    ledgerDamage: readonly StateDamage[];
  };
  share: { status: ShareGuardStatus; problems: readonly OpenProblem[] } | null;
  /** The guard's cloud source (src/guard/cloud-guard.ts): storages, listing rounds, open problems. */
  cloud: { status: CloudGuardStatus; problems: readonly OpenProblem[] };
  issues: readonly InventoryIssue[];
  webhooks: { enabled: boolean; startedAt: number; lastAcceptedAt: number | undefined; pendingTasks: number; pendingLimit: number };
  protection: ProtectionStatus | null;
  /** What CVAT's cache really holds: deep mode, or the shallow canary (cache-truth.ts). */
  cache: CacheTruthStatus | null;
}

const iso = (ms: number | undefined | null): string | null => (ms === undefined || ms === null ? null : new Date(ms).toISOString());
const isoOrUnknown = (ms: number | 'unknown'): string => (ms === 'unknown' ? ms : new Date(ms).toISOString());

/** Lists in /status are capped: the document stays a few hundred KiB however large the share. */
const MAX_FAILURES = 100;
const MAX_ISSUES = 100;
const MAX_PROBLEMS = 200;

export function statusDocument(parts: StatusParts): object {
  const { cvat, warm, share, webhooks } = parts;
  return {
    schemaVersion: STATUS_SCHEMA_VERSION,
    cvat: {
      url: cvat.url,
      version: cvat.version,
      ...cvat.reachability,
      credentials: { accepted: cvat.credentials.accepted ?? null, detail: cvat.credentials.detail, since: iso(cvat.credentials.since) },
    },
    discovery: parts.discovery,
    warm: {
      passes: warm.passes,
      evaluations: warm.evaluations,
      running: warm.running,
      lastPassEndedAt: iso(warm.lastPassEndedAt),
      chunks: warm.chunks,
      failures: warm.failures.slice(0, MAX_FAILURES),
      concurrency: warm.concurrency && {
        limit: warm.concurrency.limit,
        pauseMs: Math.round(warm.concurrency.pauseMs),
        reason: warm.concurrency.reason,
        latencyRatio: warm.concurrency.latencyRatio === undefined ? null : Math.round(warm.concurrency.latencyRatio * 100) / 100,
      },
      ledger: warm.ledger && {
        series: warm.ledger.series,
        entries: warm.ledger.entries,
        warm: warm.ledger.warm,
        failed: warm.ledger.failed,
        stuck: warm.ledger.stuck,
        oldestWarmAt: iso(warm.ledger.oldestWarm),
      },
      ledgerDamage: warm.ledgerDamage,
    },
    share: share && shareStatus(share.status, share.problems),
    cloud: cloudStatus(parts.cloud.status, parts.cloud.problems),
    issues: parts.issues.slice(0, MAX_ISSUES),
    webhooks: {
      enabled: webhooks.enabled,
      startedAt: iso(webhooks.startedAt),
      lastAcceptedAt: iso(webhooks.lastAcceptedAt),
      pendingTasks: webhooks.pendingTasks,
      pendingLimit: webhooks.pendingLimit,
    },
    protection: parts.protection,
    cache: parts.cache,
  };
}

function shareStatus(status: ShareGuardStatus, problems: readonly OpenProblem[]): object {
  const { lastScan, ...rest } = status;
  return {
    ...rest,
    lastScan: lastScan && { ...lastScan, skipped: lastScan.skipped ?? null, startedAt: iso(lastScan.startedAt), durationMs: Math.round(lastScan.durationMs) },
    openProblems: problems.slice(0, MAX_PROBLEMS).map(openProblem),
  };
}

/** An open problem with its times as ISO strings (shared by the share and cloud parts). */
function openProblem(p: OpenProblem): Record<string, unknown> {
  return {
    ...p,
    since: iso(p.since),
    tasks: p.tasks.map((t) => ({ ...t, expiresAt: isoOrUnknown(t.expiresAt), jobs: t.jobs.map((j) => ({ ...j, expiresAt: isoOrUnknown(j.expiresAt) })) })),
  };
}

/** The cloud part: its open problems in the share's shape plus the storage and object key (paths are `<storageId>/<key>`). */
function cloudStatus(status: CloudGuardStatus, problems: readonly OpenProblem[]): object {
  const { lastRound, ...rest } = status;
  return {
    ...rest,
    lastRound: lastRound && { ...lastRound, at: iso(lastRound.at) },
    openProblems: problems.slice(0, MAX_PROBLEMS).map((p) => {
      const slash = p.path.indexOf('/');
      return { ...openProblem(p), storageId: Number(p.path.slice(0, slash)), key: p.path.slice(slash + 1) };
    }),
  };
}
