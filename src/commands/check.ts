/**
 * `cvat-warden check`: one pass — stream the tasks from CVAT, index the share files they
 * depend on as each task arrives, stat each once; list the buckets of cloud-storage tasks
 * through the guard's cloud source — then a table or --json. Exit 0 when every file and object
 * is in place, 1 when any is missing, moved, changed or unreadable (or a name was rejected).
 *
 * Without --share-dir (a cloud-only CVAT) the share part is skipped and said so; a task in
 * scope that reads the share then makes it exit 2 (configuration: the share is needed).
 */
import { shareBackupNote } from '../backup/restorability.js';
import { UNLIMITED } from '../cloud/index.js';
import type { CommandConfig } from '../config/index.js';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { InventoryIssue, TaskRecord } from '../cvat/inventory.js';
import { ConfigError } from '../errors.js';
import {
  CloudGuard,
  checkExitCode,
  cloudExitCode,
  cloudGuardTask,
  formatCheckReport,
  formatCloudReport,
  runCheck,
  type CheckReport,
  type CloudRoundResult,
  type GuardTask,
} from '../guard/index.js';
import { createClient, type CommandContext } from './context.js';
import { writeCommandJson } from './json-output.js';
import { formatInventoryIssues, openLedgerForReading, streamGuardTasks, requireShareDir } from './shared.js';
import { recoverableFromVault, formatRecoverable } from '../vault/recoverable.js';

export async function runCheckCommand(config: CommandConfig, context: CommandContext): Promise<number> {
  const { logger, signal } = context;
  // Given but wrong (not a directory): exit 2 at once. Not given: only cloud tasks can be checked.
  const shareDir = config.shareDir !== undefined && config.shareDir !== '' ? requireShareDir(config.shareDir) : undefined;
  const client = createClient(config.cvat, context);
  const ledger = await openLedgerForReading(config.stateDir, logger);
  context.shutdown.onShutdown('close the ledger', () => ledger.close());
  context.shutdown.onShutdown('close the CVAT client', () => client.close());
  try {
    const features = await client.features(signal);
    if (shareDir === undefined) requireShareKnowable(features, config.shareTasks);
    const issues: InventoryIssue[] = [];
    // One walk over CVAT: cloud-storage tasks go to the cloud check, the rest to the share check.
    const cloudTasks: GuardTask[] = [];
    const divertCloud = (record: TaskRecord): boolean => {
      const cloud = cloudGuardTask(record, features);
      if (cloud) cloudTasks.push(cloud);
      return cloud !== undefined;
    };
    const tasks = streamGuardTasks(client, features, config.scope, config.shareTasks, (issue) => issues.push(issue), signal, divertCloud);
    if (!features.storageInMeta && config.shareTasks.length === 0) {
      logger.warn(
        { version: features.version.raw },
        'CVAT before 2.44 does not say which tasks read the share: guarding tasks whose frame names exist under the share; list share tasks with --share-tasks to be exact',
      );
    }
    const report = shareDir
      ? await runCheck(tasks, {
          shareDir,
          stateDir: config.stateDir,
          includeUnknownStorage: !features.storageInMeta,
          logger,
          ...(ledger.lastWarmedAt ? { lastWarmedAt: ledger.lastWarmedAt } : {}),
        })
      : await withoutShare(tasks);
    const cloud = cloudTasks.length > 0 ? await checkCloud(client, cloudTasks, context, ledger.lastWarmedAt) : undefined;
    const problems = issues.filter((i) => i.severity === 'problem');
    const gone = report?.problems.flatMap((p) => [...p.missing, ...p.moved.map((m) => m.path)]) ?? [];
    const vault = config.protection.vaultDir && report ? await recoverableFromVault(config.protection.vaultDir, gone) : undefined;
    if (config.json)
      writeCommandJson(context.stdout, 'check', {
        cvat: { url: client.baseUrl, version: features.version.raw },
        ...(report ?? notChecked()),
        ...(vault ? { vault } : {}),
        ...(cloud ? { cloud: cloudJson(cloud) } : {}),
        inventoryIssues: issues,
      });
    else {
      context.stdout.write(report ? formatCheckReport(report, shareBackupNote(features.version)) : `${SHARE_SKIPPED}\n`);
      if (vault && shareDir) context.stdout.write(formatRecoverable(vault, shareDir));
      if (cloud) context.stdout.write(formatCloudReport(cloud));
      if (problems.length) context.stdout.write(`\n${formatInventoryIssues(problems)}`);
    }
    const vaultDamaged = vault !== undefined && (vault.problem !== undefined || vault.damagedRecords.count > 0);
    return Math.max(report ? checkExitCode(report) : 0, problems.length || vaultDamaged ? 1 : 0, cloud ? cloudExitCode(cloud) : 0);
  } finally {
    await ledger.close();
    await client.close();
  }
}

