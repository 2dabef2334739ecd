/**
 * The backup lifecycle, restic-style, over the kept backups under --backup-dir:
 *
 *   backup list              every kept backup: task, time, size, SHA-256, verified, restorable on this CVAT
 *   backup verify            re-reads each zip against the SHA-256 recorded when it was made (exit 1 on any mismatch)
 *   backup restore FILE      imports one kept zip into CVAT (import.ts) and prints the new task id; --project ID moves it there
 *
 * Retention stays where it was: --backup-keep, applied at each new backup, never the newest good one.
 */
import path from 'node:path';
import type { CommandConfig } from '../config/index.js';
import { BackupRestoreError, importBackup } from '../backup/import.js';
import { restorabilityOf } from '../backup/restorability.js';
import { BackupStore, sha256Of, type StoredBackup } from '../backup/store.js';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import { ConfigError, describeError, EXIT } from '../errors.js';
import { createClient, type CommandContext } from './context.js';
import { writeCommandJson } from './json-output.js';

export type BackupAction = { kind: 'list' } | { kind: 'verify' } | { kind: 'restore'; file: string };

const ACTIONS = ['list', 'verify', 'restore'];

/** `backup <action> [FILE] --options…` → the action and the options left for the config parser. */
export function splitBackupAction(argv: readonly string[]): { argv: string[]; action: BackupAction | undefined } {
  const [first, ...rest] = argv;
  if (first === undefined || first.startsWith('-')) return { argv: [...argv], action: undefined };
  if (!ACTIONS.includes(first))
    throw new ConfigError([`unknown backup action ${JSON.stringify(first.slice(0, 40))}: use backup list, backup verify or backup restore FILE`]);
  if (first !== 'restore') return { argv: rest, action: { kind: first as 'list' | 'verify' } };
  const fileAt = rest.findIndex((a) => !a.startsWith('-'));
  // The FILE is the first word that is not an option's value: options taking values are written --name=value or precede it.
  const file = fileAt === 0 ? rest[0] : undefined;
  if (file === undefined) throw new ConfigError(['backup restore needs the zip to import: backup restore FILE [--project ID]']);
  return { argv: rest.slice(1), action: { kind: 'restore', file } };
}

interface ListedBackup {
  taskId: number;
  file: string;
  at: string;
  bytes: number;
  sha256: string | null;
  verified: boolean;
  mediaFiles: number;
  relatedFiles: number | null;
  madeOn: string | null;
  restorable: boolean;
  repairable: boolean;
  note: string | null;
}

function judge(b: StoredBackup, features: CvatFeatures | undefined): Pick<ListedBackup, 'restorable' | 'repairable' | 'note'> {
  if (features && b.facts) {
    const r = restorabilityOf(b.facts, features.version);
    return { restorable: r.restorable, repairable: r.repairable, note: r.reason ?? null };
  }
  // No facts (made before they were recorded) or no CVAT to ask: what was recorded, and never good without a record.
  return {
    restorable: b.restorable === true,
    repairable: false,
    note: b.restoreNote ?? (b.restorable === undefined ? 'made before restorability was recorded: not proven' : null),
  };
}

async function allKept(store: BackupStore): Promise<StoredBackup[]> {
  const out: StoredBackup[] = [];
  for (const id of (await store.taskIds()).sort((a, b) => a - b)) out.push(...(await store.list(id)));
  return out;
}

export async function runBackupAction(config: CommandConfig, context: CommandContext, action: BackupAction): Promise<number> {
  if (!config.protection.backupDir) throw new ConfigError(['backup directory is missing: set --backup-dir DIR or CVAT_WARDEN_BACKUP_DIR']);
  const store = new BackupStore(config.protection.backupDir);
  // verify reads only the backup directory: it needs no CVAT.
  if (action.kind === 'verify') return verifyKept(config, context, store);
  const client = createClient(config.cvat, context);
  try {
    if (action.kind === 'list') return await listKept(config, context, store, client);
    return await restoreKept(config, context, store, client, action.file);
  } finally {
    await client.close();
  }
}

