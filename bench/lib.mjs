// Shared helpers for the benchmarks: child processes, RSS, percentiles, machine facts.
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';

export function machine() {
  return {
    date: new Date().toISOString().slice(0, 10),
    cpu: `${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

export function peakRssMB() {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    if (match) return Number(match[1]) / 1024;
  } catch {}
  return process.memoryUsage().rss / 2 ** 20;
}

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Runs a bench module in a child node process; it must print one JSON line starting with RESULT. */
export function runChild(script, args = [], { env = {}, nodeArgs = ['--expose-gc'] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) return reject(new Error(`${script} exited ${code}: ${out.slice(-500)}`));
      resolve(JSON.parse(line.slice(7)));
    });
  });
}

/** Starts a child process that runs an emulator and reports its URL; returns { url, stop }. */
export function startEmulatorChild(options) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [new URL('./emulator-child.mjs', import.meta.url).pathname, JSON.stringify(options)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('URL '));
      if (line)
        resolve({
          url: line.slice(4).trim(),
          stop: () =>
            new Promise((r) => {
              child.once('exit', r);
              child.kill('SIGTERM');
            }),
        });
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`emulator child exited ${code}`)));
  });
}

export const fmt = (n, digits = 2) => (Number.isFinite(n) ? Number(n).toFixed(digits) : String(n));
