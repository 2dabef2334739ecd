/**
 * `cvat-warden run`: the always-on service. SIGTERM/SIGINT: the service's ordered stop
 * steps run through the CLI's shutdown coordinator (stop intake, drain warming, close
 * the guard, flush the ledger, close HTTP, close the client) within its deadline, exit 0;
 * a second signal exits at once (130).
 */
import type { CommandConfig } from '../config/index.js';
import { WardenService } from '../daemon/service.js';
import type { CommandContext } from './context.js';

export async function runService(config: CommandConfig, context: CommandContext): Promise<number> {
  const { logger, metrics, shutdown } = context;
  const service = new WardenService({ config, logger, metrics });
  for (const step of service.shutdownSteps()) shutdown.onShutdown(step.name, (deadline) => step.run(deadline));
  try {
    await service.start();
  } catch (error) {
    await service.close();
    throw error;
  }
  return shutdown.finished;
}
