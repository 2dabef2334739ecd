/**
 * src/guard/shell/scanner.ts with a stat thread: results come back in order with the token
 * taken when the batch was sent; a worker that fails (STAT_THREAD_FAILED) has its batch
 * stat-ed on this thread instead, so a broken worker never turns into a share of
 * "unreadable" files; a disk that hangs (STAT_TIMEOUT) is an error for each file of the
 * batch, never a synchronous stat that would hang the event loop.
 */
import { describe, expect, it } from 'vitest';
import { statEach, type StatEachOptions } from '../src/guard/shell/scanner.js';
import type { StatBatch } from '../src/guard/shell/stat-thread.js';
import type { FileStat } from '../src/guard/types.js';

const coded = (code: string) => Object.assign(new Error(code), { code });
const statOf = (f: number): FileStat => ({ size: f, mtimeMs: 1, ino: f, dev: 1 });

/** The batch as the worker reads it: UTF-8 bytes, paths separated by NUL. */
const decode = (bytes: Uint8Array): string[] => Buffer.from(bytes).toString('utf8').split('\0');

function run(threadStats: (paths: readonly string[]) => Promise<StatBatch>, ids: number[], pathOf = (f: number) => `/share/f${f}`) {
  const results: Array<[number, number | null]> = [];
  const errors: Array<[number, string]> = [];
  const syncStats: number[] = [];
  const options: StatEachOptions = {
    sync: true,
    concurrency: 1,
    ratePerSecond: Infinity,
    stopped: () => false,
    statSync: (f) => (syncStats.push(f), statOf(f)),
    statAsync: () => Promise.reject(new Error('not used')),
    before: (f) => f * 10,
    onResult: (f, st, token) => {
      expect(token).toBe(f * 10);
      results.push([f, st ? st.size : null]);
    },
    onError: (f, error) => errors.push([f, (error as { code?: string }).code ?? '?']),
    thread: {
      statsEncoded: (bytes, count) => {
        const paths = decode(bytes);
        expect(paths.length).toBe(count);
        return threadStats(paths);
      },
      writePath: (f, target, at) => {
        const bytes = Buffer.from(pathOf(f), 'utf8');
        if (at + bytes.length > target.length) return undefined;
        target.set(bytes, at);
        return at + bytes.length;
      },
    },
  };
  return statEach(ids, options).then(() => ({ results, errors, syncStats }));
}

describe('statEach on a stat thread', () => {
  it('applies each batch in order, absent files as null', async () => {
    const out = await run(
      (paths) =>
        Promise.resolve({
          length: paths.length,
          at: (i) => (paths[i]!.endsWith('3') ? { kind: 'absent' } : { kind: 'stat', stat: statOf(Number(paths[i]!.slice(8))) }),
        }),
      [1, 2, 3, 4],
    );
    expect(out.results).toEqual([
      [1, 1],
      [2, 2],
      [3, null],
      [4, 4],
    ]);
    expect(out.errors).toEqual([]);
    expect(out.syncStats).toEqual([]);
  });

  it('sends paths longer than the batch first reserved, and not ASCII, intact', async () => {
    const long = (f: number) => `/share/${'é'.repeat(40 * f)}/🖼 ${f}.jpg`;
    const sent: string[] = [];
    const out = await run(
      (paths) => {
        sent.push(...paths);
        return Promise.resolve({ length: paths.length, at: () => ({ kind: 'absent' }) });
      },
      [1, 2, 3, 4, 5],
      long,
    );
    expect(sent).toEqual([1, 2, 3, 4, 5].map(long));
    expect(out.results.map(([f]) => f)).toEqual([1, 2, 3, 4, 5]);
  });

  it('stats a batch here when the worker failed', async () => {
    const out = await run(() => Promise.reject(coded('STAT_THREAD_FAILED')), [5, 6]);
    expect(out.syncStats).toEqual([5, 6]);
    expect(out.results).toEqual([
      [5, 5],
      [6, 6],
    ]);
    expect(out.errors).toEqual([]);
  });

  it('reports every file of a batch that timed out, without a stat here', async () => {
    const out = await run(() => Promise.reject(coded('STAT_TIMEOUT')), [7, 8]);
    expect(out.syncStats).toEqual([]);
    expect(out.errors).toEqual([
      [7, 'STAT_TIMEOUT'],
      [8, 'STAT_TIMEOUT'],
    ]);
  });
});
