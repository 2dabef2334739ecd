/**
 * What `run` does to protect share data, in one place so the service wires it with a
 * few calls: the vault (`--vault`, fed the same GuardTask records as the guard), the
 * reaction to guard alerts (is the file recoverable from the vault? `--auto-restore`
 * puts it back at once), and CVAT-native backups (`--backup-dir`).
 */
import type { CommandConfig } from '../config/index.js';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { TaskRecord } from '../cvat/inventory.js';
import { ConfigError, describeError } from '../errors.js';
import { toGuardTask, type FileAlert, type ShareGuard } from '../guard/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { BackupScheduler, type BackupSchedulerStatus } from '../backup/scheduler.js';
import { exportOptionsOf, sizeFromShareOf } from '../backup/cvat-export.js';
import { restoreFromVault } from '../vault/restore.js';
import { Vault, type VaultStatus } from '../vault/vault.js';
import { RestoreObserver } from './restore-observer.js';

export interface ProtectionDeps {
  config: CommandConfig;
  client: CvatClient;
  logger: Logger;
  metrics: Metrics;
  /** A configuration error found while running (the vault misplaced for a task): the service stops with exit 2. */
  onFatal?: (error: ConfigError) => void;
  /** Test knobs. */
  backupRetryAfterMs?: number;
  /** Auto-restore attempts of one path within `autoRestoreWindowMs` before it stops fighting whoever removes it. @default 3 */
  autoRestoreMaxAttempts?: number;
  /** @default 1 h */
  autoRestoreWindowMs?: number;
}

/** Paths whose auto-restore history is remembered (oldest forgotten first): bounds the memory a flood of deletions can take. */
const AUTO_RESTORE_MEMORY = 10_000;

/** How often the space held only by the vault is measured (a stat per file). */
const VAULT_MEASURE_INTERVAL_MS = 3_600_000;

/** The latest of CVAT's ISO dates (same format, so they order as strings); null when none. */
function newestDate(dates: ReadonlyArray<string | undefined>): string | null {
  let newest: string | null = null;
  for (const d of dates) if (d !== undefined && (newest === null || Date.parse(d) > Date.parse(newest))) newest = d;
  return newest;
}

export interface ProtectionStatus {
  vault: VaultStatus | null;
  autoRestore: boolean;
  backups: BackupSchedulerStatus | null;
}

export class Protection {
  readonly vault: Vault | undefined;
  readonly backups: BackupScheduler | undefined;
  readonly #d: ProtectionDeps;
  readonly #logger: Logger;
  readonly #seen = new Set<number>();
  /** Per path: when auto-restore put it back (recent ones only), and whether giving up was logged. */
  readonly #autoRestored = new Map<string, { at: number[]; gaveUp: boolean }>();
  #swept = false;
  #measureTimer: NodeJS.Timeout | undefined;
  #restores: RestoreObserver | undefined;

  private constructor(d: ProtectionDeps, vault: Vault | undefined, backups: BackupScheduler | undefined) {
    this.#d = d;
    this.#logger = d.logger.child({ component: 'protection' });
    this.vault = vault;
    this.backups = backups;
  }

  /** Opens the vault (a wrong setup throws a ConfigError: exit 2) and the backup store; undefined when neither is asked for. */
  static async start(d: ProtectionDeps): Promise<Protection | undefined> {
    const p = d.config.protection;
    if (!p.vaultDir && !p.backupDir) return undefined;
    const vault =
      p.vaultDir && d.config.shareDir
        ? await Vault.open({ shareDir: d.config.shareDir, vaultDir: p.vaultDir, mode: p.vaultMode, logger: d.logger, metrics: d.metrics })
        : undefined;
    const backups = p.backupDir
      ? new BackupScheduler({
          client: d.client,
          dir: p.backupDir,
          keep: p.backupKeep,
          exportOptions: exportOptionsOf(d.config),
          ...sizeFromShareOf(d.config),
          logger: d.logger,
          metrics: d.metrics,
          ...(d.backupRetryAfterMs !== undefined ? { retryAfterMs: d.backupRetryAfterMs } : {}),
        })
      : undefined;
    const protection = new Protection(d, vault, backups);
    backups?.start();
    if (vault) {
      // Space held only by the vault: measured hourly (a stat per file), and after alerts.
      protection.#measureTimer = setInterval(() => void vault.measure().catch(() => undefined), VAULT_MEASURE_INTERVAL_MS);
      protection.#measureTimer.unref();
    }
    return protection;
  }

  /** Share-relative directories the guard must never guard (the vault inside the share). */
  get ignoredPrefixes(): string[] {
    return this.vault?.prefixInShare !== undefined ? [this.vault.prefixInShare] : [];
  }

  attachGuard(guard: ShareGuard): void {
    if (!this.vault) return;
    const vault = this.vault;
    const failed = (error: unknown) => this.#logger.error({ err: describeError(error) }, 'vault reaction to a share alert failed');
    const onGone = (alert: FileAlert) => void this.#onGone(vault, alert).catch(failed);
    guard.on('deleted', onGone);
    guard.on('moved', onGone);
    // Restores are counted here, where files are seen coming back (restore-observer.ts).
    this.#restores = new RestoreObserver(vault, this.#d.config.shareDir ?? '', this.#d.metrics);
    const observer = this.#restores;
    guard.on('restored', (alert) => void observer.onBack(alert).catch(failed));
  }

