/** Commands other than warm, loaded on demand so `warm` does not pay for the guard or emulator. */
import type { CommandConfig } from '../config/index.js';
import type { CommandName } from '../config/options.js';
import type { CommandContext } from './context.js';

export async function runCommand(command: Exclude<CommandName, 'warm'>, config: CommandConfig, context: CommandContext): Promise<number> {
  switch (command) {
    case 'check':
      return (await import('./check.js')).runCheckCommand(config, context);
    case 'run':
      return (await import('./run.js')).runService(config, context);
    case 'doctor':
      return (await import('./doctor.js')).runDoctor(config, context);
    case 'emulate':
      return (await import('./emulate.js')).runEmulate(config, context);
    case 'demo':
      return (await import('./demo.js')).runDemo(config, context);
    case 'restore':
      return (await import('./restore.js')).runRestore(config, context);
    case 'backup':
      return (await import('./backup.js')).runBackup(config, context);
    case 'impact':
      return (await import('./impact.js')).runImpact(config, context);
  }
}
