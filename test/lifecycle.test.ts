/**
 * One lifecycle path (issue 11 point 4) and the ledger's crash leftovers (issue 8):
 * `run` stops through the coordinator in the real ordered steps; `warm` stopped by Ctrl-C
 * exits 130 through the same coordinator; a zombie (killed, unreaped) lock owner does not
 * keep the ledger locked; chunks left "cached, age unknown" by a kill -9 are not asked for
 * again by every later `warm`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS, startEmulator, syntheticDeployment, type Emulator } from '../src/emulator/index.js';
import { Ledger } from '../src/warm/ledger.js';
import { CLI } from './support/cli.js';
import { useTempDir } from './support/tmp.js';
import { waitFor } from './support/wait.js';
import { warmInProcess } from './support/warm.js';

const tmp = useTempDir('warden-lifecycle-');
let emulator: Emulator | undefined;
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await emulator?.close();
  emulator = undefined;
});

const auth = () => ({ users: [{ username: 'admin', isAdmin: true, accessTokens: [DEMO_CREDENTIALS.accessToken] }] });
const env = () => ({ CVAT_URL: emulator!.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken });
const servedChunks = () => emulator!.state.requestLog.filter((r) => r.kind === 'job_chunk' && (r.status === 200 || r.status === 206)).length;

interface LogLine {
  msg: string;
  [key: string]: unknown;
}

function startCli(args: string[]): { proc: ChildProcess; logs: () => LogLine[]; output: () => string; exited: Promise<number | null> } {
  let output = '';
  const proc = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env['PATH'], ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const logs = () =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  return { proc, logs, output: () => output, exited };
}

describe('one lifecycle path', () => {
  it('run: SIGTERM runs the ordered steps, each once, then exits 0', async () => {
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 2, framesPerTask: 400 }), auth: auth(), buildTimeMs: 20 });
    const share = join(tmp.path, 'share');
    mkdirSync(share);
    const run = startCli([
      'run',
      '--listen',
      '127.0.0.1:0',
      '--state-dir',
      join(tmp.path, 'state'),
      '--share-dir',
      share,
      '--log-level',
      'debug',
      '--cold-threshold',
      '0ms',
    ]);
    await waitFor('some chunks warm', () => servedChunks() >= 5, { timeoutMs: 20_000 });
    run.proc.kill('SIGTERM');
    expect(await run.exited, run.output()).toBe(0);
    const steps = ['stop intake', 'drain warming', 'close the vault and backups', 'close the guard', 'flush the ledger', 'close HTTP', 'close the CVAT client'];
    expect(run.logs().find((l) => l.msg === 'shutdown started')).toMatchObject({ steps });
    const finished = run
      .logs()
      .filter((l) => l.msg === 'shutdown step finished')
      .map((l) => l['step']);
    expect(finished).toEqual(steps);
    expect(run.logs().at(-1)).toMatchObject({ msg: 'shutdown complete', exitCode: 0 });
    expect(run.logs().filter((l) => l.msg === 'cvat-warden service stopped')).toHaveLength(1);
  });

  it('warm: Ctrl-C exits 130 through the coordinator, after draining and flushing', async () => {
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 2, framesPerTask: 400 }), auth: auth(), buildTimeMs: 20 });
    const stateDir = join(tmp.path, 'state');
    const warm = startCli(['warm', '--all', '--state-dir', stateDir, '--log-level', 'debug', '--cold-threshold', '0ms']);
    await waitFor('some chunks warm', () => servedChunks() >= 5, { timeoutMs: 20_000 });
    warm.proc.kill('SIGINT');
    expect(await warm.exited, warm.output()).toBe(130);
    const steps = ['drain warming', 'flush the ledger', 'close the CVAT client'];
    expect(warm.logs().find((l) => l.msg === 'shutdown started')).toMatchObject({ steps, reason: 'received SIGINT' });
    expect(
      warm
        .logs()
        .filter((l) => l.msg === 'shutdown step finished')
        .map((l) => l['step']),
    ).toEqual(steps);
    expect(warm.logs().at(-1)).toMatchObject({ msg: 'shutdown complete', exitCode: 130 });
    expect(warm.output()).toMatch(/Interrupted in/);
    // Everything answered before the stop is in the ledger.
    const served = servedChunks();
    const ledger = await Ledger.open(stateDir);
    try {
      expect(ledger.stats().warm).toBe(served);
    } finally {
      await ledger.close();
    }
  });
});

describe('ledger crash leftovers', () => {
  it.skipIf(!existsSync('/proc/self/stat'))('a zombie lock owner (killed, not yet reaped) is treated as dead (Linux /proc)', async () => {
    // `sleep 0.1` is backgrounded by a shell that then execs a process that never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(parent);
    const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const stat = () => readFileSync(`/proc/${pid}/stat`, 'utf8');
    await waitFor('the child is a zombie', () =>
      stat()
        .slice(stat().lastIndexOf(')') + 2)
        .startsWith('Z'),
    );
    const fields = stat()
      .slice(stat().lastIndexOf(')') + 2)
      .split(' ');
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    // The lock as its owner wrote it: same pid, same start time, same boot — only the state says dead.
    writeFileSync(join(tmp.path, 'ledger.lock'), JSON.stringify({ pid, start: fields[19], boot }));
    expect(() => process.kill(pid, 0)).not.toThrow(); // still "alive" to kill(0)
    const ledger = await Ledger.open(tmp.path);
    await ledger.close();
  });

  it('after a kill -9, chunks left cached with no build time are asked for once, not by every later warm', async () => {
    emulator = await startEmulator({ tasks: syntheticDeployment({ tasks: 3, framesPerTask: 600 }), auth: auth(), buildTimeMs: 5 });
    const stateDir = join(tmp.path, 'state');
    const killed = startCli(['warm', '--all', '--state-dir', stateDir, '--cold-threshold', '0ms', '--concurrency', '2']);
    await waitFor('some chunks warm', () => servedChunks() >= 20, { timeoutMs: 20_000 });
    killed.proc.kill('SIGKILL');
    await killed.exited;
    const argv = ['--all', '--state-dir', stateDir, '--json', '--cold-threshold', '0ms'];
    const second = await warmInProcess(argv, env());
    expect(second.code).toBe(0);
    const total = emulator.state.uiChunkKeys().size;
    expect(emulator.state.coldUiChunkKeys().size).toBe(0);
    const before = servedChunks();
    const third = await warmInProcess(argv, env());
    expect(third.code).toBe(0);
    expect(JSON.parse(third.stdout).result).toMatchObject({ warm: 0, fresh: total });
    expect(servedChunks() - before).toBe(0);
  });
});
