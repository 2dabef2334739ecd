/**
 * `cvat-warden doctor`: checks the setup and explains every problem in one line with a
 * fix — CVAT reachable, version and features, credentials and data permission, share
 * mounted at the right host path, filesystem type and watch mode, inotify budget,
 * state directory writable.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CommandConfig } from '../config/index.js';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import { describeError } from '../errors.js';
import { checkName, detectFsType, type GuardTask } from '../guard/index.js';
import { redactSecrets } from '../secrets.js';
import { createClient, writeJson, type CommandContext } from './context.js';
import { collectGuardTasks } from './shared.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  /** 'warn' does not fail the doctor (e.g. an optional feature is off). */
  level: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

const SAMPLE_FRAMES = 20;

export async function runDoctor(config: CommandConfig, context: CommandContext): Promise<number> {
  const checks: DoctorCheck[] = [];
  const add = (name: string, level: DoctorCheck['level'], detail: string, fix?: string) => checks.push({ name, ok: level !== 'fail', level, detail, ...(fix ? { fix } : {}) });
  const client = createClient(config.cvat, context);
  try {
    const features = await checkCvat(client, add, context.signal);
    let shareTasks: GuardTask[] = [];
    if (features) shareTasks = await checkPermissions(client, features, config, add, context.signal);
    await checkShare(config, features, shareTasks, add);
    checkStateDir(config.stateDir, add);
  } finally {
    await client.close();
  }
  const failed = checks.filter((c) => c.level === 'fail').length;
  if (config.json) writeJson(context.stdout, { ok: failed === 0, checks });
  else {
    const mark = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;
    const lines = checks.map((c) => `[${mark[c.level]}] ${c.name}: ${c.detail}${c.fix ? `\n       fix: ${c.fix}` : ''}`);
    lines.push('', failed === 0 ? 'All checks passed.' : `${failed} check(s) failed.`);
    context.stdout.write(redactSecrets(`${lines.join('\n')}\n`));
  }
  return failed === 0 ? 0 : 1;
}

type Add = (name: string, level: DoctorCheck['level'], detail: string, fix?: string) => void;

async function checkCvat(client: CvatClient, add: Add, signal: AbortSignal): Promise<CvatFeatures | undefined> {
  try {
    const features = await client.features(signal);
    add('CVAT reachable', 'ok', `${client.baseUrl} answers, CVAT ${features.version.raw}`);
    const on = (flag: boolean, text: string) => (flag ? text : `no ${text}`);
    add(
      'version and features',
      features.indexChunks ? 'ok' : 'warn',
      [on(features.indexChunks, 'per-job index chunks (2.20)'), on(features.retryAfter429, '429 + Retry-After (2.23)'), on(features.storageInMeta, 'storage in data/meta (2.44)'), on(features.rangeRequests, 'Range (2.66)')].join(', '),
      features.indexChunks ? undefined : 'CVAT before 2.20 is warmed by task chunk numbers; upgrading CVAT gives per-job chunks',
    );
    return features;
  } catch (error) {
    const message = describeError(error);
    const fix = /refused|401/.test(message)
      ? 'check CVAT_ACCESS_TOKEN / CVAT_API_KEY / CVAT_USERNAME+CVAT_PASSWORD'
      : /unsupported/.test(message)
        ? 'upgrade CVAT to 2.x'
        : 'check CVAT_URL (scheme, host, port and any path prefix) and that this host can reach it';
    add('CVAT reachable', 'fail', message, fix);
    return undefined;
  }
}

async function checkPermissions(client: CvatClient, features: CvatFeatures, config: CommandConfig, add: Add, signal: AbortSignal): Promise<GuardTask[]> {
  try {
    const self = (await client.getJson('/api/users/self', undefined, signal)) as { username?: string; is_superuser?: boolean };
    add('credentials', 'ok', `accepted, user "${self.username ?? '?'}"${self.is_superuser ? ' (admin)' : ''}`);
  } catch (error) {
    add('credentials', 'fail', describeError(error), 'create a personal access token of an admin (or org owner/maintainer) and set CVAT_ACCESS_TOKEN');
    return [];
  }
  try {
    let jobId: number | undefined;
    for await (const job of client.jobs({}, signal)) {
      if (job.ok) {
        jobId = job.value.id;
        break;
      }
    }
    if (jobId === undefined) add('job data permission', 'warn', 'no job visible to this account, so data access could not be tried', 'use an admin account, or set CVAT_ORG to the organization to warm');
    else {
      await client.jobMeta(jobId, signal);
      add('job data permission', 'ok', `may read job data (tried job ${jobId})`);
    }
  } catch (error) {
    add('job data permission', 'fail', describeError(error), 'warming needs an admin account or an organization owner/maintainer (set CVAT_ORG for an org)');
  }
  if (!config.shareDir) return [];
  try {
    const tasks = await collectGuardTasks(client, features, { all: true, taskIds: [], projectIds: [], jobIds: [] }, config.shareTasks, () => undefined, signal);
    return tasks.filter((t) => t.storage === 'share' || (!features.storageInMeta && t.storage === 'unknown'));
  } catch {
    return [];
  }
}

