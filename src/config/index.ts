/**
 * One validated configuration per command, from flags and environment. All problems
 * are gathered and thrown together as a ConfigError (exit 2); secrets read from files
 * or the environment are registered for redaction before anything can log them.
 */
import { ConfigError } from '../errors.js';
import { parseBaseUrl } from '../cvat/base-url.js';
import type { CvatCredentials } from '../cvat/auth.js';
import { requestLimits, type RequestLimits } from '../cvat/limits.js';
import type { Scope } from '../cvat/inventory.js';
import type { Quality, VaultMode } from '../domain.js';
import { registerSecret } from '../secrets.js';
import { optionsFor, type CommandName, type OptionValues } from './options.js';
import { parseOptions, type ParsedOptions } from './parse.js';
import { readSecretFile as readBoundedSecret } from './secret-file.js';
import { parseStoreUrl, type StoreUrl } from '../deep/store-url.js';

export interface CvatConfig {
  url: string;
  credentials: CvatCredentials | undefined;
  organization: string | undefined;
  /** Deadline and byte cap per kind of CVAT request. */
  limits: RequestLimits;
  /** Hard cap on pages of one CVAT list. */
  maxPages: number;
}

type CvatBounds = Pick<CvatConfig, 'limits' | 'maxPages'>;

function cvatBounds(v: OptionValues): CvatBounds {
  return {
    limits: requestLimits({
      requestTimeoutMs: v['request-timeout'],
      chunkTimeoutMs: v['chunk-timeout'],
      maxResponseBytes: v['max-response-mib'] * 1024 * 1024,
    }),
    maxPages: v['max-list-pages'],
  };
}

/**
 * The CVAT request bounds of a configuration that sets none: the options table's defaults
 * through the same parsing as given values, for a client built outside a command (tests, tools).
 */
export function defaultCvatBounds(): CvatBounds {
  return cvatBounds(parseOptions('warm', [], {}).values);
}

export interface WarmSettings {
  qualities: Quality[];
  previews: boolean;
  contextImages: boolean;
  skipCompleted: boolean;
  /** The ceiling of chunk requests in flight: --concurrency, or the chunk-worker count when not given. */
  concurrency: number;
  /** CVAT's chunk workers (--chunk-workers). */
  chunkWorkers: number;
  maxAgeMs: number;
  coldThresholdMs: number;
}

export interface CommandConfig {
  command: CommandName;
  help: boolean;
  json: boolean;
  logLevel: OptionValues['log-level'];
  /** Undefined when not given: the logger picks pretty on a terminal, json otherwise. */
  logFormat: OptionValues['log-format'];
  stateDir: string;
  cvat: CvatConfig;
  scope: Scope;
  warm: WarmSettings;
  dryRun: boolean;
  shareDir: string | undefined;
  shareTasks: readonly number[];
  /** Undefined when not given: the guard picks its default from the share's file system. */
  scanIntervalMs: number | undefined;
  pollIntervalMs: number;
  listen: { host: string; port: number };
  webhookSecret: string | undefined;
  emulator: { host: string; port: number; version: string; buildTimeMs: number; workers: number };
  /** Every option's typed value and where the given ones came from, for commands with extras. */
  /** The vault (`--vault`), restore's `--path`s and CVAT-native backups (`--backup-dir`). */
  protection: {
    vaultDir: string | undefined;
    vaultMode: VaultMode;
    autoRestore: boolean;
    restorePaths: readonly string[];
    /** `impact PATH…`: the paths as typed (resolved inside the share by the command). */
    impactPaths: readonly string[];
    backupDir: string | undefined;
    backupKeep: number;
    /** Bounds of one backup export and download. */
    backupLimits: { timeoutMs: number; maxBytes: number; minFreeBytes: number | undefined; maxBytesGiven: boolean };
  };
  /** Deep mode's stores (read only) and the cache budget; all undefined when not configured. */
  deep: DeepConfig;
  options: ParsedOptions;
}

export interface DeepConfig {
  cache: StoreUrl | undefined;
  database: StoreUrl | undefined;
  queue: StoreUrl | undefined;
  budgetBytes: number | undefined;
}

/** A store URL from its variable or its file; its password is registered for redaction before anything can show it. */
function resolveStore(
  v: OptionValues,
  name: 'cache-url' | 'db-url' | 'queue-url',
  kind: 'redis' | 'postgres',
  what: string,
  problems: string[],
): StoreUrl | undefined {
  const file = v[`${name}-file`];
  const text = file ? readSecretFile(file, what, problems) : v[name];
  if (text === undefined) return undefined;
  const parsed = parseStoreUrl(text, kind, what);
  if ('problem' in parsed) {
    problems.push(parsed.problem);
    return undefined;
  }
  return parsed;
}

