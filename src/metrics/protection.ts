/** Protection: the vault, restores and CVAT-native backups of share tasks. */
import { Counter, Gauge, type Registry } from 'prom-client';
import { BACKUP_OUTCOMES, RESTORE_OUTCOMES } from '../domain.js';

export function protectionMetrics(registry: Registry) {
  const vaultFiles = new Gauge({
    name: 'cvat_warden_vault_files',
    help: 'Expected share files the vault holds a hard link (or reflink copy) of.',
    registers: [registry],
  });
  const vaultOnlyBytes = new Gauge({
    name: 'cvat_warden_vault_only_bytes',
    help: 'Bytes held only by the vault: entries whose original share file is gone (link count 1), as of the last measure.',
    registers: [registry],
  });
  const vaultPruned = new Counter({
    name: 'cvat_warden_vault_pruned_files_total',
    help: 'Vault entries removed because no task needs the file any more (task deleted, file no longer referenced).',
    registers: [registry],
  });
  const vaultErrors = new Counter({
    name: 'cvat_warden_vault_errors_total',
    help: 'Share files the vault failed to link although they exist (permissions, EXDEV, disk full).',
    registers: [registry],
  });
  const vaultNotOwned = new Counter({
    name: 'cvat_warden_vault_entries_not_owned_total',
    help: "Vault paths left alone because the entry there is not the one the vault made (replaced, a symlink, someone else's file): reported, never deleted or overwritten.",
    registers: [registry],
  });
  const restores = new Counter({
    name: 'cvat_warden_restored_files_total',
    help: 'Share files restored from the vault, counted by the service: trigger auto = its own auto-restore (outcome restored, unrecoverable or skipped); trigger command = a file it saw come back as the vault entry (cvat-warden restore; outcome restored).',
    labelNames: ['outcome', 'trigger'] as const,
    registers: [registry],
  });
  for (const outcome of RESTORE_OUTCOMES) for (const trigger of ['command', 'auto']) restores.inc({ outcome, trigger }, 0);
  const backups = new Counter({
    name: 'cvat_warden_backups_total',
    help: 'CVAT task backups attempted, by outcome (done, failed, missing_file = CVAT could not read a share file, invalid = the zip failed verification).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of BACKUP_OUTCOMES) backups.inc({ outcome }, 0);
  const taskBackupAge = new Gauge({
    name: 'cvat_warden_task_backup_age_seconds',
    help: 'Age of the newest good backup per share task; series only for the 100 tasks with the oldest backups.',
    labelNames: ['task_id'] as const,
    registers: [registry],
  });
  const shareTasksWithoutBackup = new Gauge({
    name: 'cvat_warden_share_tasks_without_backup',
    help: 'Share tasks with data that have no good backup: verified and restorable on this CVAT (made but not restorable before CVAT 2.52 does not count).',
    registers: [registry],
  });
  const shareTasksBackedUp = new Gauge({
    name: 'cvat_warden_share_tasks_backed_up',
    help: 'Share tasks whose newest backup is verified and newer than their last media or job change.',
    registers: [registry],
  });

  return {
    vaultFiles,
    vaultOnlyBytes,
    vaultPruned,
    vaultErrors,
    vaultNotOwned,
    restores,
    backups,
    taskBackupAge,
    shareTasksWithoutBackup,
    shareTasksBackedUp,
  };
}
