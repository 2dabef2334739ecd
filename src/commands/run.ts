/**
 * `cvat-warden run`: the always-on service. SIGTERM/SIGINT: stop intake, fail
 * readiness, let in-flight chunk requests finish within 10 s, flush the ledger, exit 0;
 * a second signal exits at once (130).
 */
import type { CommandConfig } from '../config/index.js';
import { WardenService } from '../daemon/service.js';
import { createShutdown, EXIT_SECOND_SIGNAL } from '../daemon/shutdown.js';
import type { CommandContext } from './context.js';

export const SHUTDOWN_DEADLINE_MS = 10_000;

export async function runService(config: CommandConfig, context: CommandContext): Promise<number> {
  const { logger, metrics } = context;
  const service = new WardenService({ config, logger, metrics });
  let finish: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (finish = resolve));
  const shutdown = createShutdown({
    logger,
    deadlineMs: SHUTDOWN_DEADLINE_MS,
    exit: (code) => (code === EXIT_SECOND_SIGNAL ? process.exit(code) : finish(code)),
  });
  shutdown.onShutdown('stop intake, drain warming, flush ledger, close', (deadline) => service.close(deadline));
  shutdown.installSignalHandlers();
  try {
    await service.start();
  } catch (error) {
    shutdown.dispose();
    await service.close();
    throw error;
  }
  const code = await exited;
  shutdown.dispose();
  return code;
}
