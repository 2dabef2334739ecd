/**
 * src/guard/shell/root-watcher.ts: the share root's own fs.watch reports top-level
 * directories appearing (addDir) and vanishing or renamed (unlinkDir for the old name,
 * addDir for the new), anything else at the top level as unlinkDir (the handler ignores
 * names it has no directories under), asks for a root check when the root itself goes or
 * is renamed away (also when another directory takes its place at once), reads nothing at
 * start, and reports nothing after close(). Real temp directories and the real watcher.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeFs } from '../src/guard/shell/fsio.js';
import { watchShareRoot } from '../src/guard/shell/root-watcher.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';

const tmp = useTempDir('root-watcher-');
const closers: Array<{ close(): void }> = [];
afterEach(() => {
  for (const w of closers.splice(0)) w.close();
});

function watch(root: string) {
  const events: string[] = [];
  const errors: Error[] = [];
  let reads = 0;
  const fs = {
    watch: (p: string, listener: Parameters<typeof nodeFs.watch>[1], options: { persistent: boolean }) => nodeFs.watch(p, listener, options),
    accessibleDir: (p: string) => {
      reads++;
      return nodeFs.accessibleDir(p);
    },
  };
  const watcher = watchShareRoot(root, fs, {
    onTopLevel: (name, event) => events.push(`${event} ${name}`),
    onRoot: () => events.push('root'),
    onError: (e) => errors.push(e),
  });
  closers.push(watcher);
  return { watcher, events, errors, reads: () => reads };
}

describe('share root watcher', () => {
  it('reads nothing at start and reports top-level directories appearing, renamed and removed', async () => {
    const root = join(tmp.path, 'share');
    await mkdir(join(root, 'old'), { recursive: true });
    const w = watch(root);
    expect(w.reads()).toBe(0);

    await mkdir(join(root, 'fresh'));
    await waitFor('addDir fresh', () => w.events.includes('addDir fresh'));
    await rename(join(root, 'old'), join(root, 'renamed'));
    await waitFor('rename seen', () => w.events.includes('unlinkDir old') && w.events.includes('addDir renamed'));
    await rm(join(root, 'fresh'), { recursive: true });
    await waitFor('unlinkDir fresh', () => w.events.includes('unlinkDir fresh'));
    expect(w.events).not.toContain('root'); // no root check was asked for
    expect(w.errors).toEqual([]);
  });

  it('reports a top-level file as nothing but a name to look under, never as a directory', async () => {
    const root = join(tmp.path, 'share');
    await mkdir(root);
    const w = watch(root);
    await writeFile(join(root, 'notes.txt'), 'x');
    await waitFor('event for the file', () => w.events.some((e) => e.endsWith('notes.txt')));
    expect(w.events.filter((e) => e.endsWith('notes.txt')).every((e) => e === 'unlinkDir notes.txt')).toBe(true);
  });

  it('asks for a root check when the root itself is removed', async () => {
    const root = join(tmp.path, 'share');
    await mkdir(join(root, 'a'), { recursive: true });
    const w = watch(root);
    await rm(root, { recursive: true });
    await waitFor('root check', () => w.events.includes('root'));
  });

  it('asks for a root check when the root is renamed away, also when another directory takes its place at once', async () => {
    const root = join(tmp.path, 'share');
    await mkdir(root);
    await mkdir(join(tmp.path, 'other'));
    const w = watch(root);
    await rename(root, join(tmp.path, 'aside'));
    await rename(join(tmp.path, 'other'), root);
    await waitFor('root check', () => w.events.includes('root'));
  });

  it('reports nothing after close(), which is idempotent', async () => {
    const root = join(tmp.path, 'share');
    await mkdir(root);
    const w = watch(root);
    await mkdir(join(root, 'first'));
    await waitFor('first', () => w.events.includes('addDir first'));
    w.watcher.close();
    w.watcher.close();
    await mkdir(join(root, 'second'));
    // A later directory is seen by a second watcher, so the first one had its chance to report it.
    const probe = watch(root);
    await mkdir(join(root, 'third'));
    await waitFor('third, by the second watcher', () => probe.events.includes('addDir third'));
    expect(w.events).toEqual(['addDir first']);
  });

  it('throws what fs.watch throws for a missing root', () => {
    expect(() => watch(join(tmp.path, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }) as Error);
  });
});
