/** Runs the built CLI (dist/cli.js) as a child process: real argv, env, exit code, stdout and stderr. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export const CLI = resolve('dist/cli.js');

/**
 * V8 flags of the CLI processes tests start: the optimizing compiler off. A test's command
 * runs for well under a second, and TurboFan's background jobs were ~16 % of the CPU of the
 * CLI-heavy test files (46.1 against 54.9 CPU-s over three of them, measured), time the
 * runs never got back. Behaviour is the same in every tier; users' processes keep it on.
 */
const CLI_NODE_FLAGS = ['--no-opt'];

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, options: { timeoutMs?: number } = {}): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` (npm test does)');
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [...CLI_NODE_FLAGS, CLI, ...args], { env: { PATH: process.env['PATH'], ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}
