/**
 * One validated configuration per command, from flags and environment. All problems
 * are gathered and thrown together as a ConfigError (exit 2); secrets read from files
 * or the environment are registered for redaction before anything can log them.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { parseBaseUrl } from '../cvat/client.js';
import type { CvatCredentials } from '../cvat/auth.js';
import { requestLimits, type RequestLimits } from '../cvat/limits.js';
import type { Scope } from '../cvat/inventory.js';
import type { Quality, VaultMode } from '../domain.js';
import { registerSecret } from '../secrets.js';
import type { CommandName } from './options.js';
import { parseOptions, type ParsedOptions } from './parse.js';

export interface CvatConfig {
  url: string;
  credentials: CvatCredentials | undefined;
  organization: string | undefined;
  /** Deadline and byte cap per kind of CVAT request. */
  limits: RequestLimits;
  /** Hard cap on pages of one CVAT list. */
  maxPages: number;
}

export interface WarmSettings {
  qualities: Quality[];
  previews: boolean;
  contextImages: boolean;
  skipCompleted: boolean;
  concurrency: number;
  maxAgeMs: number;
  coldThresholdMs: number;
}

export interface CommandConfig {
  command: CommandName;
  help: boolean;
  json: boolean;
  logLevel: string;
  stateDir: string;
  cvat: CvatConfig;
  scope: Scope;
  warm: WarmSettings;
  dryRun: boolean;
  shareDir: string | undefined;
  shareTasks: number[];
  scanIntervalMs: number;
  pollIntervalMs: number;
  listen: { host: string; port: number };
  webhookSecret: string | undefined;
  emulator: { host: string; port: number; version: string; buildTimeMs: number; workers: number };
  /** The vault (`--vault`), restore's `--path`s and CVAT-native backups (`--backup-dir`). */
  protection: { vaultDir: string | undefined; vaultMode: VaultMode; autoRestore: boolean; restorePaths: string[]; backupDir: string | undefined; backupKeep: number };
  /** Raw option values, for commands with extras. */
  options: ParsedOptions;
}

const TTL_MS = 24 * 3_600_000;

