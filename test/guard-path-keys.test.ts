// A slot's persisted key computed from its directory's key and its name's bytes
// (ShareIndex.pathKeyOf) must be the key of its path string (pathKey): the baselines and
// journals already on disk are keyed by it.
import { describe, expect, it } from 'vitest';
import { continuePathKey, pathKey } from '../src/guard/core/baseline-table.js';
import { ShareIndex } from '../src/guard/core/share-index.js';

/** Registers the references as task `taskId` (removeTask reads only its file ids and frames). */
function register(index: ShareIndex, taskId: number, fileIds: number[]): void {
  index.tasks.set(taskId, {
    mapping: { jobs: [], frameCount: 0, startFrame: 0, frameStep: 1 } as never,
    signature: '',
    fileIds: Int32Array.from(fileIds),
    frames: Int32Array.from(fileIds.keys()),
    distinctFiles: fileIds.length,
    rejected: [],
    warnings: [],
  });
}

const NAMES = [
  'f0.jpg',
  'a',
  'IMG 0001 (copy).JPG',
  'x'.repeat(127),
  'y'.repeat(128),
  'z'.repeat(300),
  'café.png',
  '画像_01.jpg',
  'emoji-😀.jpg',
  'tab\tand~tilde#hash%.jpg',
  'back\\slash.jpg',
];
const DIRS = ['', 'd1', 'nested/deeper/dir', 'ünïcode dir', 'x'.repeat(200)];

describe('ShareIndex.pathKeyOf', () => {
  it('equals pathKey of the relative path, for ASCII and other names, at the root and in directories', () => {
    const index = new ShareIndex();
    const slots: Array<{ f: number; rel: string }> = [];
    let frame = 0;
    for (const dir of DIRS)
      for (const name of NAMES) {
        const rel = dir === '' ? name : `${dir}/${name}`;
        slots.push({ f: index.addRef(rel, 1, frame++, 'frame').f, rel });
      }
    const out = new Uint32Array(2);
    for (const { f, rel } of slots) {
      index.pathKeyOf(f, out);
      const expected = pathKey(rel);
      expect([out[0], out[1]], rel).toEqual([expected.hi, expected.lo]);
    }
  });

  it('stays right after the name arena compacts and a directory id is reused', () => {
    const index = new ShareIndex();
    // Enough names to fill and move the arena (64 KiB first), then free a directory and reuse its id.
    const old: number[] = [];
    for (let i = 0; i < 20_000; i++) old.push(index.addRef(`old/f${i}.jpg`, 1, i, 'frame').f);
    register(index, 1, old);
    expect(index.removeTask(1, () => undefined)).toHaveLength(1);
    const slots: Array<{ f: number; rel: string }> = [];
    for (let i = 0; i < 20_000; i++) {
      const rel = `new${i % 3}/g${i}.jpg`;
      slots.push({ f: index.addRef(rel, 2, i, 'frame').f, rel });
    }
    const out = new Uint32Array(2);
    for (const { f, rel } of slots) {
      index.pathKeyOf(f, out);
      const expected = pathKey(rel);
      expect([out[0], out[1]]).toEqual([expected.hi, expected.lo]);
    }
  });
});

describe('continuePathKey', () => {
  it('continues pathKey of a prefix over ASCII bytes, and refuses any other byte', () => {
    const out = new Uint32Array(2);
    for (const prefix of ['', 'a/', 'share dir/sub/', 'ü/'])
      for (const name of ['f.jpg', 'x'.repeat(1000), '']) {
        const bytes = Buffer.from(`..${name}..`, 'utf8');
        expect(continuePathKey(pathKey(prefix), bytes, 2, bytes.length - 2, out)).toBe(true);
        const expected = pathKey(prefix + name);
        expect([out[0], out[1]]).toEqual([expected.hi, expected.lo]);
      }
    out.fill(7);
    expect(continuePathKey(pathKey('a/'), Buffer.from('é', 'utf8'), 0, 2, out)).toBe(false);
    expect([...out]).toEqual([7, 7]);
  });
});
