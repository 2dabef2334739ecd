import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createShutdown, type Shutdown } from '../src/daemon/shutdown.js';
import { createLogger } from '../src/log.js';
import { waitFor } from './support/wait.js';

const ROOT = resolve(import.meta.dirname, '..');
const FIXTURE = resolve(ROOT, 'test/fixtures/daemon-shutdown-fixture.mjs');
const BUILT = resolve(ROOT, 'dist/daemon/shutdown.js');

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

interface Child {
  signal(sig: NodeJS.Signals): void;
  /** Resolves once a stderr log line with this message has been seen. */
  logged(msg: string): Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; logs: LogLine[]; at: number }>;
}

async function startFixture(mode: string, deadlineMs?: number): Promise<Child> {
  const child = spawn(process.execPath, [FIXTURE, mode, ...(deadlineMs ? [String(deadlineMs)] : [])], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const waiters: Array<{ msg: string; resolve: () => void }> = [];
  const lines = (): LogLine[] =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    const seen = lines().map((l) => l.msg);
    for (const w of waiters.splice(0)) (seen.includes(w.msg) ? w.resolve : () => waiters.push(w))();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; logs: LogLine[]; at: number }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal, logs: lines(), at: performance.now() })),
  );
  await new Promise<void>((ready, fail) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => d.includes('ready') && ready());
    child.on('exit', (code) => fail(new Error(`fixture exited early with ${code}: ${stderr}`)));
  });
  return {
    signal: (sig) => child.kill(sig),
    logged: (msg) => new Promise((res) => (lines().some((l) => l.msg === msg) ? res() : waiters.push({ msg, resolve: res }))),
    exit,
  };
}

describe('shutdown, end to end in a child process', () => {
  beforeAll(() => {
    if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run \`npm run build\` before these tests (\`npm test\` does it for you)`);
    const source = resolve(ROOT, 'src/daemon/shutdown.ts');
    if (statSync(source).mtimeMs > statSync(BUILT).mtimeMs)
      throw new Error('dist/daemon/shutdown.js is older than src/daemon/shutdown.ts: run `npm run build`');
  });

  it('SIGTERM: lets the slow step finish, flushes, exits 0 with a final log line', async () => {
    const child = await startFixture('slow');
    const sent = performance.now();
    child.signal('SIGTERM');
    const { code, logs, at } = await child.exit;
    const elapsed = at - sent;
    expect(code).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    const msgs = logs.map((l) => l.msg);
    expect(msgs).toEqual(expect.arrayContaining(['shutdown started', 'drained', 'ledger flushed']));
    expect(msgs.indexOf('drained')).toBeLessThan(msgs.indexOf('ledger flushed'));
    expect(logs.at(-1)).toMatchObject({ msg: 'shutdown complete', exitCode: 0, reason: 'received SIGTERM' });
  });

  it('SIGINT is handled the same way', async () => {
    const child = await startFixture('slow');
    child.signal('SIGINT');
    const { code, logs } = await child.exit;
    expect(code).toBe(0);
    expect(logs.at(-1)).toMatchObject({ msg: 'shutdown complete', reason: 'received SIGINT' });
  });

  it('a second signal exits at once with 130', async () => {
    const child = await startFixture('long');
    child.signal('SIGTERM');
    await child.logged('shutdown started');
    child.signal('SIGTERM');
    const { code, logs } = await child.exit;
    // At once: the long step never got to its end, nor did the ledger flush after it.
    expect(code).toBe(130);
    expect(logs.map((l) => l.msg)).not.toContain('ledger flushed');
    expect(logs.at(-1)?.msg).toMatch(/second signal/);
  });

  it('a step that overruns the deadline is abandoned, later steps still run, and the process exits by the deadline', async () => {
    const child = await startFixture('stuck', 1_000);
    const sent = performance.now();
    child.signal('SIGTERM');
    const { code, logs, at } = await child.exit;
    const elapsed = at - sent;
    expect(code).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(700);
    const msgs = logs.map((l) => l.msg);
    expect(msgs).toContain('ledger flushed');
    expect(msgs).not.toContain('drained');
    expect(logs.find((l) => l.msg.startsWith('shutdown deadline reached'))).toMatchObject({ step: 'drain', remaining: ['flush ledger'] });
    expect(logs.at(-1)).toMatchObject({ msg: 'shutdown complete', exitCode: 1, abandoned: ['drain'] });
  });

  it('when even the forced steps hang, the hard deadline exits 1', async () => {
    const child = await startFixture('stuck-all', 1_000);
    child.signal('SIGTERM');
    const { code, logs } = await child.exit;
    expect(code).toBe(1);
    expect(logs.at(-1)).toMatchObject({ msg: 'shutdown deadline of 1000 ms passed: exiting now', stillRunning: 'flush ledger' });
  });
});

