/** What every command gets from the CLI: streams, logger, metrics and the shutdown coordinator. */
import type { Shutdown } from '../daemon/shutdown.js';
import type { Logger } from '../log.js';
import { recordCredentials, type Metrics } from '../metrics.js';
import { CvatClient } from '../cvat/client.js';
import type { CvatConfig } from '../config/index.js';

import type { BackupAction } from './backup-actions.js';

export interface CommandContext {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream;
  logger: Logger;
  metrics: Metrics;
  /** Aborts when a stop starts (the coordinator's `signal`). */
  signal: AbortSignal;
  /**
   * The one shutdown coordinator (daemon/shutdown.ts): a command registers its ordered
   * stop steps here; the CLI turns the first Ctrl-C/SIGTERM into them, a second into exit 130.
   */
  shutdown: Shutdown;
  /** `backup list|verify|restore FILE` (backup-actions.ts); absent for a plain `backup`. */
  backupAction?: BackupAction;
}

export function createClient(cvat: CvatConfig, context: Pick<CommandContext, 'logger' | 'metrics'>): CvatClient {
  return new CvatClient({
    baseUrl: cvat.url,
    credentials: cvat.credentials,
    ...(cvat.organization !== undefined ? { organization: cvat.organization } : {}),
    limits: cvat.limits,
    maxPages: cvat.maxPages,
    logger: context.logger,
    onReachability: (up) => context.metrics.cvatUp.set(up ? 1 : 0),
    onCredentials: (state) => recordCredentials(context.metrics, state.accepted),
  });
}