/** Where the sample frames would be found: the given root, its parent or one of its subdirectories. */
function suggestRoot(shareDir: string, names: string[]): string | undefined {
  const candidates = [dirname(shareDir)];
  try {
    for (const entry of readdirSync(shareDir, { withFileTypes: true }).slice(0, 200)) if (entry.isDirectory()) candidates.push(join(shareDir, entry.name));
  } catch {}
  return candidates.find((root) => names.some((n) => existsSync(join(root, n))));
}

async function checkShare(config: CommandConfig, features: CvatFeatures | undefined, shareTasks: GuardTask[], add: Add): Promise<void> {
  const shareDir = config.shareDir;
  if (!shareDir) {
    add('share directory', 'warn', 'not configured: the integrity guard is off', 'set CVAT_SHARE_DIR to the host path of the volume CVAT mounts at /home/django/share');
    return;
  }
  if (!existsSync(shareDir) || !statSync(shareDir).isDirectory()) {
    add('share directory', 'fail', `${shareDir} does not exist or is not a directory`, 'mount the share there, or point CVAT_SHARE_DIR at the host path of CVAT\'s cvat_share volume');
    return;
  }
  try {
    accessSync(shareDir, constants.R_OK | constants.X_OK);
  } catch {
    add('share directory', 'fail', `${shareDir} is not readable by this user`, 'mount it readable (read-only is right) for the user running cvat-warden');
    return;
  }
  const root = realpathSync(shareDir);
  if (features && !features.storageInMeta && config.shareTasks.length === 0) {
    add('share tasks', 'warn', `CVAT ${features.version.raw} does not say which tasks read the share`, 'list them with --share-tasks (or CVAT_WARDEN_SHARE_TASKS), or upgrade CVAT to 2.44+');
  }
  const sample = shareTasks.find((t) => (t.meta.frames?.length ?? 0) > 0);
  if (!sample) add('share directory', 'ok', `${shareDir} is mounted; no share task found to test frame names against`);
  else {
    const names = (sample.meta.frames ?? []).slice(0, SAMPLE_FRAMES).map((f) => f.name).filter((n) => checkName(n).ok !== false);
    const found = names.filter((n) => existsSync(join(root, n))).length;
    if (found === names.length) add('share directory', 'ok', `${shareDir}: all ${names.length} sampled frame names of task ${sample.taskId} found`);
    else {
      const better = suggestRoot(root, names);
      add(
        'share directory',
        'fail',
        `${shareDir}: ${names.length - found} of ${names.length} sampled frame names of task ${sample.taskId} are missing (e.g. ${names.find((n) => !existsSync(join(root, n)))})`,
        better ? `the frames are under ${better}: set CVAT_SHARE_DIR=${better}` : 'CVAT_SHARE_DIR must be the host path that CVAT sees as /home/django/share (the most common mistake is one directory too high or too low)',
      );
    }
  }
  const fs = await detectFsType(root);
  add(
    'filesystem and watch mode',
    fs.network ? 'warn' : 'ok',
    `${fs.fsType} at ${fs.mountPoint}: ${fs.network ? 'network filesystem, inotify does not see other hosts\' changes; the guard relies on reconcile scans' : 'local filesystem, changes seen at once through inotify'}`,
    fs.network ? 'keep --scan-interval short enough for your tolerance (default 1h)' : undefined,
  );
  const dirs = new Set<string>();
  for (const task of shareTasks) for (const frame of task.meta.frames ?? []) dirs.add(dirname(frame.name));
  try {
    const limit = Number(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim());
    const needed = dirs.size + 10;
    add(
      'inotify watches',
      needed <= limit ? 'ok' : 'fail',
      `${dirs.size} share directories to watch (one watch each, about 1 KB of kernel memory), limit ${limit}`,
      needed <= limit ? undefined : `raise it: sysctl -w fs.inotify.max_user_watches=${Math.max(524_288, needed * 2)} (and persist it in /etc/sysctl.d/)`,
    );
  } catch {
    add('inotify watches', 'warn', 'limit unknown (/proc/sys/fs/inotify not readable)');
  }
}

function checkStateDir(stateDir: string, add: Add): void {
  try {
    mkdirSync(stateDir, { recursive: true });
    const probe = join(stateDir, `.doctor-${process.pid}`);
    writeFileSync(probe, 'ok');
    rmSync(probe);
    add('state directory', 'ok', `${stateDir} is writable`);
  } catch (error) {
    add('state directory', 'fail', `${stateDir}: ${(error as NodeJS.ErrnoException).code ?? describeError(error)}`, 'point CVAT_WARDEN_STATE_DIR at a writable volume (the ledger and guard state live there)');
  }
}