describe('createShutdown in process (injected exit)', () => {
  let current: Shutdown | undefined;
  afterEach(() => current?.dispose());

  const make = (options: { deadlineMs?: number } = {}) => {
    const exits: number[] = [];
    const lines: string[] = [];
    const logger = createLogger({
      level: 'debug',
      destination: new Writable({
        write: (chunk, _enc, cb) => {
          lines.push(String(chunk));
          cb();
        },
      }),
    });
    current = createShutdown({ logger, exit: (code) => void exits.push(code), ...options });
    return { shutdown: current, exits, lines };
  };

  it('aborts the intake signal first, then runs the steps in registration order', async () => {
    const { shutdown, exits } = make();
    const order: string[] = [];
    shutdown.onShutdown('a', () => void order.push(`a:${shutdown.signal.aborted}`));
    shutdown.onShutdown('b', async () => {
      // Asynchronous work: the next step waits for it.
      await new Promise((r) => setImmediate(r));
      order.push('b');
    });
    const remove = shutdown.onShutdown('c', () => void order.push('c'));
    shutdown.onShutdown('d', (signal) => void order.push(`d:${signal.aborted}`));
    remove();
    expect(shutdown.started).toBe(false);
    const first = shutdown.shutdown('test');
    expect(shutdown.shutdown('again')).toBe(first);
    expect(shutdown.signal.aborted).toBe(true);
    expect(await first).toBe(0);
    expect(order).toEqual(['a:true', 'b', 'd:false']);
    expect(exits).toEqual([0]);
  });

  it('a failing step is logged, the rest still run, and the exit code is 1', async () => {
    const { shutdown, exits, lines } = make();
    const ran: string[] = [];
    shutdown.onShutdown('bad', () => {
      throw new Error('flush failed');
    });
    shutdown.onShutdown('after', () => void ran.push('after'));
    expect(await shutdown.shutdown('test')).toBe(1);
    expect(ran).toEqual(['after']);
    expect(exits).toEqual([1]);
    expect(lines.join('')).toContain('flush failed');
  });

  it('uses the requested exit code on a clean run', async () => {
    const { shutdown, exits } = make();
    expect(await shutdown.shutdown('fatal error elsewhere', { exitCode: 3 })).toBe(3);
    expect(exits).toEqual([3]);
  });

  it('gives each step a signal that aborts when the graceful part of the deadline is over', async () => {
    const { shutdown, exits } = make({ deadlineMs: 300 });
    let abortedAfter = -1;
    const started = performance.now();
    shutdown.onShutdown(
      'cooperative',
      (signal) =>
        new Promise<void>((done) =>
          signal.addEventListener('abort', () => {
            abortedAfter = performance.now() - started;
            done();
          }),
        ),
    );
    expect(await shutdown.shutdown('test')).toBe(1);
    expect(abortedAfter).toBeGreaterThanOrEqual(200); // 300 ms − 60 ms reserve
    expect(exits).toEqual([1]);
  });

  it('signal handlers: the first signal starts shutdown, the second exits 130', async () => {
    const { shutdown, exits } = make();
    let release: (() => void) | undefined;
    shutdown.onShutdown('slow', () => new Promise<void>((r) => (release = r)));
    const before = process.listenerCount('SIGTERM');
    shutdown.installSignalHandlers();
    shutdown.installSignalHandlers(); // idempotent
    process.emit('SIGTERM', 'SIGTERM');
    expect(shutdown.started).toBe(true);
    process.emit('SIGTERM', 'SIGTERM');
    expect(exits).toEqual([130]);
    await waitFor('the slow step running', () => release !== undefined, { intervalMs: 1 });
    release!();
    shutdown.dispose();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
