/**
 * Every option — its flag, environment variable, commands, default, bounds and help
 * text — in one table. Parsing, validation, `--help`, the README's configuration table
 * and the typed `OptionValues` record are all derived from it; nothing else in `src/`
 * may restate a default. Adding an option is adding one row.
 */
/** Every command and its one-line summary (top-level usage, `help`, README). */
export const COMMANDS = {
  warm: 'warm the chunks the annotation UI will read, once, then exit',
  check: 'check that every share file of cache-dependent tasks is in place, once, then exit',
  run: 'the service: discover, warm and keep warm, guard the share, serve /metrics',
  doctor: 'check the setup (CVAT, credentials, share, limits) and explain each problem',
  emulate: 'start the bundled CVAT emulator with a sample deployment',
  demo: 'emulator + warm + guard end to end, for a first look without a CVAT',
  restore: 'put missing share files back from the vault (--all, --task ID or --path P)',
  backup: "download CVAT's own verified backup of share tasks (--all, --task ID or --project ID)",
  impact: 'what breaks if these share paths go (impact PATH… or --task ID): tasks, jobs, chunks, vault and backup cover',
} as const;
export type CommandName = keyof typeof COMMANDS;
export const COMMAND_NAMES = Object.keys(COMMANDS) as readonly CommandName[];

export type OptionType = OptionSpec['type'];

interface CommonSpec {
  /** Flag name without `--`; also the key in `OptionValues`. */
  readonly name: string;
  readonly env?: string;
  readonly commands: readonly CommandName[];
  readonly help: string;
  /** One-letter alias (`-h`). */
  readonly short?: string;
  /** Only an environment variable, never a flag: secrets must not show up in `ps`. */
  readonly envOnly?: true;
  /** Never echoed in a message; registered for redaction as soon as it is read. */
  readonly secret?: true;
  /**
   * For a default that depends on the situation and is computed where the situation is
   * known (the guard knows the share's file system, the logger whether stderr is a
   * terminal): documented here, and the option's value stays `undefined` when not given.
   */
  readonly defaultText?: string;
}

export interface BooleanSpec extends CommonSpec {
  readonly type: 'boolean';
  /** On unless `--no-<name>` when true; off unless `--<name>` otherwise. */
  readonly default?: boolean;
}
export interface StringSpec extends CommonSpec {
  readonly type: 'string' | 'path';
  readonly default?: string;
  readonly choices?: readonly string[];
}
export interface IntegerSpec extends CommonSpec {
  readonly type: 'integer';
  readonly default?: number;
  readonly min: number;
  readonly max: number;
  /** Why the bounds are what they are, for the message when a value is outside them. */
  readonly boundsWhy?: string;
}
/** Durations are written as text (`20h`, `1h30m`, `250ms`); their bounds are mandatory. */
export interface DurationSpec extends CommonSpec {
  readonly type: 'duration';
  readonly default?: string;
  readonly min: string;
  readonly max: string;
  readonly boundsWhy?: string;
}
export interface IdsSpec extends CommonSpec {
  readonly type: 'ids';
}
/** A repeatable path (`--path a --path b`); an empty list when not given. */
export interface PathsSpec extends CommonSpec {
  readonly type: 'paths';
}
export type OptionSpec = BooleanSpec | StringSpec | IntegerSpec | DurationSpec | IdsSpec | PathsSpec;

