/**
 * `cvat-warden backup`: CVAT's own backup of each share task in scope, one at a time
 * (CVAT's export worker is shared), verified before it joins the older ones under
 * --backup-dir. Exit 0 when every task got a good backup, 1 when any did not.
 */
import type { CommandConfig } from '../config/index.js';
import { backupTask, type BackupResult } from '../backup/backup-task.js';
import { BackupStore } from '../backup/store.js';
import { exportOptionsOf, requireBackupSupport, sizeFromShareOf } from '../backup/cvat-export.js';
import type { InventoryIssue } from '../cvat/inventory.js';
import { ConfigError, EXIT } from '../errors.js';
import { createClient, type CommandContext } from './context.js';
import { writeCommandJson } from './json-output.js';
import { collectGuardTasks, formatInventoryIssues } from './shared.js';

export async function runBackup(config: CommandConfig, context: CommandContext): Promise<number> {
  if (context.backupAction) return (await import('./backup-actions.js')).runBackupAction(config, context, context.backupAction);
  const { logger, signal, metrics } = context;
  const client = createClient(config.cvat, context);
  if (!config.protection.backupDir) throw new ConfigError(['backup directory is missing: set --backup-dir DIR or CVAT_WARDEN_BACKUP_DIR']);
  const store = new BackupStore(config.protection.backupDir);
  try {
    const features = await client.features(signal);
    requireBackupSupport(features);
    const issues: InventoryIssue[] = [];
    const tasks = (await collectGuardTasks(client, features, config.scope, config.shareTasks, (issue) => issues.push(issue), signal)).filter(
      (t) => t.storage === 'share',
    );
    await store.clearTemp();
    const results: BackupResult[] = [];
    for (const task of tasks) {
      if (signal.aborted) break;
      const updated = await client.task(task.taskId, signal);
      const result = await backupTask(
        { client, features, store, keep: config.protection.backupKeep, exportOptions: exportOptionsOf(config, signal), ...sizeFromShareOf(config) },
        task,
        updated.ok ? (updated.value.updated_date ?? null) : null,
      );
      metrics.backups.inc({ outcome: result.outcome });
      (result.outcome === 'done' ? logger.info : logger.error).call(
        logger,
        { taskId: task.taskId, outcome: result.outcome, missingFile: result.missingFile },
        result.message,
      );
      results.push(result);
      if (!config.json)
        context.stdout.write(
          `${result.outcome === 'done' ? 'ok  ' : 'FAIL'} ${result.message}${result.outcome !== 'done' && result.newestGood ? ` (newest good backup kept: ${result.newestGood.file})` : ''}\n`,
        );
    }
    const problems = issues.filter((i) => i.severity === 'problem');
    if (config.json)
      writeCommandJson(context.stdout, 'backup', {
        cvat: { url: client.baseUrl, version: features.version.raw },
        backupDir: store.dir,
        results,
        inventoryIssues: issues,
      });
    else {
      context.stdout.write(formatInventoryIssues(issues));
      if (tasks.length === 0 && problems.length === 0) context.stdout.write('no share tasks in scope: nothing to back up\n');
    }
    const ok = results.every((r) => r.outcome === 'done') && problems.length === 0 && !signal.aborted;
    return ok ? EXIT.ok : EXIT.problems;
  } finally {
    await client.close();
  }
}
