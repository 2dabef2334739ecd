/** `cvat-warden emulate`: the bundled CVAT emulator with the demo deployment, until Ctrl-C. */
import type { CommandConfig } from '../config/index.js';
import { runEmulateCommand } from '../emulator/cli.js';
import type { CommandContext } from './context.js';

export async function runEmulate(config: CommandConfig, context: CommandContext): Promise<number> {
  const emulator = await runEmulateCommand(
    {
      host: config.emulator.host,
      port: config.emulator.port,
      version: config.emulator.version,
      buildTimeMs: config.emulator.buildTimeMs,
      workers: config.emulator.workers,
      ...(config.shareDir ? { shareDir: config.shareDir } : {}),
    },
    context.logger,
  );
  await new Promise<void>((resolve) => {
    if (context.signal.aborted) resolve();
    context.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await emulator.close();
  return 0;
}
