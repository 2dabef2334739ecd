/**
 * Every command-line option, with its environment variable, the commands that take it,
 * and its help text. One table drives parsing, validation and `--help`.
 */
export type OptionType = 'string' | 'boolean' | 'integer' | 'number' | 'duration' | 'ids' | 'path' | 'paths';
export type CommandName = 'warm' | 'check' | 'run' | 'doctor' | 'emulate' | 'demo' | 'restore' | 'backup';

export interface OptionSpec {
  name: string;
  type: OptionType;
  env?: string;
  commands: readonly CommandName[];
  help: string;
  default?: string;
  /** Allowed values for string options. */
  choices?: readonly string[];
}

const CVAT: readonly CommandName[] = ['warm', 'check', 'run', 'doctor', 'backup'];
const WARMING: readonly CommandName[] = ['warm', 'run'];
const GUARDING: readonly CommandName[] = ['check', 'run', 'doctor', 'backup'];
const ALL: readonly CommandName[] = ['warm', 'check', 'run', 'doctor', 'emulate', 'demo', 'restore', 'backup'];

export const OPTIONS: readonly OptionSpec[] = [
  { name: 'url', type: 'string', env: 'CVAT_URL', commands: CVAT, help: 'CVAT base URL, with its path prefix if any (https://cvat.example.com)' },
  { name: 'token-file', type: 'path', env: 'CVAT_ACCESS_TOKEN_FILE', commands: CVAT, help: 'file holding a personal access token (Docker secret); or set CVAT_ACCESS_TOKEN' },
  { name: 'api-key-file', type: 'path', env: 'CVAT_API_KEY_FILE', commands: CVAT, help: 'file holding a legacy API key (Authorization: Token); or set CVAT_API_KEY' },
  { name: 'username', type: 'string', env: 'CVAT_USERNAME', commands: CVAT, help: 'user for basic auth, with CVAT_PASSWORD or --password-file' },
  { name: 'password-file', type: 'path', env: 'CVAT_PASSWORD_FILE', commands: CVAT, help: 'file holding the password; or set CVAT_PASSWORD' },
  { name: 'org', type: 'string', env: 'CVAT_ORG', commands: CVAT, help: 'organization slug (X-Organization); default: everything the account sees' },
  { name: 'request-timeout', type: 'duration', env: 'CVAT_WARDEN_REQUEST_TIMEOUT', commands: CVAT, default: '60s', help: 'deadline of one CVAT API or list request, headers and body (100ms to 1h; /api/server/about at most 30s)' },
  { name: 'chunk-timeout', type: 'duration', env: 'CVAT_WARDEN_CHUNK_TIMEOUT', commands: WARMING, default: '120s', help: "deadline of one chunk request, headers and body; leave room for CVAT's own 50 s build wait (100ms to 1h)" },
  { name: 'max-list-pages', type: 'integer', env: 'CVAT_WARDEN_MAX_LIST_PAGES', commands: CVAT, default: '100', help: 'give up on a CVAT list after this many pages of 500 (1 to 100000)' },
  { name: 'max-response-mib', type: 'integer', env: 'CVAT_WARDEN_MAX_RESPONSE_MIB', commands: CVAT, default: '64', help: 'largest CVAT API answer read, in MiB (1 to 4096); task metadata lists every frame' },
  { name: 'all', type: 'boolean', commands: ['warm', 'check', 'restore', 'backup'], help: 'every task the account can see' },
  { name: 'task', type: 'ids', commands: ['warm', 'check', 'restore', 'backup'], help: 'task id(s), repeatable or comma-separated' },
  { name: 'project', type: 'ids', commands: ['warm', 'check', 'backup'], help: 'project id(s)' },
  { name: 'job', type: 'ids', commands: ['warm'], help: 'job id(s)' },
  { name: 'quality', type: 'string', env: 'CVAT_WARDEN_QUALITY', commands: WARMING, choices: ['compressed', 'original', 'both'], default: 'compressed', help: 'chunk quality to warm; the annotation UI reads compressed, AI tools and exports original' },
  { name: 'previews', type: 'boolean', commands: WARMING, help: 'also warm task and job previews' },
  { name: 'context-images', type: 'boolean', commands: WARMING, help: 'also warm context images of frames that have related files' },
  { name: 'skip-completed', type: 'boolean', commands: ['warm'], help: 'leave out jobs in state completed' },
  { name: 'warm-completed', type: 'boolean', commands: ['run'], help: 'keep jobs in state completed warm too (by default the service stops warming them)' },
  { name: 'concurrency', type: 'integer', env: 'CVAT_WARDEN_CONCURRENCY', commands: WARMING, default: '1', help: 'chunk requests in flight; keep below the number of CVAT chunk workers (2 by default)' },
  { name: 'cold-threshold', type: 'duration', env: 'CVAT_WARDEN_COLD_THRESHOLD', commands: WARMING, default: '250ms', help: 'a chunk answer slower than this counts as built by the request (its 24 h start now); faster ones were already cached' },
  { name: 'max-age', type: 'duration', env: 'CVAT_WARDEN_MAX_AGE', commands: WARMING, default: '20h', help: 're-confirm a chunk once it is this old (CVAT drops it 24 h after it was built)' },
  { name: 'state-dir', type: 'path', env: 'CVAT_WARDEN_STATE_DIR', commands: ['warm', 'check', 'run', 'doctor'], default: './.cvat-warden', help: 'where the ledger and guard state live' },
  { name: 'dry-run', type: 'boolean', commands: ['warm', 'restore'], help: 'warm: print the plan (tasks, jobs, chunks, estimated time) and request no chunk; restore: say what would be put back and change nothing' },
  { name: 'json', type: 'boolean', commands: ['warm', 'check', 'doctor', 'restore', 'backup'], help: 'print a JSON summary on stdout' },
  { name: 'share-dir', type: 'path', env: 'CVAT_SHARE_DIR', commands: ['check', 'run', 'doctor', 'emulate', 'demo', 'restore'], help: "host path where CVAT's share (/home/django/share) is mounted" },
  { name: 'share-tasks', type: 'ids', env: 'CVAT_WARDEN_SHARE_TASKS', commands: GUARDING, help: 'treat these tasks as share-backed (CVAT < 2.44 cannot say)' },
  { name: 'scan-interval', type: 'duration', env: 'CVAT_WARDEN_SCAN_INTERVAL', commands: ['run'], default: '1h', help: 'full reconcile scan of the share every this long' },
  { name: 'listen', type: 'string', env: 'CVAT_WARDEN_LISTEN', commands: ['run', 'doctor'], default: '0.0.0.0:9464', help: 'address for /metrics, /healthz, /readyz, /status and webhooks (doctor asks the running service there)' },
  { name: 'poll-interval', type: 'duration', env: 'CVAT_WARDEN_POLL_INTERVAL', commands: ['run'], default: '60s', help: 'how often to look for new or changed tasks' },
  { name: 'webhook-secret-file', type: 'path', env: 'CVAT_WEBHOOK_SECRET_FILE', commands: ['run'], help: 'file with the webhook secret; or set CVAT_WEBHOOK_SECRET' },
  { name: 'vault', type: 'path', env: 'CVAT_WARDEN_VAULT', commands: ['run', 'check', 'restore'], help: 'vault directory: hard links to every expected share file; must be on the share\'s filesystem and mount, e.g. <share>/.cvat-warden-vault (needs the share read-write for the warden)' },
  { name: 'vault-mode', type: 'string', env: 'CVAT_WARDEN_VAULT_MODE', commands: ['run'], choices: ['link', 'reflink'], default: 'link', help: 'link: hard links (no extra space; lost on in-place modification); reflink: copy-on-write clones that also survive in-place modification (btrfs, XFS)' },
  { name: 'auto-restore', type: 'boolean', env: 'CVAT_WARDEN_AUTO_RESTORE', commands: ['run'], help: 'put a deleted or moved-away share file back from the vault as soon as the guard sees it gone (logged)' },
  { name: 'path', type: 'paths', commands: ['restore'], help: 'share-relative path(s) to restore, repeatable' },
  { name: 'backup-dir', type: 'path', env: 'CVAT_WARDEN_BACKUP_DIR', commands: ['run', 'backup'], help: "where CVAT's own task backups (zip, verified) of share tasks are kept" },
  { name: 'backup-keep', type: 'integer', env: 'CVAT_WARDEN_BACKUP_KEEP', commands: ['run', 'backup'], default: '3', help: 'good backups kept per task (the newest good one is never deleted)' },
  { name: 'port', type: 'integer', commands: ['emulate', 'demo'], default: '8080', help: 'emulator port (0 = any free port)' },
  { name: 'host', type: 'string', commands: ['emulate', 'demo'], default: '127.0.0.1', help: 'emulator address' },
  { name: 'cvat-version', type: 'string', commands: ['emulate'], default: '2.73.0', help: 'CVAT version the emulator pretends to be (2.14.4 for the pre-2.20 API)' },
  { name: 'build-time', type: 'duration', commands: ['emulate', 'demo'], default: '300ms', help: 'emulated time to build one chunk' },
  { name: 'workers', type: 'integer', commands: ['emulate', 'demo'], default: '2', help: 'emulated chunk workers' },
  { name: 'log-level', type: 'string', env: 'LOG_LEVEL', commands: ALL, choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', help: 'log level (logs go to stderr as JSON lines)' },
  { name: 'help', type: 'boolean', commands: ALL, help: 'show this help' },
];

export function optionsFor(command: CommandName): OptionSpec[] {
  return OPTIONS.filter((o) => o.commands.includes(command));
}
