/**
 * The inotify watch limit that really applies to this process. `fs.inotify.max_user_watches`
 * is the host's; inside a user namespace (rootless containers) the per-namespace
 * `user.max_inotify_watches` can be lower, and every process of the same real user
 * (other containers included) draws from the same pool. So read both, and probe: add
 * watches on throw-away directories until the count needed is reached or the kernel
 * says no (ENOSPC/EMFILE) — that count is what the guard would get right now.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { errorCode } from './fsio.js';

export interface InotifyLimit {
  /** /proc/sys/fs/inotify/max_user_watches (host-wide, per real user), if readable. */
  maxUserWatches?: number;
  /** /proc/sys/user/max_inotify_watches (this user namespace), if readable. */
  namespaceMaxWatches?: number;
  /** The lower of the two (undefined when neither is readable). */
  configured?: number;
  /** Watches the probe could add (stops at `needed`), and the error that stopped it. */
  probed: number;
  probeError?: string;
  /** The probe reached `needed`. */
  enough: boolean;
  needed: number;
}

async function readNumber(file: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(file, 'utf8')).trim());
    return Number.isFinite(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Probe cap: a doctor run never creates more throw-away directories than this. */
export const MAX_PROBE = 50_000;

export async function inotifyWatchLimit(needed: number, options: { procRoot?: string; tmp?: string } = {}): Promise<InotifyLimit> {
  const proc = options.procRoot ?? '/proc';
  const maxUserWatches = await readNumber(path.join(proc, 'sys/fs/inotify/max_user_watches'));
  const namespaceMaxWatches = await readNumber(path.join(proc, 'sys/user/max_inotify_watches'));
  const limits = [maxUserWatches, namespaceMaxWatches].filter((n): n is number => n !== undefined);
  const target = Math.max(0, Math.min(needed, MAX_PROBE));
  const result: InotifyLimit = {
    probed: 0,
    enough: false,
    needed,
    ...(maxUserWatches !== undefined ? { maxUserWatches } : {}),
    ...(namespaceMaxWatches !== undefined ? { namespaceMaxWatches } : {}),
    ...(limits.length ? { configured: Math.min(...limits) } : {}),
  };
  const dir = await mkdtemp(path.join(options.tmp ?? tmpdir(), 'cvat-warden-inotify-probe-'));
  const watchers: FSWatcher[] = [];
  try {
    for (let i = 0; i < target; i++) {
      const sub = path.join(dir, String(i));
      await mkdir(sub);
      try {
        const w = watch(sub, { persistent: false });
        w.on('error', () => undefined);
        watchers.push(w);
      } catch (error) {
        result.probeError = errorCode(error);
        break;
      }
    }
  } finally {
    result.probed = watchers.length;
    for (const w of watchers) w.close();
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  result.enough = result.probed >= target && target === needed;
  return result;
}

export interface WatchLimitVerdict {
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

/** doctor's "inotify watches" line: can the guard get one watch per share directory (+10 spare) here, now? */
export async function inotifyDoctorCheck(directories: number): Promise<WatchLimitVerdict> {
  const needed = directories + 10;
  const limit = await inotifyWatchLimit(needed);
  const configured =
    limit.configured === undefined
      ? 'limit unreadable'
      : `limit ${limit.configured}${limit.namespaceMaxWatches !== undefined && limit.namespaceMaxWatches < (limit.maxUserWatches ?? Infinity) ? ' (this user namespace)' : ''}`;
  const fix = `raise it: sysctl -w fs.inotify.max_user_watches=${Math.max(524_288, needed * 2)} (persist it in /etc/sysctl.d/; in a rootless container also user.max_inotify_watches), or stop other watchers of the same user`;
  const base = `${directories} share directories to watch (one watch each, about 1 KB of kernel memory), ${configured}`;
  if (limit.enough) return { status: 'ok', detail: `${base}; probe: ${limit.probed} watches available` };
  if (needed > MAX_PROBE && !limit.probeError)
    return { status: limit.configured !== undefined && limit.configured < needed ? 'fail' : 'ok', detail: `${base}; probe added ${limit.probed} (capped)` };
  return {
    status: 'fail',
    detail: `${base}; probe: only ${limit.probed} watches could be added (${limit.probeError ?? 'stopped'}): the rest would be degraded (scanned every 30 s)`,
    fix,
  };
}