  async #onGone(vault: Vault, alert: FileAlert): Promise<void> {
    const shareDir = this.#d.config.shareDir ?? '';
    const recoverable = await vault.holds(alert.path);
    const restoreHint = `cvat-warden restore --share-dir ${shareDir} --vault ${vault.layout.root} --path ${alert.path}`;
    if (!this.#d.config.protection.autoRestore || !recoverable) {
      this.#logger.warn(
        { path: alert.path, kind: alert.kind, tasks: alert.taskIds, recoverable },
        recoverable
          ? `share file ${alert.kind}: recoverable from the vault (${restoreHint})`
          : `share file ${alert.kind}: NOT in the vault, not recoverable from it`,
      );
      void vault.measure().catch(() => undefined);
      return;
    }
    if (!this.#mayAutoRestore(alert.path, restoreHint)) return;
    const ino = vault.inodeOf(alert.path);
    // Before the link: the guard may see the file back before this await returns.
    this.#restores?.expectOwn(alert.path);
    const report = await restoreFromVault({
      shareDir,
      vaultDir: vault.layout.root,
      select: { paths: [alert.path], inodes: new Map(ino === undefined ? [] : [[alert.path, ino]]) },
      mode: vault.mode,
    });
    if (report.restored.length === 0) this.#restores?.forgetOwn(alert.path);
    for (const outcome of ['restored', 'unrecoverable', 'skipped'] as const) this.#d.metrics.restores.inc({ outcome, trigger: 'auto' }, report[outcome].length);
    if (report.restored.length)
      this.#logger.warn({ path: alert.path, kind: alert.kind, tasks: alert.taskIds }, 'auto-restore: share file put back from the vault');
    else
      this.#logger.error(
        { path: alert.path, reasons: [...report.unrecoverable, ...report.skipped].map((e) => e.reason) },
        'auto-restore: could not put the share file back',
      );
  }

  /**
   * One attempt per disappearance, and no fight: a path removed again and again within
   * the window (someone means it) is left to the admin after a few attempts, said once.
   */
  #mayAutoRestore(rel: string, restoreHint: string): boolean {
    const now = Date.now();
    const max = this.#d.autoRestoreMaxAttempts ?? 3;
    const window = this.#d.autoRestoreWindowMs ?? 3_600_000;
    const history = this.#autoRestored.get(rel) ?? { at: [], gaveUp: false };
    history.at = history.at.filter((t) => now - t < window);
    this.#autoRestored.delete(rel);
    this.#autoRestored.set(rel, history);
    if (this.#autoRestored.size > AUTO_RESTORE_MEMORY) this.#autoRestored.delete(this.#autoRestored.keys().next().value!);
    if (history.at.length >= max) {
      if (!history.gaveUp)
        this.#logger.error(
          { path: rel, attempts: history.at.length, windowS: window / 1000 },
          `auto-restore: this file was removed again after each of ${history.at.length} restores; not restoring it again for now (someone may mean it): ${restoreHint}`,
        );
      history.gaveUp = true;
      return false;
    }
    history.at.push(now);
    history.gaveUp = false;
    return true;
  }

  /** Every task discovery reads (new or changed). */
  async onRecord(record: TaskRecord, features: CvatFeatures): Promise<void> {
    this.#seen.add(record.task.id);
    const task = toGuardTask(record, features, new Set(this.#d.config.shareTasks));
    if (!task || task.storage !== 'share') return;
    try {
      await this.vault?.upsert(task);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      // The vault is misplaced for this task: it stopped before linking any of its files.
      if (this.#d.onFatal) this.#d.onFatal(error);
      else throw error;
    }
    // A job change (reopened, a GT job added) moves the job's updated_date, not the task's
    // (cvat/apps/engine/signals.py touches the task only when its aggregated status changes):
    // the newest of both says when the backup's content last changed.
    await this.backups?.upsert(task, newestDate([record.task.updated_date, ...record.jobs.map((j) => j.updated_date)]), features);
  }

  async onRemoved(taskId: number): Promise<void> {
    this.#seen.delete(taskId);
    await this.vault?.remove([taskId]);
    this.backups?.remove(taskId);
  }

  /**
   * After a complete discovery pass: the first one sweeps the vault of tasks CVAT no
   * longer has. `listed(id)`: tasks CVAT listed although this pass could not read them.
   */
  async onDiscoveryPass(listed: (taskId: number) => boolean): Promise<void> {
    if (this.#swept || !this.vault) return;
    this.#swept = true;
    await this.vault.sweep((taskId) => this.#seen.has(taskId) || listed(taskId));
    await this.vault.measure();
  }

  /** /status `protection` (schemas/status.schema.json). */
  status(): ProtectionStatus {
    return { vault: this.vault?.status() ?? null, autoRestore: this.#d.config.protection.autoRestore, backups: this.backups?.status() ?? null };
  }

  async close(): Promise<void> {
    if (this.#measureTimer) clearInterval(this.#measureTimer);
    await this.backups?.close();
    await this.vault?.close();
  }
}
