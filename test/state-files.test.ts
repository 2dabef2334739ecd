/**
 * src/state/files.ts, the one atomic write: the target is replaced whole or not at all,
 * files are 0600, and a failed write removes only the temp file it created — an exclusive
 * temp name already taken (here by a symlink to a file the writer does not own) is refused
 * and left exactly as it was.
 */
import { lstat, readFile, readlink, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../src/state/files.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('state-files-');

describe('writeFileAtomic', () => {
  it('replaces the target whole, mode 0600, leaving no temp file', async () => {
    const target = join(tmp.path, 'state.json');
    await writeFile(target, 'old', { mode: 0o644 });
    await writeFileAtomic(target, 'new');
    expect(await readFile(target, 'utf8')).toBe('new');
    expect((await stat(target)).mode & 0o777).toBe(0o600);
    expect(await readdir(tmp.path)).toEqual(['state.json']);
  });

  it('a producer that fails midway leaves the old target and removes its temp file', async () => {
    const target = join(tmp.path, 'snapshot');
    await writeFile(target, 'intact');
    const failing = (write: (piece: Buffer) => void) => {
      write(Buffer.from('half of a snapsh'));
      throw new Error('disk full');
    };
    await expect(writeFileAtomic(target, failing, { durable: false })).rejects.toThrow('disk full');
    expect(await readFile(target, 'utf8')).toBe('intact');
    expect(await readdir(tmp.path)).toEqual(['snapshot']);
  });

  it('an exclusive temp name that is taken is refused, and what holds it is left alone', async () => {
    const victim = join(tmp.path, 'not-ours.txt');
    await writeFile(victim, 'someone else’s');
    const taken = join(tmp.path, '.tmp-1');
    await symlink(victim, taken);
    const target = join(tmp.path, 'manifest');
    await expect(writeFileAtomic(target, 'data', { tmp: taken })).rejects.toMatchObject({ code: 'EEXIST' });
    expect((await lstat(taken)).isSymbolicLink()).toBe(true);
    expect(await readlink(taken)).toBe(victim);
    expect(await readFile(victim, 'utf8')).toBe('someone else’s');
    expect(await readdir(tmp.path)).not.toContain('manifest');
  });

  it('the default temp name, reused after a crash, is truncated when it is a file but never followed when it is a symlink', async () => {
    const target = join(tmp.path, 'guard-state.json');
    await writeFile(`${target}.tmp`, 'a crashed write left this');
    await writeFileAtomic(target, 'fresh');
    expect(await readFile(target, 'utf8')).toBe('fresh');
    const victim = join(tmp.path, 'victim.txt');
    await writeFile(victim, 'someone else’s');
    await symlink(victim, `${target}.tmp`);
    await expect(writeFileAtomic(target, 'through the link?')).rejects.toMatchObject({ code: 'ELOOP' });
    expect(await readFile(victim, 'utf8')).toBe('someone else’s');
    expect(await readFile(target, 'utf8')).toBe('fresh');
    expect((await lstat(`${target}.tmp`)).isSymbolicLink()).toBe(true);
  });
});