function resolveDeep(command: CommandName, v: OptionValues, problems: string[]): DeepConfig {
  if (command !== 'run' && command !== 'doctor') return { cache: undefined, database: undefined, queue: undefined, budgetBytes: undefined };
  const cache = resolveStore(v, 'cache-url', 'redis', 'media cache URL (CVAT_WARDEN_CACHE_URL)', problems);
  const database = resolveStore(v, 'db-url', 'postgres', 'database URL (CVAT_WARDEN_DB_URL)', problems);
  const queue = resolveStore(v, 'queue-url', 'redis', 'queue URL (CVAT_WARDEN_QUEUE_URL)', problems);
  if (Boolean(cache) !== Boolean(database) && !problems.some((p) => /CVAT_WARDEN_(CACHE|DB)_URL/.test(p))) {
    problems.push(`deep mode needs both stores: ${cache ? 'CVAT_WARDEN_DB_URL (or --db-url-file)' : 'CVAT_WARDEN_CACHE_URL (or --cache-url-file)'} is missing`);
  }
  const budgetBytes = command === 'run' ? v['cache-budget'] : undefined;
  if (budgetBytes !== undefined && !cache)
    problems.push('--cache-budget needs deep mode (CVAT_WARDEN_CACHE_URL and CVAT_WARDEN_DB_URL): only the cache says how much it holds');
  return { cache, database, queue, budgetBytes };
}

function readSecretFile(path: string, what: string, problems: string[]): string | undefined {
  const read = readBoundedSecret(path, what);
  if ('problem' in read) {
    problems.push(read.problem);
    return undefined;
  }
  return read.value;
}