/** `backup verify`: each kept zip against the SHA-256 recorded when it was made. */
async function verifyKept(config: CommandConfig, context: CommandContext, store: BackupStore): Promise<number> {
  const out = context.stdout;
  const results: Array<{ taskId: number; file: string; ok: boolean; problem: string | null }> = [];
  for (const b of await allKept(store)) {
    const problem = await damageOf(b);
    results.push({ taskId: b.taskId, file: b.file, ok: problem === null, problem });
    if (problem) context.logger.error({ taskId: b.taskId, file: b.file }, `backup damaged: ${problem}`);
  }
  const ok = results.every((r) => r.ok);
  if (config.json) writeCommandJson(out, 'backup-verify', { backupDir: store.dir, ok, results });
  else {
    for (const r of results) out.write(`${r.ok ? 'ok  ' : 'FAIL'} task ${r.taskId} ${path.basename(r.file)}${r.problem ? `: ${r.problem}` : ''}\n`);
    out.write(results.length ? `${results.filter((r) => r.ok).length}/${results.length} backup(s) intact\n` : `no backups kept under ${store.dir}\n`);
  }
  return ok ? EXIT.ok : EXIT.problems;
}

/** Why a kept backup cannot be trusted, or null when its bytes are still the ones recorded. */
async function damageOf(b: StoredBackup): Promise<string | null> {
  if (!b.sha256) return 'no SHA-256 recorded (made before 0.2): cannot be checked';
  const now = await sha256Of(b.file).catch((error: unknown) => `unreadable: ${describeError(error)}`);
  if (now === b.sha256) return null;
  return now.startsWith('unreadable') ? now : `SHA-256 mismatch: recorded ${b.sha256}, now ${now}`;
}

/** `backup list`: every kept backup, judged on the CVAT reachable now (or as recorded when it is not). */
async function listKept(config: CommandConfig, context: CommandContext, store: BackupStore, client: CvatClient): Promise<number> {
  const out = context.stdout;
  let features: CvatFeatures | undefined;
  try {
    features = await client.features(context.signal);
  } catch (error) {
    context.logger.warn({ err: describeError(error) }, 'CVAT not reachable: listing restorability as recorded when each backup was made');
  }
  const rows: ListedBackup[] = (await allKept(store)).map((b) => ({
    taskId: b.taskId,
    file: b.file,
    at: new Date(b.at).toISOString(),
    bytes: b.bytes,
    sha256: b.sha256 ?? null,
    verified: true,
    mediaFiles: b.mediaFiles,
    relatedFiles: b.relatedFiles ?? null,
    madeOn: b.cvatVersion ?? null,
    ...judge(b, features),
  }));
  if (config.json) writeCommandJson(out, 'backup-list', { backupDir: store.dir, cvatVersion: features?.version.raw ?? null, backups: rows });
  else {
    for (const r of rows)
      out.write(
        `task ${r.taskId}  ${r.at}  ${r.bytes} B  sha256 ${r.sha256?.slice(0, 16) ?? '-'}…  verified  ` +
          `${r.restorable ? 'restorable' : r.repairable ? 'restorable after repair' : 'NOT restorable'}${features ? ` on CVAT ${features.version.raw}` : ' (as recorded)'}` +
          `${r.note && !r.restorable ? ` — ${r.note}` : ''}\n  ${r.file}\n`,
      );
    if (rows.length === 0) out.write(`no backups kept under ${store.dir}\n`);
  }
  return EXIT.ok;
}

/** `backup restore FILE`: import one zip into CVAT and print the new task id. */
async function restoreKept(config: CommandConfig, context: CommandContext, store: BackupStore, client: CvatClient, fileArg: string): Promise<number> {
  const out = context.stdout;
  const file = path.resolve(fileArg);
  const projectIds = config.scope.projectIds;
  if (projectIds.length > 1) throw new ConfigError(['backup restore takes one --project ID']);
  const features = await client.features(context.signal);
  try {
    const result = await importBackup(client, features, store, file, {
      timeoutMs: config.protection.backupLimits.timeoutMs,
      signal: context.signal,
      ...(projectIds[0] !== undefined ? { projectId: projectIds[0] } : {}),
    });
    context.logger.info({ file, taskId: result.taskId, repaired: result.repaired, projectId: result.projectId }, 'backup restored into CVAT');
    if (config.json) writeCommandJson(out, 'backup-restore', { file, ...result });
    else out.write(`${result.taskId}\n`);
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof BackupRestoreError)) throw error;
    context.stderr.write(`cvat-warden backup restore: ${error.message}\n`);
    if (config.json) writeCommandJson(out, 'backup-restore', { file, error: error.message });
    return EXIT.problems;
  }
}
