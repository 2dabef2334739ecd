/**
 * `cvat-warden restore`: puts missing expected share files back from the vault, by
 * task, path or all. Needs no CVAT: the vault keeps each task's file list. Exit 0 when
 * everything asked for is in place, 1 when something could not be restored, 2 usage.
 */
import type { CommandConfig } from '../config/index.js';
import { ConfigError, EXIT } from '../errors.js';
import { formatRestoreReport, restoreFromVault, type RestoreSelection } from '../vault/restore.js';
import { VaultLayout } from '../vault/layout.js';
import { firstSymlinkIn } from '../vault/safe-path.js';
import type { CommandContext } from './context.js';
import { writeCommandJson } from './json-output.js';
import { requireShareDir } from './shared.js';

export async function runRestore(config: CommandConfig, context: CommandContext): Promise<number> {
  const shareDir = requireShareDir(config.shareDir);
  const vaultDir = config.protection.vaultDir;
  if (!vaultDir) throw new ConfigError(['vault directory is missing: set --vault DIR or CVAT_WARDEN_VAULT']);
  const link = await firstSymlinkIn(vaultDir);
  if (link) throw new ConfigError([`vault ${vaultDir}: ${link} is a symlink; restore never follows one — pass the vault's real path`]);
  const marker = await new VaultLayout(vaultDir).readMarker();
  if (marker.state === 'absent')
    throw new ConfigError([`${vaultDir} is not a vault (no .vault-meta/vault.json inside): pass the directory given to \`run --vault\``]);
  if (marker.state === 'damaged') throw new ConfigError([`vault ${vaultDir}: its marker is damaged (${marker.problem}); restore will not trust its records`]);
  const select: RestoreSelection = config.scope.all
    ? { all: true }
    : config.scope.taskIds.length
      ? { taskIds: config.scope.taskIds }
      : { paths: config.protection.restorePaths };
  const report = await restoreFromVault({ shareDir, vaultDir, select, dryRun: config.dryRun, signal: context.signal });
  // No metric here: this process exits with its counters. A running service counts each
  // file it sees come back from the vault (daemon/restore-observer.ts).
  if (!report.dryRun) for (const entry of report.restored) context.logger.info({ path: entry.path }, 'restored from the vault');
  if (config.json) writeCommandJson(context.stdout, 'restore', report);
  else context.stdout.write(formatRestoreReport(report));
  return report.ok ? EXIT.ok : EXIT.problems;
}