function resolveCredentials(v: OptionValues, problems: string[]): CvatCredentials | undefined {
  const token = v['token-file'] ? readSecretFile(v['token-file'], 'access token', problems) : v['access-token'];
  const key = v['api-key-file'] ? readSecretFile(v['api-key-file'], 'API key', problems) : v['api-key'];
  const username = v.username;
  const password = v['password-file'] ? readSecretFile(v['password-file'], 'password', problems) : v.password;
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

export function loadConfig(
  command: CommandName,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  /** `backup list|verify|restore`: they act on kept backups, so no task scope is required. */
  backupAction?: string,
): CommandConfig {
  const o = parseOptions(command, argv, env);
  const v = o.values;
  const problems = [...o.problems];
  const help = v.help;
  const needsCvat = optionsFor(command).some((spec) => spec.name === 'url') && !help;
  const { url, credentials } = needsCvat ? resolveCvat(o, problems) : { url: '', credentials: undefined };
  const scope: Scope = { all: v.all, taskIds: [...v.task], projectIds: [...v.project], jobIds: [...v.job] };
  if (!help) checkCommandNeeds(command, o, scope, backupAction, problems);
  const listen = parseListen(v.listen);
  if (command === 'run' && !listen.valid)
    problems.push(`${o.sources.listen ?? 'default of --listen'}: expected host:port such as 0.0.0.0:9464, got "${v.listen}"`);
  let webhookSecret: string | undefined;
  if (command === 'run') {
    const file = v['webhook-secret-file'];
    webhookSecret = file ? readSecretFile(file, 'webhook secret', problems) : v['webhook-secret'];
    registerSecret(webhookSecret);
  }
  const deep = help ? { cache: undefined, database: undefined, queue: undefined, budgetBytes: undefined } : resolveDeep(command, v, problems);
  // With --help the command is not run, so only the help is shown.
  if (problems.length > 0 && !help) throw new ConfigError(problems);
  return {
    command,
    help,
    json: v.json,
    logLevel: v['log-level'],
    logFormat: v['log-format'],
    stateDir: v['state-dir'],
    cvat: { url, credentials, organization: v.org, ...cvatBounds(v) },
    scope,
    warm: warmSettings(command, v),
    dryRun: v['dry-run'],
    shareDir: v['share-dir'],
    shareTasks: v['share-tasks'],
    scanIntervalMs: v['scan-interval'],
    pollIntervalMs: v['poll-interval'],
    listen: { host: listen.host, port: listen.port },
    webhookSecret,
    emulator: { host: v.host, port: v.port, version: v['cvat-version'], buildTimeMs: v['build-time'], workers: v.workers },
    protection: protectionSettings(o),
    deep,
    options: o,
  };
}

/** CVAT's base URL and the one set of credentials, or the problems with them. */
function resolveCvat(o: ParsedOptions, problems: string[]): { url: string; credentials: CvatCredentials | undefined } {
  const v = o.values;
  let url = '';
  if (!v.url) problems.push('CVAT URL is missing: set CVAT_URL or --url (e.g. https://cvat.example.com)');
  else {
    const parsed = parseBaseUrl(v.url);
    if (parsed.url) url = parsed.url.toString().replace(/\/+$/, '');
    else problems.push(`${o.sources.url ?? 'CVAT_URL'}: ${parsed.problem ?? 'invalid URL'}`);
  }
  const credentials = resolveCredentials(v, problems);
  if (!credentials && !problems.some((p) => /password|user/.test(p))) {
    problems.push('no CVAT credentials: set CVAT_ACCESS_TOKEN (or --token-file), CVAT_API_KEY, or CVAT_USERNAME and CVAT_PASSWORD');
  }
  return { url, credentials };
}

/** What each command cannot run without: a scope, the directories it acts on, options that need another. */
function checkCommandNeeds(command: CommandName, o: ParsedOptions, scope: Scope, backupAction: string | undefined, problems: string[]): void {
  const v = o.values;
  const named = scope.taskIds.length + scope.projectIds.length + scope.jobIds.length > 0;
  const scoped = scope.all || named;
  const missingShare = "share directory is missing: set --share-dir or CVAT_SHARE_DIR to the host path of CVAT's share";
  if ((command === 'warm' || command === 'check') && !scoped) {
    problems.push('nothing to do: choose --all, --task ID, --project ID' + (command === 'warm' ? ' or --job ID' : ''));
  }
  if (command === 'backup' && !scoped && backupAction === undefined) problems.push('nothing to back up: choose --all, --task ID or --project ID');
  if (command === 'backup' && !v['backup-dir']) problems.push('backup directory is missing: set --backup-dir DIR or CVAT_WARDEN_BACKUP_DIR');
  if (command === 'restore') {
    const chosen = [scope.all, scope.taskIds.length > 0, v.path.length > 0].filter(Boolean).length;
    if (chosen !== 1) problems.push('restore needs exactly one of --all, --task ID or --path P');
    if (!v.vault) problems.push('vault directory is missing: set --vault DIR or CVAT_WARDEN_VAULT');
    if (!v['share-dir']) problems.push(missingShare);
  }
  if (command === 'impact') {
    if (o.positionals.length === 0 && scope.taskIds.length === 0) problems.push('impact needs share paths or --task ID: impact PATH… [--task ID]');
    if (o.positionals.length > 10_000) problems.push(`impact takes at most 10000 paths (got ${o.positionals.length}): name their directory instead`);
    if (!v['share-dir']) problems.push(missingShare);
  }
  if (command === 'run' && v['auto-restore'] && !v.vault) problems.push('--auto-restore needs a vault: set --vault DIR or CVAT_WARDEN_VAULT');
  if (command === 'run' && v.vault && !v['share-dir']) problems.push('--vault needs --share-dir (the vault keeps links to share files)');
  if (scope.all && named) problems.push('--all cannot be combined with --task, --project or --job');
}

function warmSettings(command: CommandName, v: OptionValues): WarmSettings {
  return {
    qualities: v.quality === 'both' ? ['compressed', 'original'] : [v.quality],
    previews: v.previews,
    contextImages: !v['no-context-images'],
    // The service stops warming completed jobs unless asked; a one-off `warm` includes them.
    skipCompleted: command === 'run' ? !v['warm-completed'] : v['skip-completed'],
    concurrency: v.concurrency ?? v['chunk-workers'],
    chunkWorkers: v['chunk-workers'],
    maxAgeMs: v['max-age'],
    coldThresholdMs: v['cold-threshold'],
  };
}

function protectionSettings(o: ParsedOptions): CommandConfig['protection'] {
  const v = o.values;
  return {
    vaultDir: v.vault,
    vaultMode: v['vault-mode'],
    autoRestore: v['auto-restore'],
    restorePaths: v.path,
    impactPaths: o.positionals,
    backupDir: v['backup-dir'],
    backupKeep: v['backup-keep'],
    backupLimits: {
      timeoutMs: v['backup-timeout'],
      maxBytes: v['backup-max-gib'] * 1024 ** 3,
      maxBytesGiven: o.sources['backup-max-gib'] !== undefined,
      minFreeBytes: v['backup-min-free-mib'] === undefined ? undefined : v['backup-min-free-mib'] * 1024 * 1024,
    },
  };
}

/** `--listen` / CVAT_WARDEN_LISTEN as host and port (`[::1]:9464` too); `valid` false unless host:port with a port ≤ 65535. */
export function parseListen(value: string): { host: string; port: number; valid: boolean } {
  const match = /^(.*):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2] ?? NaN);
  return { host: match?.[1]?.replace(/^\[|\]$/g, '') || '0.0.0.0', port, valid: Boolean(match) && port <= 65535 };
}
