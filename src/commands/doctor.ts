/**
 * `cvat-warden doctor`: checks the setup and explains every problem in one line with a
 * fix — CVAT reachable, version and features, credentials and data permission, CVAT's
 * chunk workers (doctor-chunks.ts), share mounted at the right host path and its sampled
 * files present (a deleted file is reported as such, not as a wrong path), filesystem
 * type and watch mode, inotify budget, whether CVAT's chunk worker sees the share
 * (doctor-mount.ts), state directory writable, the running
 * service's webhook deliveries (doctor-service.ts), and deep mode's stores (doctor-deep.ts).
 */
import { accessSync, constants, existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { dirname, join } from 'node:path';
import type { CommandConfig } from '../config/index.js';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import type { Job } from '../cvat/shapes.js';
import { describeError } from '../errors.js';
import { checkName, detectFsType, inotifyDoctorCheck, type GuardTask } from '../guard/index.js';
import { redactSecrets } from '../secrets.js';
import { createClient, type CommandContext } from './context.js';
import { writeCommandJson } from './json-output.js';
import { checkChunkWorkers } from './doctor-chunks.js';
import { checkWebhooks } from './doctor-service.js';
import { checkCloudStorages } from './doctor-cloud.js';
import { checkWorkerShareMount } from './doctor-mount.js';
import { checkDeepStores } from './doctor-deep.js';
import { collectGuardTasks } from './shared.js';
import { OwnedFile } from '../state/owned-file.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  /**
   * 'warn' does not fail the doctor (e.g. an optional feature is off); 'skip' is a check
   * that could not run, its detail says why ("not checked: CVAT is not reachable").
   */
  level: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}

/** The verdict doctor ends with. */
export type DoctorResult = 'passed' | 'passed with warnings' | 'failed';

export function doctorResult(checks: readonly DoctorCheck[]): DoctorResult {
  if (checks.some((c) => c.level === 'fail')) return 'failed';
  return checks.some((c) => c.level === 'warn') ? 'passed with warnings' : 'passed';
}

/** `Result: passed with warnings (2 warnings, 1 not checked).` */
function resultLine(checks: readonly DoctorCheck[]): string {
  const count = (level: DoctorCheck['level']) => checks.filter((c) => c.level === level).length;
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  const parts = [
    count('fail') && plural(count('fail'), 'check failed', 'checks failed'),
    count('warn') && plural(count('warn'), 'warning', 'warnings'),
    count('skip') && `${count('skip')} not checked`,
  ].filter(Boolean);
  return `Result: ${doctorResult(checks)}${parts.length ? ` (${parts.join(', ')})` : ''}.`;
}

const SAMPLE_FRAMES = 20;
/** Jobs collected for the chunk-worker check. */
const SAMPLE_JOBS = 3;

export async function runDoctor(config: CommandConfig, context: CommandContext): Promise<number> {
  const checks: DoctorCheck[] = [];
  const add = (name: string, level: DoctorCheck['level'], detail: string, fix?: string) =>
    checks.push({ name, ok: level !== 'fail', level, detail, ...(fix ? { fix } : {}) });
  const client = createClient(config.cvat, context);
  try {
    const features = await checkCvat(client, add, context.signal);
    let shareTasks: GuardTask[] = [];
    let sampleJobs: Job[] = [];
    if (features) {
      const access = await checkPermissions(client, features, config, add, context.signal);
      shareTasks = access.shareTasks;
      sampleJobs = access.jobs;
      if (features.storageInMeta) await checkCloudStorages(client, add, context.signal);
      if (access.jobs.length > 0)
        await checkChunkWorkers(client, features, access.jobs, add, { coldThresholdMs: config.warm.coldThresholdMs, signal: context.signal });
      else add('chunk workers', 'skip', 'not checked: no job whose chunks this account may read');
    } else {
      for (const name of ['credentials', 'job data permission', 'chunk workers']) add(name, 'skip', 'not checked: CVAT is not reachable');
    }
    await checkShare(config, features, shareTasks, add);
    if (features && config.shareDir && shareTasks.length > 0) await checkWorkerShareMount(client, features, shareTasks, config.shareDir, add, context.signal);
    await checkStateDir(config.stateDir, add);
    await checkWebhooks(config.listen, add);
    await checkDeepStores(config.deep, features, sampleJobs, add);
  } finally {
    await client.close();
  }
  const result = doctorResult(checks);
  if (config.json) writeCommandJson(context.stdout, 'doctor', { ok: result !== 'failed', result, checks });
  else {
    const mark = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' } as const;
    const lines = checks.map((c) => `[${mark[c.level]}] ${c.name}: ${c.detail}${c.fix ? `\n       fix: ${c.fix}` : ''}`);
    lines.push('', resultLine(checks));
    context.stdout.write(redactSecrets(`${lines.join('\n')}\n`));
  }
  return result === 'failed' ? 1 : 0;
}

