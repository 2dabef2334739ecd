/**
 * Crash safety of the ledger under SIGKILL: a child process (test/fixtures/
 * ledger-writer.mjs) records entries in a tight loop with frequent compactions and
 * is killed at random moments — during startup, replay, appends, snapshot writes.
 * Every reopen must succeed, every recovered entry must be well-formed, and
 * everything the child reported as flushed must be present.
 *
 * The child runs plain node, so it needs JavaScript: the ledger's module graph is
 * transpiled from src/ (test/support/transpile.ts, node builtins only).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger, type LedgerEntry } from '../src/warm/ledger.js';
import { useTempDir } from './support/tmp.js';
import { repoRoot, transpileSrc } from './support/transpile.js';

const fixture = join(repoRoot, 'test/fixtures/ledger-writer.mjs');

function expected(run: number, slot: number): LedgerEntry {
  return {
    confirmedAt: 1_700_000_000_000 + run * 1_000_000 + slot,
    outcome: (['warm', 'failed', 'stuck'] as const)[slot % 3]!,
    checksum: (run * 7919 + slot * 31) >>> 0,
  };
}

interface ChildResult {
  opened: boolean;
  flushed: number | undefined;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs the writer and SIGKILLs it `delayMs` after spawning (`after: 'spawn'`: lands
 * in startup, load or replay) or after it reported the ledger open (`'open'`: lands
 * in appends and compactions). A child that never opens is killed after 20 s.
 */
function runAndKill(modulePath: string, dir: string, run: number, after: 'spawn' | 'open', delayMs: number): Promise<ChildResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [fixture, modulePath, dir, String(run), '3000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const result: ChildResult = { opened: false, flushed: undefined, stderr: '', code: null, signal: null };
    let buffered = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      buffered += text;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const [what, , n] = line.split(' ');
        if (what === 'open') {
          result.opened = true;
          if (after === 'open') {
            clearTimeout(timer);
            timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
          }
        }
        if (what === 'flushed') result.flushed = Number(n);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => (result.stderr += text));
    let timer = setTimeout(() => child.kill('SIGKILL'), after === 'spawn' ? delayMs : 20_000);
    child.on('error', reject);
    // 'close' waits for stdout to drain: lines written before the kill are counted.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      result.code = code;
      result.signal = signal;
      resolveRun(result);
    });
  });
}

describe('ledger crash safety (SIGKILL fuzz)', () => {
  const work = useTempDir('ledger-crash-', { scope: 'suite' });
  let build: Awaited<ReturnType<typeof transpileSrc>>;
  let modulePath: string;

  beforeAll(async () => {
    build = await transpileSrc(['src/warm/ledger.ts'], { builtinsOnly: true });
    modulePath = build.js('src/warm/ledger.ts');
  });

  afterAll(async () => build.remove());

  it('survives 14 SIGKILLs at random moments without corruption or loss of flushed entries', async () => {
    const dir = join(work.path, 'state');
    const flushed = new Map<number, number>();
    let opened = 0;
    let lastFlushedRun = -1;
    const runs = 14;
    for (let run = 0; run < runs; run++) {
      const early = run % 4 === 0;
      const result = early
        ? await runAndKill(modulePath, dir, run, 'spawn', 30 + Math.random() * 300)
        : await runAndKill(modulePath, dir, run, 'open', Math.random() * 400);
      expect(result.signal, `run ${run} exited by itself: code ${result.code}\n${result.stderr}`).toBe('SIGKILL');
      if (!early) expect(result.opened, `run ${run} never opened the ledger\n${result.stderr}`).toBe(true);
      if (result.opened) opened++;
      if (result.flushed !== undefined) {
        flushed.set(run, result.flushed);
        lastFlushedRun = run;
      }
    }
    expect(opened).toBeGreaterThanOrEqual(10);
    expect(flushed.size).toBeGreaterThanOrEqual(5);

    const ledger = await Ledger.open(dir);
    if (process.env['LEDGER_FUZZ_DEBUG']) {
      const snap = await readFile(join(dir, 'ledger.snapshot')).catch(() => undefined);
      console.log({ flushed: [...flushed], opened, stats: ledger.stats(), generation: snap?.readUInt32LE(12) });
    }
    try {
      let checked = 0;
      for (const name of ledger.seriesNames()) {
        const m = /^(run|tmp)(\d+)$/.exec(name);
        if (name === 'churn') continue;
        expect(m, `unexpected series ${name}`).not.toBeNull();
        const run = Number(m![2]);
        if (m![1] === 'tmp') expect(run, `tmp${run} should have been forgotten by run ${lastFlushedRun}`).toBeGreaterThanOrEqual(lastFlushedRun);
        for (const [slot, entry] of ledger.entries(name)) {
          expect(entry).toEqual(expected(run, slot));
          if (m![1] === 'tmp') expect(slot % 11).toBe(0);
          checked++;
        }
      }
      for (const [run, count] of flushed) {
        for (let slot = 0; slot < count; slot++) {
          const entry = ledger.get(`run${run}`, slot);
          if (!entry) throw new Error(`run ${run}: slot ${slot} was flushed (up to ${count}) but is missing`);
        }
      }
      // The shared series was re-dated by each run: it holds only entries of the run
      // whose date it carries, never a mix.
      const date = ledger.updatedDate('churn');
      expect(date).toMatch(/^r\d+$/);
      const dateRun = Number(date!.slice(1));
      expect(dateRun).toBeGreaterThanOrEqual(lastFlushedRun);
      for (const [slot, entry] of ledger.entries('churn')) expect(entry).toEqual(expected(dateRun, slot));
      expect(checked).toBeGreaterThan(0);
    } finally {
      await ledger.close();
    }
  }, 60_000);
});
