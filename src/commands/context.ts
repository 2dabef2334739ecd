/** What every command gets from the CLI: streams, logger, metrics and the stop signal. */
import type { Logger } from '../log.js';
import { recordCredentials, type Metrics } from '../metrics.js';
import { CvatClient } from '../cvat/client.js';
import type { CvatConfig } from '../config/index.js';

export interface CommandContext {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream;
  logger: Logger;
  metrics: Metrics;
  signal: AbortSignal;
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