function readSecretFile(path: string, what: string, problems: string[]): string | undefined {
  try {
    const value = readFileSync(path, 'utf8').trim();
    if (!value) problems.push(`${what} file ${path} is empty`);
    return value || undefined;
  } catch (error) {
    problems.push(`${what} file ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
}

function resolveCredentials(o: ParsedOptions, env: NodeJS.ProcessEnv, problems: string[]): CvatCredentials | undefined {
  const str = (name: string) => o.values.get(name) as string | undefined;
  const tokenFile = str('token-file');
  const keyFile = str('api-key-file');
  const token = tokenFile ? readSecretFile(tokenFile, 'access token', problems) : env['CVAT_ACCESS_TOKEN'] || undefined;
  const key = keyFile ? readSecretFile(keyFile, 'API key', problems) : env['CVAT_API_KEY'] || undefined;
  const username = str('username');
  const passwordFile = str('password-file');
  const password = passwordFile ? readSecretFile(passwordFile, 'password', problems) : env['CVAT_PASSWORD'] || undefined;
  for (const secret of [token, key, password]) registerSecret(secret);

  const given = [token && 'an access token', key && 'an API key', (username || password) && 'a username/password'].filter(Boolean);
  if (given.length > 1) problems.push(`several credentials are set (${given.join(', ')}): keep exactly one`);
  if (token) return { kind: 'token', token };
  if (key) return { kind: 'apiKey', key };
  if (username && password) return { kind: 'basic', username, password };
  if (username && !password) problems.push('CVAT_USERNAME is set but no password: set CVAT_PASSWORD or --password-file');
  if (password && !username) problems.push('a password is set but no user: set CVAT_USERNAME or --username');
  return undefined;
}

export function loadConfig(command: CommandName, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CommandConfig {
  const o = parseOptions(command, argv, env);
  const problems = [...o.problems];
  const get = <T>(name: string): T | undefined => o.values.get(name) as T | undefined;
  const help = get<boolean>('help') ?? false;
  const needsCvat = command === 'warm' || command === 'check' || command === 'run' || command === 'doctor' || command === 'backup';

  let url = '';
  const rawUrl = get<string>('url');
  if (needsCvat && !help) {
    if (!rawUrl) problems.push('CVAT URL is missing: set CVAT_URL or --url (e.g. https://cvat.example.com)');
    else {
      const parsed = parseBaseUrl(rawUrl);
      if (parsed.problem) problems.push(`${o.sources.get('url')}: ${parsed.problem}`);
      else url = parsed.url!.toString().replace(/\/+$/, '');
    }
  }
  const credentials = needsCvat && !help ? resolveCredentials(o, env, problems) : undefined;
  if (needsCvat && !help && !credentials && !problems.some((p) => /password|user/.test(p))) {
    problems.push('no CVAT credentials: set CVAT_ACCESS_TOKEN (or --token-file), CVAT_API_KEY, or CVAT_USERNAME and CVAT_PASSWORD');
  }

  const scope: Scope = {
    all: get<boolean>('all') ?? false,
    taskIds: get<number[]>('task') ?? [],
    projectIds: get<number[]>('project') ?? [],
    jobIds: get<number[]>('job') ?? [],
  };
  const scoped = scope.all || scope.taskIds.length + scope.projectIds.length + scope.jobIds.length > 0;
  if ((command === 'warm' || command === 'check') && !help && !scoped) {
    problems.push('nothing to do: choose --all, --task ID, --project ID' + (command === 'warm' ? ' or --job ID' : ''));
  }
  const restorePaths = get<string[]>('path') ?? [];
  if (command === 'backup' && !help && !scoped) problems.push('nothing to back up: choose --all, --task ID or --project ID');
  if (command === 'backup' && !help && !get<string>('backup-dir')) problems.push('backup directory is missing: set --backup-dir DIR or CVAT_WARDEN_BACKUP_DIR');
  if (command === 'restore' && !help) {
    const chosen = [scope.all, scope.taskIds.length > 0, restorePaths.length > 0].filter(Boolean).length;
    if (chosen !== 1) problems.push('restore needs exactly one of --all, --task ID or --path P');
    if (!get<string>('vault')) problems.push('vault directory is missing: set --vault DIR or CVAT_WARDEN_VAULT');
    if (!get<string>('share-dir')) problems.push("share directory is missing: set --share-dir or CVAT_SHARE_DIR to the host path of CVAT's share");
  }
  const backupKeep = get<number>('backup-keep') ?? 3;
  if (backupKeep < 1 || backupKeep > 1000) problems.push(`${o.sources.get('backup-keep')}: expected 1 to 1000 backups kept per task, got ${backupKeep}`);
  const autoRestore = get<boolean>('auto-restore') ?? false;
  if (command === 'run' && autoRestore && !get<string>('vault')) problems.push('--auto-restore needs a vault: set --vault DIR or CVAT_WARDEN_VAULT');
  if (command === 'run' && get<string>('vault') && !get<string>('share-dir')) problems.push('--vault needs --share-dir (the vault keeps links to share files)');
  if (scope.all && scope.taskIds.length + scope.projectIds.length + scope.jobIds.length > 0) {
    problems.push('--all cannot be combined with --task, --project or --job');
  }

  const quality = get<string>('quality') ?? 'compressed';
  const concurrency = get<number>('concurrency') ?? 1;
  if (concurrency < 1 || concurrency > 64) problems.push(`${o.sources.get('concurrency')}: expected 1 to 64 requests in flight, got ${concurrency}`);
  const maxAgeMs = get<number>('max-age') ?? 20 * 3_600_000;
  if (maxAgeMs >= TTL_MS || maxAgeMs < 60_000) {
    problems.push(`${o.sources.get('max-age')}: expected between 1m and 24h (CVAT drops chunks 24 h after building them), got ${maxAgeMs / 3_600_000} h`);
  }

  const requestTimeoutMs = get<number>('request-timeout') ?? 60_000;
  const chunkTimeoutMs = get<number>('chunk-timeout') ?? 120_000;
  for (const [name, ms] of [['request-timeout', requestTimeoutMs], ['chunk-timeout', chunkTimeoutMs]] as const) {
    if (ms < 100 || ms > 3_600_000) problems.push(`${o.sources.get(name)}: expected between 100ms and 1h, got ${ms} ms`);
  }
  const maxPages = get<number>('max-list-pages') ?? 100;
  if (maxPages < 1 || maxPages > 100_000) problems.push(`${o.sources.get('max-list-pages')}: expected 1 to 100000 pages, got ${maxPages}`);
  const maxResponseMib = get<number>('max-response-mib') ?? 64;
  if (maxResponseMib < 1 || maxResponseMib > 4096) problems.push(`${o.sources.get('max-response-mib')}: expected 1 to 4096 MiB, got ${maxResponseMib}`);

  const listenText = get<string>('listen') ?? '0.0.0.0:9464';
  const listenMatch = /^(.*):(\d{1,5})$/.exec(listenText);
  const listen = { host: listenMatch?.[1]?.replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(listenMatch?.[2] ?? NaN) };
  if (command === 'run' && (!listenMatch || listen.port > 65535)) problems.push(`${o.sources.get('listen')}: expected host:port such as 0.0.0.0:9464, got "${listenText}"`);

  let webhookSecret: string | undefined;
  if (command === 'run') {
    const file = get<string>('webhook-secret-file');
    webhookSecret = file ? readSecretFile(file, 'webhook secret', problems) : env['CVAT_WEBHOOK_SECRET'] || undefined;
    registerSecret(webhookSecret);
  }

  const port = get<number>('port') ?? 8080;
  if (port > 65535) problems.push(`--port: expected 0 to 65535, got ${port}`);
  const workers = get<number>('workers') ?? 2;
  if (workers < 1) problems.push(`--workers: expected at least 1, got ${workers}`);

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    command,
    help,
    json: get<boolean>('json') ?? false,
    logLevel: get<string>('log-level') ?? 'info',
    stateDir: get<string>('state-dir') ?? './.cvat-warden',
    cvat: {
      url,
      credentials,
      organization: get<string>('org'),
      limits: requestLimits({ requestTimeoutMs, chunkTimeoutMs, maxResponseBytes: maxResponseMib * 1024 * 1024 }),
      maxPages,
    },
    scope,
    warm: {
      qualities: quality === 'both' ? ['compressed', 'original'] : [quality as Quality],
      previews: get<boolean>('previews') ?? false,
      contextImages: get<boolean>('context-images') ?? false,
      // The service stops warming completed jobs unless asked; a one-off `warm` includes them.
      skipCompleted: command === 'run' ? !(get<boolean>('warm-completed') ?? false) : (get<boolean>('skip-completed') ?? false),
      concurrency,
      maxAgeMs,
      coldThresholdMs: get<number>('cold-threshold') ?? 250,
    },
    dryRun: get<boolean>('dry-run') ?? false,
    shareDir: get<string>('share-dir'),
    shareTasks: get<number[]>('share-tasks') ?? [],
    scanIntervalMs: get<number>('scan-interval') ?? 3_600_000,
    pollIntervalMs: get<number>('poll-interval') ?? 60_000,
    listen,
    webhookSecret,
    emulator: {
      host: get<string>('host') ?? '127.0.0.1',
      port,
      version: get<string>('cvat-version') ?? '2.73.0',
      buildTimeMs: get<number>('build-time') ?? 300,
      workers,
    },
    protection: {
      vaultDir: get<string>('vault'),
      vaultMode: (get<string>('vault-mode') ?? 'link') as VaultMode,
      autoRestore,
      restorePaths,
      backupDir: get<string>('backup-dir'),
      backupKeep,
    },
    options: o,
  };
}
