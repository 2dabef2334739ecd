/**
 * Free space of the backup directory's file system, so a download never fills it: the
 * share's disk or the one CVAT's own volumes live on may be the same, and a full disk
 * breaks far more than one backup. Checked before a download and every few MiB of it.
 */
import fs from 'node:fs/promises';

const GiB = 1024 ** 3;

/**
 * Space left free when none is configured: 5 % of the file system, at least 1 GiB —
 * enough for the logs, databases and temp files of everything else on that disk, and
 * about where ext4 keeps its own root reserve; tiny file systems are simply not written.
 */
export function defaultReserveBytes(totalBytes: number): number {
  return Math.max(GiB, Math.ceil(totalBytes * 0.05));
}

export interface DiskSpace {
  /** Bytes an unprivileged writer may still use. */
  available: number;
  total: number;
}

export async function diskSpace(dir: string): Promise<DiskSpace> {
  const s = await fs.statfs(dir);
  return { available: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

export function formatBytes(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(1)} GiB`;
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  return `${bytes} bytes`;
}
