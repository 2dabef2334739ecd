#!/usr/bin/env node
/**
 * cvat-warden command line: parse the command, load one validated config, run it,
 * map the outcome to an exit code (0 ok, 1 problems, 2 usage/config, 3 CVAT
 * unreachable or credentials refused, 130 interrupted). First Ctrl-C stops cleanly, a second exits now.
 */
import type { CommandConfig } from './config/index.js';
import { commandHelp, usage } from './config/help.js';
import { COMMANDS, type CommandName } from './config/options.js';
import { didYouMean } from './config/suggest.js';
import { ConfigError, EXIT, WardenError, describeError, exitCodeFor } from './errors.js';
import { packageVersion } from './version.js';
import type { CommandContext } from './commands/context.js';
import type { BackupAction } from './commands/backup-actions.js';
import { createShutdown } from './daemon/shutdown.js';
import { growYoungGenerationTo, holdYoungGeneration, WARM_YOUNG_GENERATION_BYTES } from './young-generation.js';

const isCommand = (name: string): name is CommandName => Object.hasOwn(COMMANDS, name);

function unknownCommand(name: string): number {
  process.stderr.write(
    `cvat-warden: unknown command "${name}"${didYouMean(name, [...Object.keys(COMMANDS), 'help', 'version'])}\n\n${usage(packageVersion())}\n`,
  );
  return EXIT.usage;
}

async function dispatch(command: CommandName, config: CommandConfig, context: CommandContext): Promise<number> {
  switch (command) {
    case 'warm': {
      const { runWarm } = await import('./commands/warm.js');
      growYoungGenerationTo(WARM_YOUNG_GENERATION_BYTES);
      return runWarm(config, context);
    }
    default:
      return (await import('./commands/registry.js')).runCommand(command, config, context);
  }
}

/** Usage, help and version, answered before any config is read; undefined for a command to run. */
function answerWithoutConfig(name: string | undefined, rest: readonly string[]): number | undefined {
  if (!name) {
    process.stdout.write(`${usage(packageVersion())}\n`);
    return EXIT.usage;
  }
  if (name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    process.stdout.write(`${usage(packageVersion())}\n`);
    return EXIT.ok;
  }
  if (name === 'help') {
    const topic = rest[0] ?? '';
    if (!isCommand(topic)) return unknownCommand(topic);
    process.stdout.write(`${commandHelp(topic)}\n`);
    return EXIT.ok;
  }
  if (name === '--version' || name === '-V' || name === '-v' || name === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return EXIT.ok;
  }
  if (!isCommand(name)) return unknownCommand(name);
  // --help wins over anything else on the line: the command is not run anyway.
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${commandHelp(name)}\n`);
    return EXIT.ok;
  }
  return undefined;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const answered = answerWithoutConfig(name, rest);
  if (answered !== undefined || !name || !isCommand(name)) return answered ?? EXIT.usage;
  // `warm` allocates much and keeps little: its young generation is held from here, before
  // the config and the client load, and grown to its cap once they have (young-generation.ts).
  if (name === 'warm') holdYoungGeneration();
  // Config first (LOG_LEVEL included): a bad value is listed with every other problem, exit 2.
  let config: CommandConfig;
  let configArgv: string[];
  let backupAction: BackupAction | undefined;
  try {
    const { splitBackupAction } = await import('./commands/backup-actions.js');
    // Loaded here, not at the top: usage, help and version answer without the CVAT client.
    const { loadConfig } = await import('./config/index.js');
    ({ argv: configArgv, action: backupAction } = name === 'backup' ? splitBackupAction(rest) : { argv: rest, action: undefined });
    config = loadConfig(name, configArgv, process.env, backupAction?.kind);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`cvat-warden ${name}: ${error.message}\n`);
    return exitCodeFor(error);
  }
  // Loaded after the config: config errors answer without them.
  const [{ createLogger }, { createMetrics }] = await Promise.all([import('./log.js'), import('./metrics.js')]);
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  const metrics = createMetrics({ buildInfo: { version: packageVersion() }, defaultMetrics: name === 'run' });
  // One coordinator for every command: the first signal runs the steps the command
  // registered (in order, under a deadline), a second exits 130 at once.
  const shutdown = createShutdown({
    logger,
    signalExitCode: name === 'run' || name === 'emulate' ? EXIT.ok : EXIT.interrupted,
    exit: () => undefined, // the code comes back through `finished`
    forcedExit: (code) => process.exit(code),
  });
  shutdown.installSignalHandlers();
  let code: number;
  try {
    code = await dispatch(name, config, {
      stdout: process.stdout,
      stderr: process.stderr,
      logger,
      metrics,
      signal: shutdown.signal,
      shutdown,
      ...(backupAction ? { backupAction } : {}),
    });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`cvat-warden ${name}: ${error.message}\n`);
    } else if (error instanceof WardenError) {
      if (!(shutdown.started && error.code === 'ABORTED')) {
        logger.error({ code: error.code }, error.message);
        process.stderr.write(`cvat-warden ${name}: ${error.message}\n`);
      }
    } else {
      logger.error({ err: describeError(error) }, 'unexpected error');
      process.stderr.write(`cvat-warden ${name}: unexpected error: ${describeError(error)}\n`);
    }
    code = exitCodeFor(error);
  }
  // Stopped by a signal: the coordinator's steps decide the code (130, or 1 if one failed).
  if (shutdown.started) code = await shutdown.finished;
  shutdown.dispose();
  return code;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // The service has closed everything it owns; do not wait on stray handles.
    if (process.argv[2] === 'run') process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`cvat-warden: ${describeError(error)}\n`);
    process.exitCode = 1;
  },
);
