/** Starts WardenService in-process against an emulator, with logs captured for secret checks. */
import { Writable } from 'node:stream';
import { afterEach } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { WardenService, type ServiceOptions } from '../../src/daemon/service.js';
import { createLogger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { clearSecretsForTests } from '../../src/secrets.js';

export interface RunningService {
  service: WardenService;
  metrics: Metrics;
  logs: () => string;
  url: string;
  metricsText: () => Promise<string>;
  metric: (name: string) => Promise<number | undefined>;
}

export async function startService(
  argv: string[],
  env: NodeJS.ProcessEnv,
  extra: Partial<ServiceOptions> = {},
  logLevel: 'debug' | 'info' = 'debug',
): Promise<RunningService> {
  let logs = '';
  const destination = new Writable({
    write: (chunk, _e, cb) => {
      logs += String(chunk);
      cb();
    },
  });
  const logger = createLogger({ level: logLevel, destination });
  const metrics = createMetrics({ buildInfo: { version: 'test' }, defaultMetrics: true });
  const config = loadConfig('run', ['--listen', '127.0.0.1:0', '--log-level', logLevel, ...argv], env);
  const service = new WardenService({ config, logger, metrics, reconnectIntervalMs: 100, checkIntervalMs: 200, ...extra });
  await service.start();
  const url = service.url!;
  const metricsText = async () => (await fetch(`${url}/metrics`)).text();
  return {
    service,
    metrics,
    logs: () => logs,
    url,
    metricsText,
    metric: async (name) => {
      const match = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(await metricsText());
      return match ? Number(match[1]) : undefined;
    },
  };
}

/**
 * The after-hook of every in-process service test: close what the test started, in the
 * order given (the service before the CVAT it talks to), forget it, and clear the secrets
 * its configuration registered.
 */
export function closeAfterEach(started: () => ReadonlyArray<{ close(): Promise<void> } | undefined>, forget: () => void): void {
  afterEach(async () => {
    for (const resource of started()) await resource?.close();
    forget();
    clearSecretsForTests();
  });
}
