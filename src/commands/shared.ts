/** Pieces several commands share: reading the scope from CVAT, the share directory check, warm times. */
import { existsSync, statSync } from 'node:fs';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { Scope, TaskRecord } from '../cvat/inventory.js';
import { ConfigError } from '../errors.js';
import { toGuardTask, type GuardTask, type LastWarmedAt } from '../guard/index.js';
import type { Logger } from '../log.js';
import { collectTaskRecords, type InventoryIssue } from '../cvat/inventory.js';
import { redactSecrets } from '../secrets.js';
import { Ledger } from '../warm/ledger.js';
import { peekLedger } from '../warm/ledger-peek.js';
import { series } from '../series.js';

/** The share directory must exist and be a directory before anything is indexed. */
export function requireShareDir(shareDir: string | undefined): string {
  if (!shareDir)
    throw new ConfigError([
      "share directory is missing: set CVAT_SHARE_DIR or --share-dir to the host path where CVAT's share (/home/django/share) is mounted",
    ]);
  if (!existsSync(shareDir) || !statSync(shareDir).isDirectory()) {
    throw new ConfigError([
      `share directory ${shareDir} does not exist or is not a directory: is the share mounted, and is this the host path of CVAT's /home/django/share?`,
    ]);
  }
  return shareDir;
}

/**
 * Guard inputs for every task in scope that has data, one at a time as CVAT answers:
 * a consumer that indexes each task and lets it go (`check --all`) never holds every
 * task's frame list at once.
 */
export async function* streamGuardTasks(
  client: CvatClient,
  features: CvatFeatures,
  scope: Scope,
  shareTasks: readonly number[],
  onIssue: (issue: InventoryIssue) => void,
  signal?: AbortSignal,
  /** Records this takes (returns true for) are someone else's, e.g. `check`'s cloud tasks: not guarded here. */
  divert?: (record: TaskRecord) => boolean,
): AsyncGenerator<GuardTask> {
  const share = new Set(shareTasks);
  for await (const record of collectTaskRecords(client, scope, { features, withMeta: true, onIssue, ...(signal ? { signal } : {}) })) {
    if (divert?.(record)) continue;
    const task = toGuardTask(record, features, share);
    if (task) yield task;
  }
}

/** Every guard input in scope, as an array (small inventories: doctor's sample). */
export async function collectGuardTasks(
  client: CvatClient,
  features: CvatFeatures,
  scope: Scope,
  shareTasks: readonly number[],
  onIssue: (issue: InventoryIssue) => void,
  signal?: AbortSignal,
): Promise<GuardTask[]> {
  const tasks: GuardTask[] = [];
  for await (const task of streamGuardTasks(client, features, scope, shareTasks, onIssue, signal)) tasks.push(task);
  return tasks;
}

/**
 * When the warmer last confirmed a job chunk, from the ledger, for "expires at"
 * estimates. A ledger held by a running service is read without its lock and without
 * writing (warm/ledger-peek.ts): `check` and `impact` never fight `run` for the state
 * directory, and still see what it warmed. `source` says which (undefined: no dates).
 */
export async function openLedgerForReading(
  stateDir: string,
  logger: Logger,
): Promise<{ lastWarmedAt?: LastWarmedAt; source?: 'ledger' | 'read without the lock'; close(): Promise<void> }> {
  if (!existsSync(stateDir)) return { close: () => Promise.resolve() };
  try {
    const ledger = await Ledger.open(stateDir, { logger });
    const lastWarmedAt: LastWarmedAt = (jobId, chunk) => {
      const entry = ledger.get(series.jobChunks(jobId, 'compressed'), chunk);
      return entry?.outcome === 'warm' ? entry.confirmedAt : undefined;
    };
    return { lastWarmedAt, source: 'ledger', close: () => ledger.close() };
  } catch (error) {
    // Held by the running service (or the directory is read-only here): read the files as they are.
    logger.debug({ err: (error as Error).message }, 'ledger not opened for writing; reading it without the lock');
  }
  try {
    const peek = await peekLedger(stateDir);
    const lastWarmedAt: LastWarmedAt = (jobId, chunk) => {
      const entry = peek.get(series.jobChunks(jobId, 'compressed'), chunk);
      return entry?.outcome === 'warm' ? entry.confirmedAt : undefined;
    };
    return { lastWarmedAt, source: 'read without the lock', close: () => Promise.resolve() };
  } catch (error) {
    logger.info({ err: (error as Error).message }, 'ledger not readable; chunk expiry estimates will be unknown');
    return { close: () => Promise.resolve() };
  }
}

/** Lines shown per section; --json has them all. */
const SHOWN_ISSUES = 20;

/**
 * What the inventory could not use, worded the same by every command that reads tasks
 * from CVAT (warm, check, backup): an unknown id reads "task 99 not found" everywhere.
 * Problems (ids not found, unreadable answers) make the command exit 1; skipped tasks
 * (no data yet) are only noted.
 */
export function formatInventoryIssues(issues: readonly InventoryIssue[]): string {
  const section = (title: string, list: readonly InventoryIssue[]) => {
    if (list.length === 0) return '';
    const shown = list.slice(0, SHOWN_ISSUES).map((i) => `  ${i.message}`);
    if (list.length > SHOWN_ISSUES) shown.push(`  … and ${list.length - SHOWN_ISSUES} more (use --json for the full list)`);
    return `${title}:\n${shown.join('\n')}\n`;
  };
  const text =
    section(
      'Problems reading CVAT',
      issues.filter((i) => i.severity === 'problem'),
    ) +
    section(
      'Skipped',
      issues.filter((i) => i.severity === 'skipped'),
    );
  return redactSecrets(text);
}
