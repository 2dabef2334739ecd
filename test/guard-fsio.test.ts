/**
 * src/guard/shell/fsio.ts: the guard's file-system calls on a real temp directory. stat
 * follows symlinks and gives null for a missing path and for a path through a file
 * (ENOENT/ENOTDIR), async and sync alike; entryKind is lstat's verdict (a symlink is never
 * followed, not even a loop) with the same nulls, async and sync alike.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFs } from '../src/guard/shell/fsio.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('fsio-');

async function tree() {
  const dir = join(tmp.path, 'dir');
  const file = join(tmp.path, 'file.jpg');
  await mkdir(dir);
  await writeFile(file, 'abc');
  await symlink(dir, join(tmp.path, 'to-dir'));
  await symlink('loop', join(tmp.path, 'loop'));
  return { dir, file };
}

describe('nodeFs', () => {
  it('entryKind: directory, file, symlink (not followed, a loop included), null when absent or through a file', async () => {
    const { dir, file } = await tree();
    const cases: Array<[string, string | null]> = [
      [dir, 'directory'],
      [file, 'other'],
      [join(tmp.path, 'to-dir'), 'symlink'],
      [join(tmp.path, 'loop'), 'symlink'],
      [join(tmp.path, 'missing'), null],
      [join(file, 'child'), null],
    ];
    for (const [path, kind] of cases) {
      expect(await nodeFs.entryKind(path), path).toBe(kind);
      expect(nodeFs.entryKindSync(path), path).toBe(kind);
    }
  });

  it('stat: follows symlinks; null when absent or through a file; a loop throws ELOOP', async () => {
    const { dir, file } = await tree();
    expect((await nodeFs.stat(file))?.size).toBe(3);
    expect(nodeFs.statSync(file)?.size).toBe(3);
    expect((await nodeFs.stat(join(tmp.path, 'to-dir')))?.ino).toBe(nodeFs.statSync(dir)?.ino);
    for (const path of [join(tmp.path, 'missing'), join(file, 'child')]) {
      expect(await nodeFs.stat(path)).toBeNull();
      expect(nodeFs.statSync(path)).toBeNull();
    }
    await expect(nodeFs.stat(join(tmp.path, 'loop'))).rejects.toMatchObject({ code: 'ELOOP' });
    expect(() => nodeFs.statSync(join(tmp.path, 'loop'))).toThrow(expect.objectContaining({ code: 'ELOOP' }) as Error);
  });
});
