/**
 * src/guard/shell/stat-thread.ts: the guard's local-disk stats on a worker thread give
 * what fsio's statSync gives (a stat, absent for ENOENT/ENOTDIR, the errno for anything
 * else), in order; a batch that does not answer in time fails with STAT_TIMEOUT and the
 * next batch gets a fresh worker; an idle worker stops; close() is idempotent and later
 * calls fail cleanly.
 */
import { mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StatThread } from '../src/guard/shell/stat-thread.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const tmp = useTempDir('stat-thread-');
const threads: StatThread[] = [];
const thread = (options?: { timeoutMs?: number; idleMs?: number }) => {
  const t = new StatThread(options);
  threads.push(t);
  return t;
};
afterEach(async () => {
  await Promise.all(threads.splice(0).map((t) => t.close()));
});

describe('StatThread', () => {
  it('stats a batch in order: present, absent, not a directory, a symlink loop', async () => {
    const file = join(tmp.path, 'a.jpg');
    await writeFile(file, 'abc');
    await mkdir(join(tmp.path, 'dir'));
    await symlink('loop', join(tmp.path, 'loop'));
    const paths = [file, join(tmp.path, 'missing.jpg'), join(file, 'child'), join(tmp.path, 'loop'), join(tmp.path, 'dir')];
    const batch = await thread().stats(paths);
    expect(batch.length).toBe(5);
    const st = await stat(file);
    expect(batch.at(0)).toEqual({ kind: 'stat', stat: { size: 3, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev } });
    expect(batch.at(1)).toEqual({ kind: 'absent' });
    expect(batch.at(2)).toEqual({ kind: 'absent' });
    const loop = batch.at(3);
    expect(loop.kind).toBe('error');
    expect(loop.kind === 'error' && (loop.error as NodeJS.ErrnoException).code).toBe('ELOOP');
    expect(batch.at(4).kind).toBe('stat');
  });

  it('keeps names with spaces, newlines and non-ASCII apart (paths travel NUL-joined)', async () => {
    const names = ['a b.jpg', 'line\nbreak.jpg', 'ünï 𝄞.png', ''];
    for (const name of names.slice(0, 3)) await writeFile(join(tmp.path, name), name);
    const batch = await thread().stats(names.map((n) => join(tmp.path, n)));
    expect([0, 1, 2].map((i) => batch.at(i).kind)).toEqual(['stat', 'stat', 'stat']);
    expect(
      [0, 1, 2].map((i) => {
        const r = batch.at(i);
        return r.kind === 'stat' ? r.stat.size : -1;
      }),
    ).toEqual(names.slice(0, 3).map((n) => Buffer.byteLength(n)));
    expect(batch.at(3).kind).toBe('stat'); // the temp dir itself (join(dir, '') === dir)
    expect((await thread().stats([])).length).toBe(0);
  });

  it('fails a batch that does not answer in time with STAT_TIMEOUT, and starts afresh', async () => {
    // 1 ms is less than a worker needs to start: the first batch times out, whatever the disk.
    const t = thread({ timeoutMs: 1 });
    await expect(t.stats([tmp.path])).rejects.toMatchObject({ code: 'STAT_TIMEOUT' });
    const patient = thread();
    expect((await patient.stats([tmp.path])).at(0).kind).toBe('stat');
  });

  it('close() is idempotent; calls after it fail with STAT_THREAD_CLOSED', async () => {
    const t = thread();
    expect((await t.stats([tmp.path])).at(0).kind).toBe('stat');
    await t.close();
    await t.close();
    await expect(t.stats([tmp.path])).rejects.toMatchObject({ code: 'STAT_THREAD_CLOSED' });
  });

  it('stops an idle worker, and the next batch starts a new one', async () => {
    const t = thread({ idleMs: 20 });
    expect(t.running).toBe(false); // nothing starts before the first batch
    expect((await t.stats([tmp.path])).at(0).kind).toBe('stat');
    expect(t.running).toBe(true);
    await waitFor('idle worker stopped', () => !t.running);
    expect((await t.stats([tmp.path])).at(0).kind).toBe('stat');
  });
});
