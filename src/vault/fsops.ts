/**
 * The filesystem calls that create vault entries and restored files, behind one small
 * interface so a test can inject what the machine cannot produce (EXDEV where no
 * second filesystem can be mounted, EOPNOTSUPP for reflinks) without mocking node:fs.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';

export interface VaultFs {
  link(existing: string, created: string): Promise<void>;
  /** Copy-on-write clone; fails (EOPNOTSUPP, EXDEV, EINVAL…) where the filesystem cannot. */
  reflink(source: string, target: string): Promise<void>;
}

export const nodeVaultFs: VaultFs = {
  link: (existing, created) => fs.link(existing, created),
  // COPYFILE_FICLONE_FORCE: clone or fail — never a silent full copy.
  reflink: (source, target) => fs.copyFile(source, target, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL),
};

export function withVaultFs(overrides: Partial<VaultFs> | undefined): VaultFs {
  return { ...nodeVaultFs, ...overrides };
}

export function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
}