const SHARE_SKIPPED = 'Share: not checked (no --share-dir; no task in scope reads the share).';
const NEED_SHARE = "set --share-dir (CVAT_SHARE_DIR) to the host path where CVAT's share (/home/django/share) is mounted";

/** Before 2.44 the API cannot tell share tasks (nor cloud ones) apart: a share is needed. */
function requireShareKnowable(features: CvatFeatures, shareTasks: readonly number[]): void {
  if (shareTasks.length > 0) throw new ConfigError([`--share-tasks names tasks that read the share: ${NEED_SHARE}`]);
  if (!features.storageInMeta)
    throw new ConfigError([`CVAT ${features.version.raw} does not say which tasks read the share (data meta "storage" came in 2.44): ${NEED_SHARE}`]);
}

/** No share: every non-cloud task must not read it (exit 2 naming them when one does). */
async function withoutShare(tasks: AsyncIterable<GuardTask>): Promise<null> {
  const readers: number[] = [];
  for await (const task of tasks) if (task.storage === 'share' || task.storage === 'unknown') readers.push(task.taskId);
  if (readers.length > 0) {
    const shown = readers.slice(0, 10).join(', ') + (readers.length > 10 ? `, … (+${readers.length - 10} more)` : '');
    throw new ConfigError([`${readers.length} task(s) in scope read the share (${shown}): ${NEED_SHARE}`]);
  }
  return null;
}

/** The share part of `check --json` when it was not checked (schemas/check.schema.json: shareDir null). */
function notChecked(): Omit<CheckReport, 'shareDir' | 'fsType' | 'network'> & { shareDir: null; fsType: null; network: null } {
  const totals = { tasks: 0, shareTasks: 0, skippedTasks: 0, filesExpected: 0, filesPresent: 0, filesMissing: 0, filesMoved: 0, filesModified: 0 };
  return {
    version: 1,
    generatedAt: new Date().toISOString(),
    shareDir: null,
    fsType: null,
    network: null,
    ok: true,
    totals: { ...totals, statErrors: 0, rejectedNames: 0, warnings: 0, problemTasks: 0, scanSeconds: 0 },
    problems: [],
    warnings: [],
    skipped: [],
    backupRisk: { atRisk: 0, broken: 0, tasks: [] },
  };
}

/** One listing round through the guard's cloud source: each directory page listed once (no budget), nothing persisted. */
async function checkCloud(
  client: CvatClient,
  tasks: readonly GuardTask[],
  context: CommandContext,
  lastWarmedAt: Parameters<typeof runCheck>[1]['lastWarmedAt'],
): Promise<CloudRoundResult> {
  const guard = new CloudGuard({
    client,
    budget: UNLIMITED,
    logger: context.logger,
    metrics: context.metrics,
    intervalMs: 0,
    ...(lastWarmedAt ? { lastWarmedAt } : {}),
  });
  try {
    await guard.setTasks(tasks);
    return await guard.round('check', context.signal);
  } finally {
    await guard.close();
  }
}

/** The cloud part of `check --json` (schemas/check.schema.json `cloud`). */
function cloudJson(result: CloudRoundResult): Record<string, unknown> {
  return {
    expectedObjects: result.expectedObjects,
    listingCalls: result.calls,
    directoriesListed: result.directoriesListed,
    directoriesDeferred: result.directoriesDeferred,
    storages: result.storages,
    problems: result.problems.map(({ since: _since, ...p }) => p),
    listingProblems: result.listingProblems,
  };
}
