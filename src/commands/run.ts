/**
 * `cvat-warden run`: the always-on service. SIGTERM/SIGINT: the service's ordered stop
 * steps run through the CLI's shutdown coordinator (stop intake, drain warming, close
 * the guard, flush the ledger, close HTTP, close the client) within its deadline, exit 0;
 * a second signal exits at once (130). A configuration error found while running (the
 * vault misplaced for a task) stops it the same way, with exit 2.
 */
import type { CommandConfig } from '../config/index.js';
import { WardenService } from '../daemon/service.js';
import { EXIT, type ConfigError } from '../errors.js';
import { GUARD_START_HEAP_GROWING_PERCENT, holdHeapGrowth } from '../heap-growth.js';
import type { CommandContext } from './context.js';

export async function runService(config: CommandConfig, context: CommandContext): Promise<number> {
  const { logger, metrics, shutdown } = context;
  const onFatal = (error: ConfigError) => {
    context.stderr.write(`cvat-warden run: ${error.message}\n`);
    void shutdown.shutdown('configuration error', { exitCode: EXIT.usage });
  };
  const service = new WardenService({ config, logger, metrics, onFatal });
  for (const step of service.shutdownSteps()) shutdown.onShutdown(step.name, (deadline) => step.run(deadline));
  // The share guard's index is built during the first discovery: V8's heap grows in small
  // steps until then, which keeps tens of MB of garbage out of the resident peak (heap-growth.ts).
  const releaseHeap = config.shareDir ? holdHeapGrowth(GUARD_START_HEAP_GROWING_PERCENT) : () => undefined;
  void service.firstDiscoveryDone().then(releaseHeap);
  try {
    await service.start();
  } catch (error) {
    releaseHeap();
    await service.close();
    throw error;
  }
  return shutdown.finished.finally(releaseHeap);
}
