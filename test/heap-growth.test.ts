/**
 * The heap growth hold of `run` (src/heap-growth.ts) on a real V8, each case in its own node
 * process (V8's flags are process-wide): V8's own GC trace (`--trace-gc-verbose`) shows the
 * factor each new old-generation limit was computed with, without the hold, during it and
 * after its release; an admin's own flag wins.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GUARD_START_HEAP_GROWING_PERCENT, heapGrowthSetByAdmin } from '../src/heap-growth.js';

const MODULE = resolve('dist/heap-growth.js');

/**
 * One node process that sets the hold up as `mode` says before it allocates anything, then
 * keeps what a churn allocates through full GCs; returns the growth factors V8 traced. A
 * process per case: V8 prints its trace with C stdio, which need not interleave with
 * console output in order, so no phase markers are used.
 */
function tracedFactors(mode: 'none' | 'held' | 'released', nodeArgs: string[] = []): Promise<number[]> {
  if (!existsSync(MODULE)) throw new Error('dist/heap-growth.js is missing: run `npm run build` (npm test does)');
  const setup = {
    none: '',
    held: `hg.holdHeapGrowth(${GUARD_START_HEAP_GROWING_PERCENT});`,
    released: `const release = hg.holdHeapGrowth(${GUARD_START_HEAP_GROWING_PERCENT}); release(); release();`,
  }[mode];
  const script = `
    const hg = await import(${JSON.stringify(pathToFileURL(MODULE).href)});
    ${setup}
    const keep = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 400000; i++) keep.push({ i, s: 'x' + i });
      gc();
    }
  `;
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--trace-gc-verbose', '--expose-gc', ...nodeArgs, '--input-type=module', '-e', script], {
      env: { PATH: process.env['PATH'] },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? done(factors(out)) : fail(new Error(`exited ${code}: ${out.slice(-2000)}`))));
  });
}

/**
 * The old generation's growth factors in a stretch of V8's trace: Node 20's V8 prints the
 * factor it applied at the end of each `Limit:` line of its heap controller, newer ones in
 * the `factor F based on` line (after the flag is applied).
 */
function factors(trace: string): number[] {
  const limit = [...trace.matchAll(/\[(?:HeapController|OldGenerationMemoryController)\] Limit: [^\n]*\(([\d.]+)\)/g)].map((m) => Number(m[1]));
  if (limit.length > 0) return limit;
  return [...trace.matchAll(/\[(?:HeapController|OldGenerationMemoryController)\] factor ([\d.]+) based on/g)].map((m) => Number(m[1]));
}

describe('heap growth hold', () => {
  // 1 + 25/100, printed with one decimal.
  const HELD = 1.2;

  it('without the hold, V8 picks its own factor (the control)', async () => {
    const traced = await tracedFactors('none');
    expect(traced.length).toBeGreaterThan(0);
    expect(traced).not.toContain(HELD);
  });

  it('held: every old-generation limit grows by 25 %', async () => {
    const traced = await tracedFactors('held');
    expect(traced.length).toBeGreaterThan(0);
    expect(traced.every((f) => f === HELD)).toBe(true);
  });

  it('released (twice): V8 picks its own factor again', async () => {
    const traced = await tracedFactors('released');
    expect(traced.length).toBeGreaterThan(0);
    expect(traced).not.toContain(HELD);
  });

  it("an admin's heap growing percent wins: the hold stands aside", async () => {
    const traced = await tracedFactors('held', ['--heap-growing-percent=60']);
    expect(traced.length).toBeGreaterThan(0);
    expect(traced.every((f) => f === 1.6)).toBe(true);
  });

  it('recognises the flag an admin may set, in argv or NODE_OPTIONS, and nothing else', () => {
    expect(heapGrowthSetByAdmin(['--heap-growing-percent=40'], '')).toBe(true);
    expect(heapGrowthSetByAdmin([], '--enable-source-maps --heap_growing_percent=10')).toBe(true);
    expect(heapGrowthSetByAdmin(['--max-old-space-size=512'], '--max-semi-space-size=4')).toBe(false);
    expect(heapGrowthSetByAdmin([], '')).toBe(false);
  });
});
