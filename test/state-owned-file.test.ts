/**
 * src/state/owned-file.ts, the streaming write of src/state (backup downloads and rewritten
 * zips): created exclusively, filled within a bound, moved into place or discarded — and
 * every test here tries to make it write through a symlink or touch a file it did not create.
 */
import { lstat, readFile, readdir, readlink, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { OwnedFile } from '../src/state/owned-file.js';
import { useTempDir } from './support/tmp.js';

const tmp = useTempDir('state-owned-file-');

const bytes = (...parts: string[]) => Readable.from(parts.map((p) => Buffer.from(p)));

async function plantVictim(): Promise<string> {
  const victim = join(tmp.path, 'victim.txt');
  await writeFile(victim, 'someone else’s');
  return victim;
}

describe('OwnedFile', () => {
  it('streams into a fresh 0600 file and moves it into place, leaving no temp name', async () => {
    const owned = await OwnedFile.create(join(tmp.path, 'download.tmp'));
    expect(await owned.fill(bytes('zip ', 'bytes'), { maxBytes: 100 })).toBe(9);
    const target = join(tmp.path, 'backup.zip');
    await owned.moveInto(target);
    expect(await readFile(target, 'utf8')).toBe('zip bytes');
    expect((await stat(target)).mode & 0o777).toBe(0o600);
    expect(await readdir(tmp.path)).toEqual(['backup.zip']);
    await owned.discard(); // after the move: nothing of ours is left to remove
    expect(await readFile(target, 'utf8')).toBe('zip bytes');
  });

  it('never creates through a symlink planted at its name (to a file, or dangling) nor over a file already there', async () => {
    const victim = await plantVictim();
    const link = join(tmp.path, 'link.tmp');
    await symlink(victim, link);
    await expect(OwnedFile.create(link)).rejects.toMatchObject({ code: 'EEXIST' });
    const dangling = join(tmp.path, 'dangling.tmp');
    await symlink(join(tmp.path, 'would-be-created'), dangling);
    await expect(OwnedFile.create(dangling)).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(OwnedFile.create(victim)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readlink(link)).toBe(victim);
    expect((await lstat(dangling)).isSymbolicLink()).toBe(true);
    expect(await readFile(victim, 'utf8')).toBe('someone else’s');
    expect((await readdir(tmp.path)).sort()).toEqual(['dangling.tmp', 'link.tmp', 'victim.txt']);
  });

  it('stops at its bound with the caller’s error, and the partial file is then discarded', async () => {
    const owned = await OwnedFile.create(join(tmp.path, 'endless.tmp'));
    const endless = Readable.from(
      (function* () {
        for (;;) yield Buffer.alloc(64 * 1024, 1);
      })(),
    );
    await expect(owned.fill(endless, { maxBytes: 1024 * 1024, tooLarge: (n) => new Error(`too large at ${n}`) })).rejects.toThrow(/too large at \d+/);
    expect((await stat(owned.path)).size).toBeLessThanOrEqual(1024 * 1024);
    await owned.discard();
    expect(await readdir(tmp.path)).toEqual([]);
  });

  it('an error in a stage between source and file stops the write; a second fill is refused', async () => {
    const owned = await OwnedFile.create(join(tmp.path, 'staged.tmp'));
    const failing = new Transform({ transform: (_chunk, _enc, done) => done(new Error('no space left')) });
    await expect(owned.fill(bytes('a'), { maxBytes: 10, through: [failing] })).rejects.toThrow('no space left');
    await expect(owned.fill(bytes('b'), { maxBytes: 10 })).rejects.toThrow(/already filled/);
    await owned.discard();
    expect(await readdir(tmp.path)).toEqual([]);
  });

  it('a name replaced after creation (by another file, or a symlink) is neither moved into place nor removed', async () => {
    const victim = await plantVictim();
    const target = join(tmp.path, 'backup.zip');
    for (const replace of [(file: string) => writeFile(file, 'their file'), (file: string) => symlink(victim, file)]) {
      const owned = await OwnedFile.create(join(tmp.path, 'swapped.tmp'));
      await owned.fill(bytes('ours'), { maxBytes: 10 });
      await unlink(owned.path);
      await replace(owned.path);
      expect(await owned.isMine()).toBe(false);
      await expect(owned.moveInto(target)).rejects.toThrow(/no longer the file this process wrote/);
      await owned.discard();
      const left = await lstat(owned.path);
      expect(left.isFile() || left.isSymbolicLink()).toBe(true);
      await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
      await unlink(owned.path);
    }
    expect(await readFile(victim, 'utf8')).toBe('someone else’s');
  });

  it('after it is moved or discarded, a file later put at its temp name is someone else’s and stays', async () => {
    const owned = await OwnedFile.create(join(tmp.path, 'reused.tmp'));
    await owned.fill(bytes('ours'), { maxBytes: 10 });
    await owned.moveInto(join(tmp.path, 'kept.zip'));
    await writeFile(owned.path, 'placed later');
    await owned.discard();
    expect(await readFile(owned.path, 'utf8')).toBe('placed later');

    const dropped = await OwnedFile.create(join(tmp.path, 'dropped.tmp'));
    await dropped.discard();
    await writeFile(dropped.path, 'placed later');
    await dropped.discard();
    expect(await readFile(dropped.path, 'utf8')).toBe('placed later');
  });
});
