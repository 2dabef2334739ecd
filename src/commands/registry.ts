/** Commands other than warm, loaded on demand so `warm` does not pay for the guard or emulator. */
import type { CommandConfig } from '../config/index.js';
import { EXIT } from '../errors.js';
import type { CommandName } from '../config/options.js';
import type { CommandContext } from './context.js';

export async function runCommand(command: CommandName, config: CommandConfig, context: CommandContext): Promise<number> {
  context.stderr.write(`cvat-warden ${command}: not available in this build yet\n`);
  void config;
  return EXIT.usage;
}
