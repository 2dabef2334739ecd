/**
 * Filesystem type of the share, from /proc/self/mountinfo (longest mount-point prefix
 * of the share root's realpath). inotify only sees changes made through the local
 * VFS, so on network and FUSE filesystems changes by other clients are invisible:
 * there the guard relies on polling (small shares) or reconcile scans.
 */
import { readFile } from 'node:fs/promises';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
}

export interface FsTypeInfo {
  fsType: string;
  mountPoint: string;
  source: string;
  /** Changes made elsewhere are not reported by inotify. */
  network: boolean;
  /** 'mountinfo' | 'override' | 'unknown' (mountinfo unreadable: assumed local). */
  detectedBy: 'mountinfo' | 'override' | 'unknown';
}

const NETWORK_TYPES = new Set([
  'nfs',
  'nfs4',
  'cifs',
  'smb',
  'smb2',
  'smb3',
  'smbfs',
  '9p',
  'ceph',
  'glusterfs',
  'lustre',
  'gpfs',
  'afs',
  'ncpfs',
  'davfs',
  'fuse',
  'virtiofs',
  'vboxsf',
  'vmhgfs',
  'beegfs',
  'ocfs2',
  'gfs2',
  'orangefs',
  'pvfs2',
]);

/** nfs/nfs4/cifs/smb3/9p/ceph/… and every `fuse.*` (sshfs, s3fs, rclone, gcsfuse…). `fuseblk` is a local block device. */
export function isNetworkFsType(fsType: string): boolean {
  const t = fsType.toLowerCase();
  return NETWORK_TYPES.has(t) || t.startsWith('fuse.') || t.startsWith('nfs');
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const mountPoint = left[4];
    const fsType = right[0];
    if (mountPoint === undefined || fsType === undefined) continue;
    entries.push({ mountPoint: unescapeOctal(mountPoint), fsType, source: unescapeOctal(right[1] ?? '') });
  }
  return entries;
}

/** The mount holding `realPath` (longest mount-point prefix; later entries win on ties = over-mounts). */
export function mountFor(realPath: string, entries: readonly MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const entry of entries) {
    const mp = entry.mountPoint;
    const inside = mp === '/' || realPath === mp || realPath.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = entry;
  }
  return best;
}

export async function detectFsType(realRoot: string, options: { override?: string | undefined; mountinfoPath?: string } = {}): Promise<FsTypeInfo> {
  if (options.override) {
    return { fsType: options.override, mountPoint: realRoot, source: 'override', network: isNetworkFsType(options.override), detectedBy: 'override' };
  }
  try {
    const text = await readFile(options.mountinfoPath ?? '/proc/self/mountinfo', 'utf8');
    const mount = mountFor(realRoot, parseMountinfo(text));
    if (mount) return { ...mount, network: isNetworkFsType(mount.fsType), detectedBy: 'mountinfo' };
  } catch {
    // not Linux, or /proc hidden: assume local and let the scans cover the rest.
  }
  return { fsType: 'unknown', mountPoint: '/', source: '', network: false, detectedBy: 'unknown' };
}