export type DoctorAdd = (name: string, level: DoctorCheck['level'], detail: string, fix?: string) => void;
type Add = DoctorAdd;

async function checkCvat(client: CvatClient, add: Add, signal: AbortSignal): Promise<CvatFeatures | undefined> {
  try {
    const features = await client.features(signal);
    add('CVAT reachable', 'ok', `${client.baseUrl} answers, CVAT ${features.version.raw}`);
    const on = (flag: boolean, text: string) => (flag ? text : `no ${text}`);
    add(
      'version and features',
      features.indexChunks ? 'ok' : 'warn',
      [
        on(features.indexChunks, 'per-job index chunks (2.20)'),
        on(features.retryAfter429, '429 + Retry-After (2.23)'),
        on(features.storageInMeta, 'storage in data/meta (2.44)'),
        on(features.rangeRequests, 'Range (2.66)'),
      ].join(', '),
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

/** Credentials and data permission; the share tasks and a few readable jobs for the later checks. */
async function checkPermissions(
  client: CvatClient,
  features: CvatFeatures,
  config: CommandConfig,
  add: Add,
  signal: AbortSignal,
): Promise<{ shareTasks: GuardTask[]; jobs: Job[] }> {
  const jobs: Job[] = [];
  try {
    const self = (await client.getJson('/api/users/self', undefined, signal)) as { username?: string; is_superuser?: boolean };
    add('credentials', 'ok', `accepted, user "${self.username ?? '?'}"${self.is_superuser ? ' (admin)' : ''}`);
  } catch (error) {
    add('credentials', 'fail', describeError(error), 'create a personal access token of an admin (or org owner/maintainer) and set CVAT_ACCESS_TOKEN');
    add('job data permission', 'skip', 'not checked: CVAT refuses the credentials');
    return { shareTasks: [], jobs };
  }
  try {
    for await (const job of client.jobs({}, signal)) {
      // Annotation jobs only: a ground-truth job's chunks follow its own frame list.
      if (job.ok && job.value.type === 'annotation') jobs.push(job.value);
      if (jobs.length >= SAMPLE_JOBS) break;
    }
    const first = jobs[0];
    if (first === undefined)
      add(
        'job data permission',
        'warn',
        'no job visible to this account, so data access could not be tried',
        'use an admin account, or set CVAT_ORG to the organization to warm',
      );
    else {
      await client.jobMeta(first.id, signal);
      add('job data permission', 'ok', `may read job data (tried job ${first.id})`);
    }
  } catch (error) {
    add('job data permission', 'fail', describeError(error), 'warming needs an admin account or an organization owner/maintainer (set CVAT_ORG for an org)');
    jobs.length = 0;
  }
  if (!config.shareDir) return { shareTasks: [], jobs };
  try {
    const tasks = await collectGuardTasks(client, features, { all: true, taskIds: [], projectIds: [], jobIds: [] }, config.shareTasks, () => undefined, signal);
    return { shareTasks: tasks.filter((t) => t.storage === 'share' || (!features.storageInMeta && t.storage === 'unknown')), jobs };
  } catch {
    return { shareTasks: [], jobs };
  }
}

/** Where the sample frames would be found: the given root, its parent or one of its subdirectories. */
function suggestRoot(shareDir: string, names: string[]): string | undefined {
  const candidates = [dirname(shareDir)];
  try {
    for (const entry of readdirSync(shareDir, { withFileTypes: true }).slice(0, 200)) if (entry.isDirectory()) candidates.push(join(shareDir, entry.name));
  } catch {
    // unreadable: only the parent is a candidate
  }
  return candidates.find((root) => names.some((n) => existsSync(join(root, n))));
}

async function checkShare(config: CommandConfig, features: CvatFeatures | undefined, shareTasks: GuardTask[], add: Add): Promise<void> {
  const shareDir = config.shareDir;
  if (!shareDir) {
    add(
      'share directory',
      'warn',
      'not configured: the integrity guard is off',
      'set CVAT_SHARE_DIR to the host path of the volume CVAT mounts at /home/django/share',
    );
    return;
  }
  if (!checkShareReadable(shareDir, add)) return;
  const root = realpathSync(shareDir);
  if (features && !features.storageInMeta && config.shareTasks.length === 0) {
    add(
      'share tasks',
      'warn',
      `CVAT ${features.version.raw} does not say which tasks read the share`,
      'list them with --share-tasks (or CVAT_WARDEN_SHARE_TASKS), or upgrade CVAT to 2.44+',
    );
  }
  const sample = shareTasks.find((t) => (t.meta.frames?.length ?? 0) > 0);
  if (sample) checkShareRoot(shareDir, root, sample, add);
  else {
    add('share directory', 'ok', `${shareDir} is mounted and readable`);
    // Whether it is the right root only shows against the frame names of a share task.
    add(
      'share frame names',
      'skip',
      features ? 'not checked: no share task with frames to test the names of' : 'not checked: CVAT is not reachable, so no task says which files it reads',
    );
  }
  await checkShareWatching(root, shareTasks, add);
}

/** The share directory exists, is a directory, and this user may list and read it. */
function checkShareReadable(shareDir: string, add: Add): boolean {
  if (!existsSync(shareDir) || !statSync(shareDir).isDirectory()) {
    add(
      'share directory',
      'fail',
      `${shareDir} does not exist or is not a directory`,
      "mount the share there, or point CVAT_SHARE_DIR at the host path of CVAT's cvat_share volume",
    );
    return false;
  }
  try {
    accessSync(shareDir, constants.R_OK | constants.X_OK);
    return true;
  } catch {
    add('share directory', 'fail', `${shareDir} is not readable by this user`, 'mount it readable (read-only is right) for the user running cvat-warden');
    return false;
  }
}

/** Whether the share is the root CVAT sees, judged by a share task's sampled frame names. */
function checkShareRoot(shareDir: string, root: string, sample: GuardTask, add: Add): void {
  const names = (sample.meta.frames ?? [])
    .slice(0, SAMPLE_FRAMES)
    .map((f) => f.name)
    .filter((n) => checkName(n).ok);
  const missing = names.filter((n) => !existsSync(join(root, n)));
  const found = names.length - missing.length;
  if (found === names.length) add('share directory', 'ok', `${shareDir}: all ${names.length} sampled frame names of task ${sample.taskId} found`);
  else if (found > 0) {
    // Some frames are where CVAT expects them: the root is right, the others were deleted or moved.
    add('share directory', 'ok', `${shareDir}: ${found} of ${names.length} sampled frame names of task ${sample.taskId} found, so this is the right root`);
    add(
      'share files',
      'fail',
      `${missing.length} sampled file(s) of task ${sample.taskId} are missing from the share (deleted or moved): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
      'put them back at the same path (CVAT cannot rebuild their chunks without them); `cvat-warden check --all` lists every missing file with its tasks, jobs and chunks',
    );
  } else {
    const better = suggestRoot(root, names);
    add(
      'share directory',
      'fail',
      `${shareDir}: none of ${names.length} sampled frame names of task ${sample.taskId} is there (e.g. ${missing[0]})`,
      better
        ? `the frames are under ${better}: set CVAT_SHARE_DIR=${better}`
        : 'CVAT_SHARE_DIR must be the host path that CVAT sees as /home/django/share (the most common mistake is one directory too high or too low); if it is, these files were deleted: `cvat-warden check --all` lists them',
    );
  }
}

/** How the guard will see changes on this file system, and whether the inotify watches suffice. */
async function checkShareWatching(root: string, shareTasks: GuardTask[], add: Add): Promise<void> {
  const fs = await detectFsType(root);
  add(
    'filesystem and watch mode',
    fs.network ? 'warn' : 'ok',
    `${fs.fsType} at ${fs.mountPoint}: ${fs.network ? "network filesystem, inotify does not see other hosts' changes; the guard relies on reconcile scans" : 'local filesystem, changes seen at once through inotify'}`,
    fs.network ? 'keep --scan-interval short enough for your tolerance (default 1h)' : undefined,
  );
  const dirs = new Set<string>();
  for (const task of shareTasks) for (const frame of task.meta.frames ?? []) dirs.add(dirname(frame.name));
  const watches = await inotifyDoctorCheck(dirs.size); // the limit that applies here (user namespace, container), probed
  add('inotify watches', watches.status, watches.detail, watches.fix);
}

/** Writes a probe file the way state is written (src/state: created exclusively, never through a link) and removes exactly it. */
async function checkStateDir(stateDir: string, add: Add): Promise<void> {
  try {
    mkdirSync(stateDir, { recursive: true });
    const probe = await OwnedFile.create(join(stateDir, `.doctor-${process.pid}`));
    try {
      await probe.fill(Readable.from([Buffer.from('ok')]), { maxBytes: 2 });
    } finally {
      await probe.discard();
    }
    add('state directory', 'ok', `${stateDir} is writable`);
  } catch (error) {
    add(
      'state directory',
      'fail',
      `${stateDir}: ${(error as NodeJS.ErrnoException).code ?? describeError(error)}`,
      'point CVAT_WARDEN_STATE_DIR at a writable volume (the ledger and guard state live there)',
    );
  }
}
