/**
 * Single-writer lock for a state directory (the ledger's `ledger.lock`): a file created
 * with O_EXCL that names its owner (mode 0644: it holds a pid, no state). Two processes
 * appending to and compacting the same journal would interleave date changes with stale
 * records, so a second opener is refused. A lock left behind by a killed process is
 * detected and taken over: its owner pid is gone or a zombie (killed, not yet reaped), or
 * (Linux) the pid now belongs to a process with another start time, or the machine
 * rebooted since.
 */
import { open, readFile, unlink } from 'node:fs/promises';
import { readFileSync } from 'node:fs';

interface LockOwner {
  pid: number;
  /** Process start time in clock ticks since boot (Linux /proc/<pid>/stat field 22). */
  start?: string;
  boot?: string;
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Fields 3.. of /proc/<pid>/stat (state first), or undefined off Linux or when gone. */
function statFields(pid: number): string[] | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function processStart(pid: number): string | undefined {
  return statFields(pid)?.[19]; // field 22 overall
}

/**
 * A killed process whose parent has not reaped it yet is a zombie (state Z) or dead
 * (X): `kill(pid, 0)` still succeeds, but it holds no files and will never release.
 */
function isZombie(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state === 'Z' || state === 'X';
}

function bootId(): string | undefined {
  return readProc('/proc/sys/kernel/random/boot_id');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the recorded owner certainly no longer holds the lock. */
function isStale(owner: LockOwner | undefined): boolean {
  if (!owner || !Number.isSafeInteger(owner.pid) || owner.pid <= 0) return true; // torn or foreign content
  if (owner.boot && owner.boot !== bootId()) return true;
  // Same pid as ours: a previous incarnation (e.g. pid 1 in a restarted container).
  if (owner.pid === process.pid) return true;
  if (!isAlive(owner.pid) || isZombie(owner.pid)) return true;
  if (owner.start) {
    const start = processStart(owner.pid);
    if (start !== undefined && start !== owner.start) return true;
  }
  return false;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && typeof (value as LockOwner).pid === 'number') return value as LockOwner;
  } catch {
    // fall through
  }
  return undefined;
}

export class LockHeldError extends Error {
  override name = 'LockHeldError';
  readonly pid: number;
  constructor(path: string, pid: number) {
    super(`${path} is held by running process ${pid}`);
    this.pid = pid;
  }
}

/**
 * Takes the lock or throws LockHeldError (live owner) or the fs error (e.g. EACCES).
 * Returns a release function (idempotent, never throws).
 */
export async function acquireLock(path: string): Promise<() => Promise<void>> {
  const owner: LockOwner = { pid: process.pid };
  const start = processStart(process.pid);
  const boot = bootId();
  if (start) owner.start = start;
  if (boot) owner.boot = boot;
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o644);
      try {
        await handle.writeFile(JSON.stringify(owner));
      } finally {
        await handle.close();
      }
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await unlink(path).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) throw error;
    }
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw error;
    }
    const current = parseOwner(text);
    if (!isStale(current)) throw new LockHeldError(path, (current as LockOwner).pid);
    await unlink(path).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    });
  }
}
