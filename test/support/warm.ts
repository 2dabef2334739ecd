/** Runs `cvat-warden warm` in-process with captured output (the CLI's own code path minus process wiring). */
import { PassThrough } from 'node:stream';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/index.js';
import { createShutdown } from '../../src/daemon/shutdown.js';
import { runWarm } from '../../src/commands/warm.js';
import { ConfigError, EXIT, exitCodeFor } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';

export interface CapturedRun {
  code: number;
  stdout: string;
  logs: string;
  metrics: Metrics;
}

export async function warmInProcess(argv: string[], env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<CapturedRun> {
  let stdout = '';
  let logs = '';
  const out = new Writable({
    write: (chunk, _e, cb) => {
      stdout += String(chunk);
      cb();
    },
  });
  const logStream = new Writable({
    write: (chunk, _e, cb) => {
      logs += String(chunk);
      cb();
    },
  });
  const stderr = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
  const logger = createLogger({ level: 'debug', destination: logStream });
  const metrics = createMetrics({ buildInfo: { version: 'test' } });
  // The CLI's coordinator without process signals: `signal` plays the first Ctrl-C.
  const shutdown = createShutdown({ logger, signals: [], exit: () => undefined });
  const interrupt = () => {
    void shutdown.shutdown('test interrupt', { exitCode: EXIT.interrupted });
  };
  signal?.addEventListener('abort', interrupt, { once: true });
  let code: number;
  try {
    const config = loadConfig('warm', argv, env);
    code = await runWarm(config, { stdout: out, stderr, logger, metrics, signal: shutdown.signal, shutdown });
  } catch (error) {
    code = exitCodeFor(error);
    logs += `${error instanceof ConfigError ? error.message : (error as Error).message}\n`;
  }
  if (shutdown.started) code = await shutdown.finished;
  shutdown.dispose();
  return { code, stdout, logs, metrics };
}