/** Node's timers fire after 1 ms beyond 2^31-1 ms (~24.8 days), so no duration may exceed it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const CVAT = ['warm', 'check', 'run', 'doctor', 'backup', 'impact'] as const;
const WARMING = ['warm', 'run'] as const;
const GUARDING = ['check', 'run', 'doctor', 'backup', 'impact'] as const;
const JSON_OUTPUT = ['warm', 'check', 'doctor', 'restore', 'backup', 'impact'] as const;
const EMULATOR = ['emulate', 'demo'] as const;
const DEEP = ['run', 'doctor'] as const;
const ALL = COMMAND_NAMES;

// One row per option, so the table reads (and diffs) as a table.
// prettier-ignore
export const OPTIONS = [
  { name: 'url', type: 'string', env: 'CVAT_URL', commands: CVAT, help: 'CVAT base URL, with its path prefix if any (https://cvat.example.com)' },
  { name: 'access-token', type: 'string', env: 'CVAT_ACCESS_TOKEN', envOnly: true, secret: true, commands: CVAT, help: 'personal access token (Authorization: Bearer, CVAT ≥ 2.48); or --token-file' },
  { name: 'token-file', type: 'path', env: 'CVAT_ACCESS_TOKEN_FILE', commands: CVAT, help: 'file holding a personal access token (Docker secret); or set CVAT_ACCESS_TOKEN' },
  { name: 'api-key', type: 'string', env: 'CVAT_API_KEY', envOnly: true, secret: true, commands: CVAT, help: 'legacy API key (Authorization: Token); or --api-key-file' },
  { name: 'api-key-file', type: 'path', env: 'CVAT_API_KEY_FILE', commands: CVAT, help: 'file holding a legacy API key (Authorization: Token); or set CVAT_API_KEY' },
  { name: 'username', type: 'string', env: 'CVAT_USERNAME', commands: CVAT, help: 'user for basic auth, with CVAT_PASSWORD or --password-file' },
  { name: 'password', type: 'string', env: 'CVAT_PASSWORD', envOnly: true, secret: true, commands: CVAT, help: 'password for basic auth, with CVAT_USERNAME; or --password-file' },
  { name: 'password-file', type: 'path', env: 'CVAT_PASSWORD_FILE', commands: CVAT, help: 'file holding the password; or set CVAT_PASSWORD' },
  { name: 'org', type: 'string', env: 'CVAT_ORG', commands: CVAT, defaultText: 'all the account sees', help: 'organization slug (X-Organization)' },
  { name: 'request-timeout', type: 'duration', env: 'CVAT_WARDEN_REQUEST_TIMEOUT', commands: CVAT, default: '60s', min: '100ms', max: '1h', help: 'deadline of one CVAT API or list request, headers and body (/api/server/about at most 30s)' },
  { name: 'chunk-timeout', type: 'duration', env: 'CVAT_WARDEN_CHUNK_TIMEOUT', commands: WARMING, default: '120s', min: '100ms', max: '1h', help: "deadline of one chunk request, headers and body; leave room for CVAT's own 50 s build wait" },
  { name: 'max-list-pages', type: 'integer', env: 'CVAT_WARDEN_MAX_LIST_PAGES', commands: CVAT, default: 100, min: 1, max: 100_000, help: 'give up on a CVAT list after this many pages of 500' },
  { name: 'max-response-mib', type: 'integer', env: 'CVAT_WARDEN_MAX_RESPONSE_MIB', commands: CVAT, default: 64, min: 1, max: 4096, help: 'largest CVAT API answer read, in MiB; task metadata lists every frame' },
  { name: 'all', type: 'boolean', commands: ['warm', 'check', 'restore', 'backup'], help: 'every task the account can see' },
  { name: 'task', type: 'ids', commands: ['warm', 'check', 'restore', 'backup', 'impact'], help: 'task id(s), repeatable or comma-separated' },
  { name: 'project', type: 'ids', commands: ['warm', 'check', 'backup'], help: 'project id(s)' },
  { name: 'job', type: 'ids', commands: ['warm'], help: 'job id(s)' },
  { name: 'quality', type: 'string', env: 'CVAT_WARDEN_QUALITY', commands: WARMING, choices: ['compressed', 'original', 'both'], default: 'compressed', help: 'chunk quality to warm; the annotation UI reads compressed, AI tools and exports original' },
  { name: 'previews', type: 'boolean', commands: WARMING, help: 'also warm task and job previews' },
  { name: 'no-context-images', type: 'boolean', commands: WARMING, help: 'do not warm context images (by default they are: the UI reads them on every frame that has related files)' },
  { name: 'skip-completed', type: 'boolean', commands: ['warm'], help: 'leave out jobs in state completed' },
  { name: 'warm-completed', type: 'boolean', commands: ['run'], help: 'keep jobs in state completed warm too (by default the service stops warming them)' },
  // 2: CVAT's compose runs cvat_worker_chunks with NUMPROCS 2 (docker-compose.yml), its Helm chart 2 replicas × numProcs 1 (values.yaml backend.worker.chunks).
  { name: 'chunk-workers', type: 'integer', env: 'CVAT_WARDEN_CHUNK_WORKERS', commands: WARMING, default: 2, min: 1, max: 64, help: "CVAT's chunk workers (cvat_worker_chunks processes: compose NUMPROCS, Helm chunks.replicas × numProcs); warming uses them all while no annotator waits and leaves one the moment one does" },
  { name: 'concurrency', type: 'integer', env: 'CVAT_WARDEN_CONCURRENCY', commands: WARMING, defaultText: 'the chunk-worker count', min: 1, max: 64, help: 'most chunk requests in flight: the ceiling of the warming controller, which an admin may lower (1: never more than one chunk worker)' },
  { name: 'cold-threshold', type: 'duration', env: 'CVAT_WARDEN_COLD_THRESHOLD', commands: WARMING, default: '250ms', min: '0ms', max: '10m', help: 'a chunk answer slower than this counts as built by the request (its 24 h start now); faster ones were already cached (0: every answer counts as a build)' },
  { name: 'max-age', type: 'duration', env: 'CVAT_WARDEN_MAX_AGE', commands: WARMING, default: '20h', min: '1m', max: '23h59m', boundsWhy: 'CVAT drops chunks 24 h after building them', help: 're-confirm a chunk once it is this old (CVAT drops it 24 h after it was built); a chunk found cached with no known build time counts as this old' },
  { name: 'state-dir', type: 'path', env: 'CVAT_WARDEN_STATE_DIR', commands: CVAT, default: './.cvat-warden', help: 'where the ledger and guard state live' },
  { name: 'dry-run', type: 'boolean', commands: ['warm', 'restore'], help: 'warm: print the plan (tasks, jobs, chunks, estimated time) and request no chunk; restore: say what would be put back and change nothing' },
  { name: 'json', type: 'boolean', commands: JSON_OUTPUT, help: 'print the result on stdout as JSON (schemas/<command>.schema.json)' },
  { name: 'share-dir', type: 'path', env: 'CVAT_SHARE_DIR', commands: ['check', 'run', 'doctor', 'emulate', 'demo', 'restore', 'backup', 'impact'], help: "host path where CVAT's share (/home/django/share) is mounted" },
  { name: 'share-tasks', type: 'ids', env: 'CVAT_WARDEN_SHARE_TASKS', commands: GUARDING, help: 'treat these tasks as share-backed (CVAT < 2.44 cannot say)' },
  { name: 'scan-interval', type: 'duration', env: 'CVAT_WARDEN_SCAN_INTERVAL', commands: ['run'], defaultText: '1h; 10m on network shares', min: '1m', max: '24d', help: 'full reconcile scan of the share every this long' },
  { name: 'cloud-interval', type: 'duration', env: 'CVAT_WARDEN_CLOUD_INTERVAL', commands: ['run'], default: '10m', min: '1m', max: '24d', help: 'list the buckets of cloud-storage tasks (and re-ask the status of storages warming skipped) every this long' },
  // 300 LIST calls an hour ≈ 7,200 a day ≈ $0.04/day at S3's $0.005 per 1,000; one call lists up to 500 objects of one directory.
  { name: 'cloud-list-budget', type: 'integer', env: 'CVAT_WARDEN_CLOUD_LIST_BUDGET', commands: ['run'], default: 300, min: 1, max: 1_000_000, help: 'content-v2 calls (each one billed LIST on the bucket, ≤ 500 objects of one directory) per hour; directories beyond it wait for a later round' },
  { name: 'listen', type: 'string', env: 'CVAT_WARDEN_LISTEN', commands: ['run', 'doctor', 'impact'], default: '0.0.0.0:9464', help: 'address for /metrics, /healthz, /readyz, /status and webhooks (doctor and impact ask the running service there)' },
  // 6: CVAT's own compose runs the server with NUMPROCS 2, so at most ~3 requests wait per process; at 10 ms per call
  // the first discovery of 10,000 tasks takes ~64 s at 4 and ~43 s at 6 (npm run bench -- ui).
  { name: 'discovery-concurrency', type: 'integer', env: 'CVAT_WARDEN_DISCOVERY_CONCURRENCY', commands: ['run'], default: 6, min: 1, max: 32, help: 'tasks whose jobs and metadata discovery fetches at once (metadata requests are cheap for CVAT)' },
  { name: 'poll-interval', type: 'duration', env: 'CVAT_WARDEN_POLL_INTERVAL', commands: ['run'], default: '60s', min: '100ms', max: '24d', help: 'how often to look for new or changed tasks and jobs' },
  { name: 'webhook-secret', type: 'string', env: 'CVAT_WEBHOOK_SECRET', envOnly: true, secret: true, commands: ['run'], help: 'webhook secret (enables POST /webhooks/cvat, HMAC X-Signature-256); or --webhook-secret-file' },
  { name: 'webhook-secret-file', type: 'path', env: 'CVAT_WEBHOOK_SECRET_FILE', commands: ['run'], help: 'file with the webhook secret; or set CVAT_WEBHOOK_SECRET' },
  { name: 'webhook-coalesce', type: 'duration', env: 'CVAT_WARDEN_WEBHOOK_COALESCE', commands: ['run'], default: '1s', min: '0ms', max: '10m', help: 'gather webhook deliveries this long before discovery looks at the tasks they name: a burst for one task is one look, many tasks one list request per 200' },
  { name: 'webhook-max-pending', type: 'integer', env: 'CVAT_WARDEN_WEBHOOK_MAX_PENDING', commands: ['run'], default: 10_000, min: 1, max: 1_000_000, help: 'tasks named by webhooks that may wait for a look; past it the next discovery pass lists every task instead (no task is dropped)' },
  { name: 'vault', type: 'path', env: 'CVAT_WARDEN_VAULT', commands: ['run', 'check', 'restore', 'impact'], help: "vault directory: hard links to every expected share file; must be on the share's filesystem and mount, e.g. <share>/.cvat-warden-vault (needs the share read-write for the warden)" },
  { name: 'vault-mode', type: 'string', env: 'CVAT_WARDEN_VAULT_MODE', commands: ['run'], choices: ['link', 'reflink'], default: 'link', help: 'link: hard links (no extra space; lost on in-place modification); reflink: copy-on-write clones that also survive in-place modification (btrfs, XFS)' },
  { name: 'auto-restore', type: 'boolean', env: 'CVAT_WARDEN_AUTO_RESTORE', commands: ['run'], help: 'put a deleted or moved-away share file back from the vault as soon as the guard sees it gone (logged)' },
  { name: 'path', type: 'paths', commands: ['restore'], help: 'share-relative path(s) to restore, repeatable' },
  { name: 'backup-dir', type: 'path', env: 'CVAT_WARDEN_BACKUP_DIR', commands: ['run', 'backup', 'impact'], help: "where CVAT's own task backups (zip, verified) of share tasks are kept" },
  { name: 'backup-keep', type: 'integer', env: 'CVAT_WARDEN_BACKUP_KEEP', commands: ['run', 'backup'], default: 3, min: 1, max: 1000, help: 'good backups kept per task (the newest good one is never deleted)' },
  { name: 'backup-max-gib', type: 'integer', env: 'CVAT_WARDEN_BACKUP_MAX_GIB', commands: ['run', 'backup'], default: 256, min: 1, max: 65_536, help: "largest backup download accepted, in GiB; checked while streaming, a longer one is stopped and removed. Not set, with --share-dir: each task's share media + 25 % (at least + 1 GiB), up to the default (CVAT's API reports no media sizes)" },
  { name: 'backup-min-free-mib', type: 'integer', env: 'CVAT_WARDEN_BACKUP_MIN_FREE_MIB', commands: ['run', 'backup'], defaultText: "5 % of the backup directory's file system, at least 1 GiB", min: 1, max: 16_777_216, help: 'free space a backup download always leaves on the backup directory\'s file system, in MiB; checked before and every MiB during the download' },
  { name: 'backup-timeout', type: 'duration', env: 'CVAT_WARDEN_BACKUP_TIMEOUT', commands: ['run', 'backup'], default: '30m', min: '1s', max: '24h', help: "deadline of CVAT's export of one task backup, and again of its download; run then tries the other tasks first and this one again later" },
  { name: 'cache-url', type: 'string', env: 'CVAT_WARDEN_CACHE_URL', envOnly: true, secret: true, commands: DEEP, help: "deep mode: redis URL of CVAT's media cache (Kvrocks, compose redis://cvat_redis_ondisk:6666), read only; with CVAT_WARDEN_DB_URL; or --cache-url-file" },
  { name: 'cache-url-file', type: 'path', env: 'CVAT_WARDEN_CACHE_URL_FILE', commands: DEEP, help: "file holding the media cache's redis URL (Docker secret: it may carry the Kvrocks password); or set CVAT_WARDEN_CACHE_URL" },
  { name: 'db-url', type: 'string', env: 'CVAT_WARDEN_DB_URL', envOnly: true, secret: true, commands: DEEP, help: "deep mode: postgres URL of CVAT's database (compose postgres://root@cvat_db/cvat), read in a read-only session; or --db-url-file" },
  { name: 'db-url-file', type: 'path', env: 'CVAT_WARDEN_DB_URL_FILE', commands: DEEP, help: "file holding the database's postgres URL (Docker secret); or set CVAT_WARDEN_DB_URL" },
  { name: 'queue-url', type: 'string', env: 'CVAT_WARDEN_QUEUE_URL', envOnly: true, secret: true, commands: DEEP, help: "redis URL of CVAT's in-memory Redis (compose redis://cvat_redis_inmem:6379): the length of the chunk build queue; or --queue-url-file" },
  { name: 'queue-url-file', type: 'path', env: 'CVAT_WARDEN_QUEUE_URL_FILE', commands: DEEP, help: "file holding the in-memory Redis URL (Docker secret); or set CVAT_WARDEN_QUEUE_URL" },
  { name: 'cache-budget', type: 'integer', env: 'CVAT_WARDEN_CACHE_BUDGET', commands: ['run'], min: 1, max: 2 ** 50, help: 'deep mode: bytes the media cache may hold for the reads in scope; above it warming adds nothing (and cvat_warden_cached_bytes alerts)' },
  { name: 'port', type: 'integer', commands: EMULATOR, default: 8080, min: 0, max: 65535, help: 'emulator port (0 = any free port)' },
  { name: 'host', type: 'string', commands: EMULATOR, default: '127.0.0.1', help: 'emulator address' },
  { name: 'cvat-version', type: 'string', commands: ['emulate'], default: '2.73.0', help: 'CVAT version the emulator pretends to be (2.14.4 for the pre-2.20 API)' },
  { name: 'build-time', type: 'duration', commands: EMULATOR, default: '300ms', min: '0ms', max: '10m', help: 'emulated time to build one chunk' },
  { name: 'workers', type: 'integer', commands: EMULATOR, default: 2, min: 1, max: 64, help: 'emulated chunk workers' },
  { name: 'log-level', type: 'string', env: 'LOG_LEVEL', commands: ALL, choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', help: 'least severe log level written (logs go to stderr)' },
  { name: 'log-format', type: 'string', env: 'CVAT_WARDEN_LOG_FORMAT', commands: ALL, choices: ['pretty', 'json'], defaultText: 'pretty on a terminal, json otherwise', help: 'log lines on stderr: pretty (for people) or json (one object per line, for collectors)' },
  { name: 'help', type: 'boolean', short: 'h', commands: ALL, help: 'show this help' },
] as const satisfies readonly OptionSpec[];

export type OptionRow = (typeof OPTIONS)[number];
export type OptionName = OptionRow['name'];

type ValueOf<R> = R extends { type: 'boolean' }
  ? boolean
  : R extends { type: 'integer' | 'duration' }
    ? number
    : R extends { type: 'paths' }
      ? readonly string[]
      : R extends { type: 'ids' }
        ? readonly number[]
        : R extends { choices: readonly (infer C)[] }
          ? C
          : string;
/** Booleans are false and id lists empty when not given; other options have a value when the table gives a default. */
type AlwaysSet<R> = R extends { type: 'boolean' | 'ids' | 'paths' } ? true : R extends { default: unknown } ? true : false;

/** The parsed value of every option, typed from the table (durations in milliseconds). */
export type OptionValues = { [R in OptionRow as R['name']]: AlwaysSet<R> extends true ? ValueOf<R> : ValueOf<R> | undefined };

export function optionsFor(command: CommandName): OptionSpec[] {
  return OPTIONS.filter((o: OptionSpec) => o.commands.includes(command));
}

const BY_NAME = new Map<string, OptionSpec>(OPTIONS.map((o) => [o.name, o]));

export function optionSpec(name: OptionName): OptionSpec {
  const spec = BY_NAME.get(name);
  if (!spec) throw new Error(`no option --${name}`); // unreachable: OptionName comes from the table
  return spec;
}

/** How the default reads in `--help` and the README; undefined when there is none. */
export function defaultLabel(spec: OptionSpec): string | undefined {
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.type === 'boolean') return spec.default ? 'on' : undefined;
  if (spec.type === 'ids' || spec.type === 'paths') return undefined;
  return spec.default !== undefined ? String(spec.default) : undefined;
}

/** How the bounds read in `--help` and the README. */
export function boundsLabel(spec: OptionSpec): string | undefined {
  return spec.type === 'integer' || spec.type === 'duration' ? `${spec.min} to ${spec.max}` : undefined;
}
