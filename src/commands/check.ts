/**
 * `cvat-warden check`: one pass — stream the share tasks from CVAT, index the files
 * they depend on as each task arrives, stat each once — then a table or --json. Exit 0
 * when every file is in place, 1 when any is missing, moved, changed or unreadable (or
 * a name was rejected).
 */
import { shareBackupNote } from '../backup/restorability.js';
import type { CommandConfig } from '../config/index.js';
import { checkExitCode, formatCheckReport, runCheck } from '../guard/index.js';
import type { InventoryIssue, TaskRecord } from '../cvat/inventory.js';
import { CloudGuard, UNLIMITED, cloudExitCode, cloudExpectation, formatCloudReport, type CloudRoundResult, type CloudTaskExpectation } from '../cloud/index.js';
import { createClient, type CommandContext } from './context.js';
import { writeCommandJson } from './json-output.js';
import { formatInventoryIssues, openLedgerForReading, streamGuardTasks, requireShareDir } from './shared.js';
import { recoverableFromVault, formatRecoverable } from '../vault/recoverable.js';

export async function runCheckCommand(config: CommandConfig, context: CommandContext): Promise<number> {
  const { logger, signal } = context;
  const shareDir = requireShareDir(config.shareDir);
  const client = createClient(config.cvat, context);
  const ledger = await openLedgerForReading(config.stateDir, logger);
  context.shutdown.onShutdown('close the ledger', () => ledger.close());
  context.shutdown.onShutdown('close the CVAT client', () => client.close());
  try {
    const features = await client.features(signal);
    const issues: InventoryIssue[] = [];
    // One walk over CVAT: cloud-storage tasks go to the cloud check, the rest to the share check.
    const cloudTasks: CloudTaskExpectation[] = [];
    const divertCloud = (record: TaskRecord): boolean => {
      const cloud = cloudExpectation(record);
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
    const report = await runCheck(tasks, {
      shareDir,
      stateDir: config.stateDir,
      includeUnknownStorage: !features.storageInMeta,
      logger,
      ...(ledger.lastWarmedAt ? { lastWarmedAt: ledger.lastWarmedAt } : {}),
    });
    // Each directory page listed once: no budget in a one-shot check.
    let cloud: CloudRoundResult | undefined;
    if (cloudTasks.length > 0) {
      const guard = new CloudGuard({ client, budget: UNLIMITED, logger });
      guard.setTasks(cloudTasks);
      cloud = await guard.round(signal);
      guard.close();
    }
    const problems = issues.filter((i) => i.severity === 'problem');
    const gone = report.problems.flatMap((p) => [...p.missing, ...p.moved.map((m) => m.path)]);
    const vault = config.protection.vaultDir ? await recoverableFromVault(config.protection.vaultDir, gone) : undefined;
    if (config.json)
      writeCommandJson(context.stdout, 'check', {
        cvat: { url: client.baseUrl, version: features.version.raw },
        ...report,
        ...(vault ? { vault } : {}),
        ...(cloud ? { cloud: cloudJson(cloud) } : {}),
        inventoryIssues: issues,
      });
    else {
      context.stdout.write(formatCheckReport(report, shareBackupNote(features.version)));
      if (vault) context.stdout.write(formatRecoverable(vault, shareDir));
      if (cloud) context.stdout.write(formatCloudReport(cloud));
      if (problems.length) context.stdout.write(`\n${formatInventoryIssues(problems)}`);
    }
    const vaultDamaged = vault !== undefined && (vault.problem !== undefined || vault.damagedRecords.count > 0);
    return Math.max(checkExitCode(report), problems.length || vaultDamaged ? 1 : 0, cloud ? cloudExitCode(cloud) : 0);
  } finally {
    await ledger.close();
    await client.close();
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
